"""The requests half of :class:`~airflow_provider_kestra.hooks.kestra.KestraHook`: one attempt, retries,
reading answers, running operation plans, reading the event stream, and the steps of its waits that touch
HTTP. Internal to the hooks package: :class:`KestraHook` adds the operations.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_kestra.exceptions import KestraError, stream_ended_early, with_note
from airflow_provider_kestra.hooks import kestra_base as base
from airflow_provider_kestra.hooks.kestra_base import KestraAttemptFailure, KestraHookBase, KestraPlan
from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.utils.retry import read_timed_out, requests_failure_kind
from airflow_provider_kestra.utils.sse import KestraExecutionFollowReader
from airflow_provider_kestra.utils.wait import KestraLabelSearch

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from airflow_provider_kestra.hooks.kestra_base import KestraCall
    from airflow_provider_kestra.utils.models import KestraExecution
    from airflow_provider_kestra.utils.routes import KestraRoute
    from airflow_provider_kestra.utils.wait import KestraMatchWait, KestraWaitTracker

TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
"""The requests errors an attempt may be retried after (see ``requests_failure_kind``)."""

log = logging.getLogger(__name__)


class KestraRequestsBase(KestraHookBase):
    """Sending with requests, for :class:`KestraHook` (which provides ``session``, ``_route_of`` and the
    operations these steps use)."""

    _sleep: Callable[[float], None] = staticmethod(time.sleep)
    """How the hook pauses between retries and polls (tests replace it on the instance)."""

    if TYPE_CHECKING:

        @property
        def session(self) -> requests.Session: ...

        def _route_of(self, call: KestraCall) -> KestraRoute: ...

        def get_execution(self, execution_id: str) -> KestraExecution: ...

        def search_executions(
            self, query: KestraExecutionQuery | None = None, *, size: int = 100, **filters: Any
        ) -> list[KestraExecution]: ...

    def _attempt(self, route: KestraRoute, call: KestraCall, **options: Any) -> requests.Response:
        """Send ``call`` once; raise :class:`KestraAttemptFailure` for retryable failures, a typed error
        otherwise. ``options``: ``stream``, ``timeout``, and ``refused``, what decides what an error status
        means (the base's ``_status_failure`` unless given)."""
        refused = options.pop("refused", None) or self._status_failure
        context, headers = call.context, dict(call.headers) or None
        kwargs = {"params": list(call.params) or None, "data": call.body, "headers": headers, **options}
        kwargs.setdefault("timeout", self._attempt_timeout())
        try:
            response = self.session.request(route.method, self._url(route), **kwargs)
        except requests.exceptions.SSLError as err:
            raise self._connection_error(route, err, context) from None
        except TRANSPORT_ERRORS as err:
            error = self._connection_error(route, err, context)
            raise KestraAttemptFailure(requests_failure_kind(err), error) from None
        self._reached(call, response.status_code)
        if response.status_code < 400:
            return response
        body = response.text
        response.close()
        retry_after = response.headers.get("Retry-After")
        raise self._lagging(call, refused(route, response.status_code, body, retry_after, context))

    def _request(self, route: KestraRoute, call: KestraCall, *, read: bool = False, **options: Any) -> Any:
        """Send ``call`` with retries as the route's retry mode allows; the response, or with ``read`` its
        answer read (an unreadable answer is a failed attempt too)."""
        attempt = 0
        while True:
            try:
                response = self._attempt(route, call, **options)
                if not read:
                    return response
                with contextlib.closing(response):
                    return self._answer(call, route, response)
            except KestraAttemptFailure as failure:
                self._sleep(self._retry_or_give_up(route, attempt, failure))
                attempt += 1

    def _send(self, call: KestraCall) -> Any:
        """Send one call (with retries) and read its answer."""
        return self._request(self._route_of(call), call, read=True)

    def _call(self, call: KestraCall) -> Any:
        """Run an operation's plan (:meth:`KestraHookBase._plan`): send what it asks, hand back answers."""
        plan = KestraPlan(self._plan(call))
        while not plan.done:
            try:
                plan.send(self._send(plan.step))
            except KestraError as err:
                plan.throw(err)
        return plan.result

    def _find_after_unknown_outcome(
        self,
        failure: KestraAttemptFailure,
        attempt: int,
        namespace: str,
        flow_id: str,
        key: str,
        labels: dict[str, str],
    ) -> KestraExecution | None:
        """Look for the execution a lost create request may have started, by its label, for up to
        :data:`UNKNOWN_OUTCOME_SEARCH_SECONDS`: Kestra stores a new execution asynchronously and its search
        may list it late, so a search that finds nothing is repeated before the POST is sent again."""
        query = KestraExecutionQuery(namespace=namespace, flow_id=flow_id, labels={key: labels[key]})
        search = KestraLabelSearch(self._clock, self._retry_pause(attempt, failure))
        what = f"looking for the execution of {namespace}.{flow_id} labelled {key}={labels[key]}"
        with self.retrying_until(search.ends, what=what):
            while (pause := search.next_pause()) is not None:
                self._sleep(pause)
                try:
                    matches = self.search_executions(query, size=2)
                    if matches:
                        self._expect(str(matches[0]["id"]))
                        found = self.get_execution(str(matches[0]["id"]))
                        log.warning(base.found_by_label(namespace, flow_id, found, key, search.searches))
                        return found
                except KestraError as err:
                    raise with_note(failure.error, base.label_search_failed(key, err)) from None
        return None

    def _search_once(self, wait: KestraMatchWait, query: KestraExecutionQuery) -> list[KestraExecution]:
        """One search of a ``wait_for_match``: nothing once its retries reached the deadline."""
        try:
            return self.search_executions(query, size=1)
        except KestraError:
            if not wait.expired():
                raise
            return []

    def _follow(
        self, execution_id: str, read_timeout: float | None
    ) -> Generator[KestraExecution | None, None, None]:
        """:meth:`follow_execution`, with a None after every read that brought no execution (a comment,
        part of a frame, a frame that is no execution): the wait checks the time on each."""
        call = base.follow_execution_call(execution_id)
        route = self._route_of(call)
        timeout = (self._attempt_timeout(), read_timeout or self._timeout)
        try:
            response = self._attempt(route, call, stream=True, timeout=timeout, refused=self._stream_refused)
        except KestraAttemptFailure as failure:
            raise self._stream_not_opened(execution_id, failure) from None
        reader = KestraExecutionFollowReader()
        try:
            for chunk in response.iter_content(chunk_size=None):
                executions: list[KestraExecution | None] = [*reader.feed_chunk(chunk)]
                yield from executions or [None]
                if reader.ended:
                    return
        except (requests.exceptions.RequestException, OSError) as err:
            raise self._stream_cut(execution_id, err, idle=read_timed_out(err)) from None
        finally:
            response.close()
        raise stream_ended_early(execution_id)

    def _poll(self, wait: KestraWaitTracker, execution_id: str) -> KestraExecution:
        """Read the execution for a wait (retried until its deadline, then the wait times out)."""
        try:
            return self.get_execution(execution_id)
        except KestraError:
            wait.read_failed()
            raise
