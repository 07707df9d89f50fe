"""Hooks for the Kestra REST API: :class:`KestraHook` (requests) here, ``KestraAsyncHook`` (httpx) in
:mod:`airflow_provider_kestra.hooks.kestra_async`.

Both read an Airflow connection of type ``kestra`` (see :mod:`airflow_provider_kestra.utils.connection`),
detect the server's API generation with ``GET /api/v1/configs`` (asked once per process and server, see
:mod:`airflow_provider_kestra.hooks.kestra_server_info`) unless the ``api_version`` extra pins it, and
send the call descriptions of :mod:`airflow_provider_kestra.hooks.kestra_base` through the one route
table of :mod:`airflow_provider_kestra.utils.routes`. Failed requests are retried according to
:mod:`airflow_provider_kestra.utils.retry`; the POST that creates an execution is never repeated blindly
(see :meth:`KestraHook.create_execution`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraConfigError,
    KestraConnectionError,
    KestraError,
    KestraServerError,
    with_note,
)
from airflow_provider_kestra.hooks import kestra_base as base
from airflow_provider_kestra.hooks.kestra_base import (
    LOG_CHUNK_BYTES,
    UNKNOWN_OUTCOME_NOTE,
    KestraAttemptFailure,
    KestraCall,
)
from airflow_provider_kestra.hooks.kestra_deploy import KestraFlowDeployer
from airflow_provider_kestra.utils.encoding import validate_labels
from airflow_provider_kestra.utils.files import find_kestra_uris, safe_local_path, unique_file_names
from airflow_provider_kestra.utils.logs import KestraJsonArrayReader, KestraLogCursor, KestraLogSelection
from airflow_provider_kestra.utils.outputs import task_outputs_from_listing
from airflow_provider_kestra.utils.retry import is_ambiguous
from airflow_provider_kestra.utils.routes import KestraApiVersion, KestraRoute
from airflow_provider_kestra.utils.wait import (
    STREAM_FALLBACK_ERRORS,
    KestraMatchWait,
    KestraWaitTracker,
    wait_deadline,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_kestra.utils.connection import KestraConnectionSettings
    from airflow_provider_kestra.utils.models import (
        KestraExecution,
        KestraExecutionQuery,
        KestraLogEntry,
        KestraOutputs,
        KestraServerInfo,
    )

__all__ = ["KestraHook"]

log = logging.getLogger(__name__)


class KestraHook(KestraFlowDeployer):
    """Synchronous Kestra client: one ``requests.Session`` per hook (keep-alive, no cookies).

    :param kestra_conn_id: Airflow connection id (type ``kestra``).
    :param retry_limit: how many times a failed request may be repeated (see :mod:`..utils.retry`).
    :param retry_delay: base of the exponential backoff, in seconds.
    :param request_timeout: seconds per request; defaults to the connection's ``timeout`` extra (30).
    """

    # Connection form for Airflow 2.11 (Airflow 3 reads conn-fields / ui-field-behaviour from provider info);
    # both are rendered from airflow_provider_kestra.connection_form.
    # Defined on KestraHook itself: Airflow only reads these from the hook class's own __dict__.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.x UI), without defaults (see connection_form)."""
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import PasswordField, StringField

        from airflow_provider_kestra.connection_form import KESTRA_CONN_FIELDS

        return {
            field.name: (PasswordField if field.secret else StringField)(
                lazy_gettext(field.label),
                description=lazy_gettext(field.description),
                widget=BS3PasswordFieldWidget() if field.secret else BS3TextFieldWidget(),
            )
            for field in KESTRA_CONN_FIELDS
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden fields, labels and placeholders of the connection form (Airflow 2.x UI)."""
        from airflow_provider_kestra.connection_form import ui_field_behaviour

        return ui_field_behaviour()

    def __enter__(self) -> KestraHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- plumbing
    @property
    def settings(self) -> KestraConnectionSettings:
        """The resolved connection settings (read once)."""
        if self._settings is None:
            self._settings = self._settings_from_connection(self.get_connection(self.kestra_conn_id))
        return self._settings

    def _ensure_connected(self) -> KestraConnectionSettings:
        """Read the connection now if not yet done (routes, URLs and headers depend on it)."""
        return self.settings

    @property
    def _timeout(self) -> float:
        return self.request_timeout or self.settings.timeout

    @cached_property
    def session(self) -> requests.Session:
        """The keep-alive session, with auth, TLS and User-Agent set, and cookies refused."""
        settings = self.settings
        session = requests.Session()
        session.headers.update(self._headers())
        session.verify = settings.verify
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        return session

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session`` (Airflow's usual hook accessor)."""
        return self.session

    def close(self) -> None:
        """Close the session's connections."""
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    @property
    def api_version(self) -> KestraApiVersion:
        """The API generation in use: pinned by the ``api_version`` extra, else detected once."""
        if self._api_version is None:
            pinned = self.settings.api_version
            self._api_version = pinned or KestraApiVersion(self.server_info()["api_version"])
        return self._api_version

    def _route_of(self, call: KestraCall) -> KestraRoute:
        self._ensure_connected()
        return self._route(call.route, self._fixed_version(call) or self.api_version, **call.path)

    # ------------------------------------------------------------------------------------------- server
    def server_info(self) -> KestraServerInfo:
        """Version, edition and API generation of the server (``GET /api/v1/configs``, read once).

        Credentials are sent: Kestra 2.x and basic-auth-enabled 0.x servers require them there. The answer
        is shared by every hook of the process that talks to the same server, for ten minutes
        (:data:`~airflow_provider_kestra.hooks.kestra_base.SERVER_INFO_CACHE`).
        """
        if self._server_info is None:
            self._ensure_connected()
            facts = base.SERVER_INFO_CACHE.fetch(self._server_key(), self._ask_server)
            self._server_info = self._server_info_of(facts)
        return self._server_info

    def _ask_server(self) -> base.KestraServerFacts:
        """Send ``GET /api/v1/configs`` (with retries) and read the server's answer."""
        facts: base.KestraServerFacts = self._call(base.server_info_call())
        return facts

    def test_connection(self) -> tuple[bool, str]:
        """Check the URL, TLS, credentials and tenant; the message says what was found or what failed
        (DNS, refused, TLS, timeout, 401, 403, unknown tenant), in one line. Nothing is retried, so the
        answer comes within one request timeout per request."""
        try:
            settings = self.settings
        except KestraConfigError as err:
            return False, f"Invalid Kestra connection: {err}"
        limit, self.retry_limit = self.retry_limit, 0
        try:
            try:  # really asked (a stored answer proves nothing about the server now), then stored
                facts = self._ask_server()
                base.SERVER_INFO_CACHE.put(self._server_key(), facts)
                info = self._server_info = self._server_info_of(facts)
            except KestraError as err:
                return False, base.one_line(base.connection_test_failure(settings, None, err))
            try:
                self._call(base.search_flows_call())
            except KestraError as err:
                return False, base.one_line(base.connection_test_failure(settings, info, err))
            return True, base.connection_test_success(settings, info)
        finally:
            self.retry_limit = limit

    # --------------------------------------------------------------------------------------- executions
    def create_execution(
        self,
        namespace: str,
        flow_id: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        labels: Mapping[str, Any] | None = None,
        revision: int | None = None,
        schedule_date: datetime | str | None = None,
        idempotency_label_key: str | None = None,
        breakpoints: Sequence[str] | str | None = None,
        kind: str | None = None,
    ) -> KestraExecution:
        """Start an execution (``POST /executions/{namespace}/{flowId}``, multipart inputs).

        The POST is never repeated blindly. It is retried when Kestra certainly did not get it (connection
        refused, 429). When the outcome is unknown (connection lost after sending, read timeout,
        502/503/504, or a 200 whose body is empty, cut or not JSON, such as a proxy's HTML page) and
        ``idempotency_label_key`` names a label whose value is unique to this request, the hook searches
        for an execution of the flow carrying that label, again and again for up to
        :data:`UNKNOWN_OUTCOME_SEARCH_SECONDS` (Kestra's search may list a new execution late): found → it
        is returned; still not found → the POST is sent again. Without that key an unknown outcome raises
        at once rather than risk a second run. Bad inputs or labels raise :class:`KestraInputError` before
        anything is sent. A 404 on the first reads of the new execution (read-after-write lag) is retried.

        ``breakpoints`` (task ids, or ``taskId.value``) and ``kind`` (``NORMAL``, ``TEST``, ``PLAYGROUND``)
        are Kestra 1.x/2.x options; a 0.22 server refuses them with :class:`KestraConfigError` before sending.
        """
        if breakpoints or kind is not None:
            base.check_create_options(self.api_version, breakpoints, kind)
        clean_labels = validate_labels(labels)
        if idempotency_label_key is not None and idempotency_label_key not in clean_labels:
            raise KestraConfigError(
                f"idempotency_label_key {idempotency_label_key!r} is not one of the execution's labels"
            )
        call = base.create_execution_call(
            namespace,
            flow_id,
            inputs=inputs,
            labels=clean_labels,
            revision=revision,
            schedule=schedule_date,
            breakpoints=breakpoints,
            kind=kind,
        )
        route = self._route_of(call)
        attempt = 0
        while True:
            try:
                response = self._attempt(route, call)
                with contextlib.closing(response):
                    created = base.created_execution(self._answer(call, route, response), route)
                self._expect(str(created["id"]))
                return created
            except KestraAttemptFailure as failure:
                ambiguous = is_ambiguous(failure.kind)
                if ambiguous:
                    if idempotency_label_key is None:
                        raise with_note(failure.error, UNKNOWN_OUTCOME_NOTE) from None
                    found = self._find_after_unknown_outcome(
                        failure, attempt, namespace, flow_id, idempotency_label_key, clean_labels
                    )
                    if found is not None:
                        return found
                if attempt >= self.retry_limit:
                    self._give_up(failure, route, attempt + 1)
                if not ambiguous:
                    self._sleep(self._retry_pause(attempt, failure))
                log.warning(
                    "Kestra %s %s failed (%s); sending it again", route.method, route.path, failure.kind.value
                )
                attempt += 1

    def get_execution(self, execution_id: str) -> KestraExecution:
        """The execution with its task runs (``GET /executions/{id}``)."""
        return self._call(base.get_execution_call(execution_id))

    def search_executions(
        self, query: KestraExecutionQuery | None = None, *, size: int = 100, **filters: Any
    ) -> list[KestraExecution]:
        """Executions matching ``query`` (or the filter keywords ``namespace``, ``flow_id``, ``states``,
        ``labels``, ``started_after``), newest first; refuses to search with no filter.

        On 2.x the results are "light" executions (no ``taskRunList``).
        """
        return self._call(base.search_executions_call(base.execution_query(query, filters), size))

    def wait_for_match(
        self, query: KestraExecutionQuery, deadline: float | None = None, poll_interval: float = 5.0
    ) -> KestraExecution | None:
        """The newest execution matching ``query``, searching every ``poll_interval`` seconds until one
        exists; None once ``deadline`` (a UNIX time) has passed without a match."""
        wait = KestraMatchWait(deadline, poll_interval, clock=self._clock)
        with self.retrying_until(deadline, what=base.match_wait_what(query)):
            while not (found := self._search_once(wait, query)):
                if (pause := wait.next_pause()) is None:
                    return None
                self._sleep(pause)
        return found[0]

    def kill_execution(self, execution_id: str) -> None:
        """Ask Kestra to kill the execution (asynchronous; a finished execution is left as it is)."""
        self._call(base.kill_execution_call(execution_id))

    def restart_execution(self, execution_id: str, *, revision: int | None = None) -> KestraExecution:
        """Restart a failed execution from its failed tasks (same id, state RESTARTED)."""
        return self._call(base.restart_execution_call(execution_id, revision))

    def resume_execution(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> None:
        """Resume a PAUSED execution, passing the Pause task's ``onResume`` inputs (multipart)."""
        self._call(base.resume_execution_call(execution_id, inputs))

    def restart_to_execution(
        self, execution_id: str, *, revision: int | None = None, find_timeout: float = 30.0
    ) -> KestraExecution:
        """Restart a failed execution and return the execution that runs the restart.

        Without ``revision`` Kestra restarts the execution itself (same id). With one it makes a NEW
        execution (``parentId`` the original) on that revision; 1.x answers the new one, 2.x answers the
        original (the action is awaited on the requested id), so the new one is then looked up by flow,
        ``system.correlationId`` and ``parentId`` among the executions that did not exist before, for up to
        ``find_timeout`` seconds. The restart request itself is sent once: an answer lost on the way
        (502/503/504) is resolved by the same look-up, never by restarting again.
        """
        if revision is None:
            restarted = self.restart_execution(execution_id)
            return (
                restarted
                if isinstance(restarted, dict) and restarted.get("id")
                else self.get_execution(execution_id)
            )
        original = self.get_execution(execution_id)
        query = base.restart_search(original)
        known = base.restart_copies(execution_id, self.search_executions(query, size=100))
        answer: KestraExecution | None = None
        lost: KestraServerError | None = None
        try:
            answer = self.restart_execution(execution_id, revision=revision)
        except KestraServerError as err:
            if err.status not in (502, 503, 504):
                raise
            lost = err
        if isinstance(answer, dict) and answer.get("id") and answer["id"] != execution_id:
            return answer
        wait = KestraMatchWait(time.time() + find_timeout, 0.5)
        while True:
            new = base.restart_copies(execution_id, self.search_executions(query, size=100)) - known
            if new:
                return self.get_execution(sorted(new)[0])
            pause = wait.next_pause()
            if pause is None:
                break
            self._sleep(pause)
        message = (
            f"Restarting execution {execution_id} on revision {revision}: Kestra made no new execution "
            f"visible within {find_timeout:g}s; the restart was not requested again"
        )
        raise with_note(lost, message) if lost is not None else KestraError(message)

    def delete_execution(self, execution_id: str, **options: bool) -> None:
        """Delete an execution; by default also its logs, metrics and internal-storage files. ``options``:
        ``delete_logs``, ``delete_metrics``, ``delete_storage`` (Kestra's ``deleteLogs``...; all True by
        default). A missing execution raises :class:`KestraNotFoundError`."""
        self._call(base.delete_execution_call(execution_id, **options))

    def trigger_webhook(
        self, namespace: str, flow_id: str, key: str, body: Any = None, *, method: str = "POST"
    ) -> Any:
        """Fire a flow's Webhook trigger (``/executions/webhook/{namespace}/{flowId}/{key}``) and return
        Kestra's answer: the new execution (``id``, ``state``, ``url``...), or what the trigger is set to
        answer (``wait``/``returnOutputs``), or None for an empty answer.

        ``key`` is the trigger's secret: it goes only into the request path, and every error raised here
        has it masked (``***``). The request is sent once, never retried: a repeat would start a second
        execution, and a retry would log the path.
        """
        call = base.webhook_call(namespace, flow_id, key, body, method)
        try:
            route = self._route_of(call)
            response = self._attempt(route, call)
            with contextlib.closing(response):
                return self._answer(call, route, response)
        except KestraAttemptFailure as failure:
            raise base.without_secret(failure.error, key) from None
        except KestraError as err:
            raise base.without_secret(err, key) from None

    def execution_ui_url(self, execution_or_id: KestraExecution | str) -> str:
        """The Kestra UI page of an execution (``ui_url`` extra, else the API base URL)."""
        execution = (
            self.get_execution(execution_or_id) if isinstance(execution_or_id, str) else execution_or_id
        )
        return self._ui_url(execution, self.api_version)

    def follow_execution(
        self, execution_id: str, *, read_timeout: float | None = None
    ) -> Generator[KestraExecution, None, None]:
        """Execution updates from the SSE stream, ending with the final one (the ``end`` frame).

        Skips the ``start`` stub. Opens the stream once, never retried: an error answer goes through the
        shared stream policy (:meth:`KestraHookBase._stream_refused`, 429/5xx → :class:`KestraStreamError`,
        so a wait polls meanwhile). Raises :class:`KestraStreamError` too when the stream stops before
        ``end`` (cut, idle longer than ``read_timeout``, or an unknown id: Kestra closes without a 404).
        """
        stream = self._follow(execution_id, read_timeout)
        with contextlib.closing(stream):
            for execution in stream:
                if execution is not None:
                    yield execution

    def wait_for_execution(
        self,
        execution_id: str,
        *,
        deadline: float | None = None,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        on_update: Callable[[KestraExecution], None] | None = None,
        until: Callable[[KestraExecution], bool] | None = None,
        on_frame: Callable[[KestraExecution], None] | None = None,
    ) -> KestraExecution:
        """Block until the execution is terminal, or until ``until(execution)`` is true when given, and
        return it (follows SSE, falls back to polling; a refused or cut stream never fails the wait).

        ``on_update`` is called for each new state, ``on_frame`` for every execution read (stream frame or
        poll, changed or not: task runs move while the state stays RUNNING). Raises
        :class:`KestraWaitTimeout` past ``deadline`` (a UNIX time, as for :class:`KestraAsyncHook`) or
        ``timeout`` seconds from now (the earlier wins).
        """
        limit = wait_deadline(timeout, deadline, self._clock)
        wait = KestraWaitTracker(
            execution_id, limit, on_update, clock=self._clock, until=until, on_frame=on_frame
        )
        with self.retrying_until(limit, what=f"waiting for execution {execution_id}"):
            self._expect(execution_id)
            while True:
                if wait.use_stream:
                    try:
                        stream = self._follow(execution_id, read_timeout=wait.begin_stream())
                        with contextlib.closing(stream):
                            for execution in stream:
                                step = wait.stream_read(execution, poll_interval)
                                if step == "poll":
                                    step = "end" if wait.polled(self._poll(wait, execution_id)) else ""
                                if step == "end" and wait.last is not None:
                                    return wait.last
                    except STREAM_FALLBACK_ERRORS as err:
                        wait.stream_failed(err)
                if wait.polled(execution := self._poll(wait, execution_id)):
                    return execution
                pause = wait.poll_pause(poll_interval)
                if pause > 0:
                    self._sleep(pause)
                wait.check_deadline()

    # ------------------------------------------------------------------------------------ outputs, files
    def get_outputs(
        self, execution_or_id: KestraExecution | str, *, include_task_outputs: bool = False
    ) -> KestraOutputs:
        """``{"outputs": flow outputs, "task_outputs": {task_id: outputs}}``, the same on 1.x and 2.x.

        1.x carries both in the execution (``outputs``, ``taskRunList[].outputs``). 2.x keeps them apart
        and serves them at ``/outputs/executions/{id}`` and ``/outputs/tasks/{id}[/{taskRunId}]``; its
        executions carry ``outputs`` only when made before 2.0 (Kestra's ``ExecutionOutputService``).
        """
        if self.api_version is not KestraApiVersion.V2:
            execution = execution_or_id
            if isinstance(execution, str) or (include_task_outputs and "taskRunList" not in execution):
                execution = self.get_execution(base.execution_id_of(execution))
            return base.outputs_of_execution(execution, include_task_outputs)
        execution_id = base.execution_id_of(execution_or_id)
        outputs: dict[str, Any] = self._call(base.flow_outputs_call(execution_id))
        if not outputs and not isinstance(execution_or_id, str):
            outputs = dict(execution_or_id.get("outputs") or {})
        task_outputs = {}
        if include_task_outputs:
            task_outputs = task_outputs_from_listing(
                self._call(base.task_outputs_list_call(execution_id)),
                lambda task_run_id: self._call(base.task_run_outputs_call(execution_id, task_run_id)),
            )
        return {"outputs": outputs, "task_outputs": task_outputs}

    def download_output_files(
        self, execution_or_id: KestraExecution | str, directory: str | Path
    ) -> list[Path]:
        """Download every ``kestra:///`` file of the flow and task outputs into ``directory``.

        Local names come only from the URI's last segment, sanitised and made unique (task files are
        prefixed with their task id); nothing can be written outside ``directory``.
        """
        outputs = self.get_outputs(execution_or_id, include_task_outputs=True)
        execution_id = base.execution_id_of(execution_or_id)
        uris: list[str] = []
        prefixes: list[str | None] = []
        for uri in find_kestra_uris(outputs["outputs"]):
            uris.append(uri)
            prefixes.append(None)
        for task_id, task_outputs in outputs["task_outputs"].items():
            for uri in find_kestra_uris(task_outputs):
                if uri not in uris:
                    uris.append(uri)
                    prefixes.append(task_id)
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        paths = []
        for uri, name in zip(uris, unique_file_names(uris, prefixes), strict=True):
            path = safe_local_path(target, name)
            self._download_file(execution_id, uri, path)
            paths.append(path)
        return paths

    def _download_file(self, execution_id: str, uri: str, path: Path) -> None:
        call = base.execution_file_call(execution_id, uri)
        response = self._request(self._route_of(call), call, stream=True)
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as handle:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
            partial.replace(path)
        except (requests.exceptions.RequestException, OSError) as err:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise KestraConnectionError(f"{call.context} failed: {self._error_detail(err)}") from None
        finally:
            response.close()

    # --------------------------------------------------------------------------------------------- logs
    def get_logs(
        self, execution_id: str, *, min_level: str = "INFO", cursor: KestraLogCursor | None = None
    ) -> tuple[list[KestraLogEntry], KestraLogCursor]:
        """Log lines not returned before (pass back the returned cursor), at ``min_level`` or above.

        Holds every new line at once; :meth:`iter_logs` hands them over one by one instead.
        """
        selection = KestraLogSelection(min_level, cursor)
        return list(self.iter_logs(execution_id, selection)), selection.cursor

    def iter_logs(self, execution_id: str, selection: KestraLogSelection) -> Iterator[KestraLogEntry]:
        """The log lines ``selection`` accepts (level, not seen before), oldest first.

        Reads only what is new: ``GET /logs/search`` from the cursor's ``since`` on, every page, then the
        lines in order (see :class:`~airflow_provider_kestra.hooks.kestra_base.KestraLogSearch`). A 0.22
        server, or one that refuses the search (400/404/405) or ignores its execution filter (lines of
        another execution, never shown), is read whole with ``GET /logs/{id}`` instead, decoded entry by
        entry so memory stays bounded however long the log is; the hook remembers that choice. Read
        ``selection.cursor`` afterwards (also after an error: it covers exactly the lines handed over).
        """
        search = self._log_search(self.api_version, execution_id, selection)
        if search is not None:
            try:
                while search.step is not None:
                    yield from base.accepted_entries(selection, search.take(self._call(search.step)))
            except KestraApiError as err:
                if not self._log_search_refused(err):
                    raise
            else:
                if self._log_search_finished(search):
                    return
        call = base.logs_call(execution_id, selection.min_level)
        route = self._route_of(call)
        for attempt in itertools.count():
            response = self._request(route, call, stream=True)
            reader, decoded = KestraJsonArrayReader(f"Kestra's answer to {route.method} {route.path}"), 0
            try:
                for chunk in response.iter_content(chunk_size=LOG_CHUNK_BYTES):
                    entries = reader.feed(chunk)
                    decoded += len(entries)
                    yield from base.accepted_entries(selection, entries)
                yield from base.accepted_entries(selection, reader.close())
                return
            except (requests.exceptions.RequestException, OSError, KestraError) as err:
                failure = self._log_read_failed(call, err, decoded)
            finally:
                response.close()
            self._sleep(self._retry_or_give_up(route, attempt, failure))

    def download_logs(self, execution_id: str, min_level: str = "INFO") -> str:
        """The whole log of an execution as text (``<instant> <LEVEL> <message>`` lines)."""
        return self._call(base.download_logs_call(execution_id, min_level))
