"""Hooks for the Kestra REST API: :class:`KestraHook` (requests) and :class:`KestraAsyncHook` (httpx).

Both read an Airflow connection of type ``kestra`` (see :mod:`airflow_provider_kestra.utils.connection`),
detect the server's API generation once with ``GET /api/v1/configs`` unless the ``api_version`` extra
pins it, and resolve every call through the one route table of :mod:`airflow_provider_kestra.utils.routes`.
Failed requests are retried according to :mod:`airflow_provider_kestra.utils.retry`; the POST that creates
an execution is never repeated blindly (see :meth:`KestraHook.create_execution`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraAuthenticationError,
    KestraBadRequestError,
    KestraConfigError,
    KestraConnectionError,
    KestraError,
    KestraFlowDeployError,
    KestraFlowValidationError,
    KestraNotFoundError,
    KestraPermissionError,
)
from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
from airflow_provider_kestra.hooks.kestra_base import (
    LOG_CHUNK_BYTES,
    STREAM_FALLBACK_ERRORS,
    UNKNOWN_OUTCOME_NOTE,
    KestraAttemptFailure,
    KestraHookBase,
    KestraWaitTracker,
    auth_message,
    decode_json,
    execution_id_of,
    stream_ended_early,
    with_note,
)
from airflow_provider_kestra.utils.encoding import (
    encode_inputs,
    encode_labels,
    execution_search_params,
    format_instant,
    multipart_body,
    validate_labels,
)
from airflow_provider_kestra.utils.files import find_kestra_uris, safe_local_path, unique_file_names
from airflow_provider_kestra.utils.flows import (
    KestraFlowDocument,
    flow_identity,
    flow_problem,
    parse_sources,
    problems_message,
    scope_problems,
    validation_problems,
)
from airflow_provider_kestra.utils.logs import (
    KestraJsonArrayReader,
    KestraLogCursor,
    KestraLogSelection,
    normalise_level,
)
from airflow_provider_kestra.utils.models import (
    KestraExecution,
    KestraFlow,
    KestraFlowDeployResult,
    KestraFlowProblem,
    KestraLogEntry,
    KestraOutputs,
    KestraServerInfo,
)
from airflow_provider_kestra.utils.outputs import task_outputs_from_execution, task_outputs_from_listing
from airflow_provider_kestra.utils.retry import KestraFailureKind, is_ambiguous
from airflow_provider_kestra.utils.routes import KestraApiVersion, KestraRoute, has_route
from airflow_provider_kestra.utils.sse import KestraExecutionFollowReader, KestraSseLineBuffer

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_kestra.utils.connection import KestraConnectionSettings

__all__ = [
    "KestraAsyncHook",
    "KestraExecution",
    "KestraFlow",
    "KestraFlowDeployError",
    "KestraFlowDeployResult",
    "KestraFlowProblem",
    "KestraHook",
    "KestraLogCursor",
    "KestraLogEntry",
    "KestraOutputs",
    "KestraServerInfo",
]

log = logging.getLogger(__name__)


class KestraHook(KestraHookBase):
    """Synchronous Kestra client: one ``requests.Session`` per hook (keep-alive, no cookies).

    :param kestra_conn_id: Airflow connection id (type ``kestra``).
    :param retry_limit: how many times a failed request may be repeated (see :mod:`..utils.retry`).
    :param retry_delay: base of the exponential backoff, in seconds.
    :param request_timeout: seconds per request; defaults to the connection's ``timeout`` extra (30).
    """

    _sleep: Callable[[float], None] = staticmethod(time.sleep)
    """How the hook pauses between retries and polls (tests replace it on the instance)."""

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

    def route(self, name: str, **params: str) -> KestraRoute:
        """A route of the table resolved for this server."""
        self.settings  # noqa: B018 - loads the connection
        return self._route(name, self.api_version, **params)

    def _attempt(
        self, route: KestraRoute, *, context: str | None, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        """Send once; raise :class:`KestraAttemptFailure` for retryable failures, a typed error otherwise."""
        kwargs.setdefault("timeout", self._timeout)
        try:
            response = self.session.request(route.method, self._url(route), stream=stream, **kwargs)
        except requests.exceptions.SSLError as err:
            raise self._connection_error(route, err, context) from None
        except requests.exceptions.ConnectTimeout as err:
            raise KestraAttemptFailure(
                KestraFailureKind.NOT_SENT, self._connection_error(route, err, context)
            ) from None
        except requests.exceptions.ConnectionError as err:
            kind = KestraFailureKind.NOT_SENT if _never_sent(err) else KestraFailureKind.LOST
            raise KestraAttemptFailure(kind, self._connection_error(route, err, context)) from None
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            raise KestraAttemptFailure(
                KestraFailureKind.LOST, self._connection_error(route, err, context)
            ) from None
        if response.status_code < 400:
            return response
        body = response.text
        response.close()
        raise self._status_failure(
            route, response.status_code, body, response.headers.get("Retry-After"), context
        )

    def _request(self, route: KestraRoute, *, context: str | None = None, **kwargs: Any) -> requests.Response:
        """Send with retries as the route's retry mode allows."""
        attempt = 0
        while True:
            try:
                return self._attempt(route, context=context, **kwargs)
            except KestraAttemptFailure as failure:
                self._sleep(self._retry_or_give_up(route, attempt, failure))
                attempt += 1

    def _json(self, route: KestraRoute, *, context: str | None = None, **kwargs: Any) -> Any:
        response = self._request(route, context=context, **kwargs)
        return _decode_json(response, route)

    # ------------------------------------------------------------------------------------------- server
    def server_info(self) -> KestraServerInfo:
        """Version, edition and API generation of the server (``GET /api/v1/configs``, read once).

        Credentials are sent: Kestra 2.x and basic-auth-enabled 0.x servers require them there.
        """
        if self._server_info is None:
            settings = self.settings
            route = self._route("configs", settings.api_version or KestraApiVersion.V1)
            response = self._request(route, context="Reading the Kestra server version")
            self._server_info = self._server_info_from_configs(
                _decode_json(response, route), response.headers
            )
        return self._server_info

    def test_connection(self) -> tuple[bool, str]:
        """Check the URL, TLS, credentials and tenant; the message says what was found or what failed."""
        try:
            settings = self.settings
        except KestraConfigError as err:
            return False, f"Invalid Kestra connection: {err}"
        try:
            info = self.server_info()
        except KestraConnectionError as err:
            return False, str(err)
        except KestraAuthenticationError:
            return False, auth_message(settings, None)
        except KestraApiError as err:
            return (
                False,
                f"Kestra at {settings.base_url} answered GET /api/v1/configs with HTTP {err.status}: {err}",
            )
        found = f"Kestra {info['version'] or '(unknown version)'} {info['edition'] or ''}".rstrip()
        try:
            self._json(self.route("flow_search"), params={"page": 1, "size": 1}, context="Listing flows")
        except KestraConnectionError as err:
            return False, f"Found {found}, but then: {err}"
        except KestraAuthenticationError:
            return False, auth_message(settings, found)
        except KestraPermissionError:
            return False, (
                f"Found {found}; the credentials were accepted but may not read flows of tenant "
                f"{settings.tenant!r} (HTTP 403)"
            )
        except (KestraBadRequestError, KestraNotFoundError) as err:
            return (
                False,
                f"Found {found}, but tenant {settings.tenant!r} was refused: {err.kestra_message or err}",
            )
        except KestraApiError as err:
            return False, f"Found {found}, but listing flows failed: {err}"
        tenant = "" if self.api_version is KestraApiVersion.V0_22 else f", tenant {settings.tenant!r}"
        return True, f"Connected to {found} (API {info['api_version']}, auth: {settings.auth_kind}{tenant})"

    # -------------------------------------------------------------------------------------------- flows
    def get_flow(self, namespace: str, flow_id: str, *, source: bool = True) -> KestraFlow:
        """A flow (with its YAML ``source`` by default)."""
        route = self.route("flow_get", namespace=namespace, flow_id=flow_id)
        params = {"source": "true" if source else "false"}
        return self._json(route, params=params, context=f"Reading flow {namespace}.{flow_id}")

    def list_flows(self, namespace: str) -> list[KestraFlow]:
        """The flows of exactly this namespace."""
        route = self.route("flow_list", namespace=namespace)
        return list(self._json(route, context=f"Listing flows of namespace {namespace}") or [])

    def create_flow(self, source: str) -> KestraFlow:
        """Create a flow from its YAML source, sent untouched."""
        namespace, flow_id = _identity(source)
        return self._json(
            self.route("flow_create"),
            data=source.encode("utf-8"),
            headers={"Content-Type": "application/x-yaml"},
            context=f"Creating flow {namespace}.{flow_id}",
        )

    def update_flow(self, namespace: str, flow_id: str, source: str) -> KestraFlow:
        """Replace a flow's source (the source's id/namespace must match, Kestra refuses otherwise)."""
        return self._json(
            self.route("flow_update", namespace=namespace, flow_id=flow_id),
            data=source.encode("utf-8"),
            headers={"Content-Type": "application/x-yaml"},
            context=f"Updating flow {namespace}.{flow_id}",
        )

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Delete a flow (Kestra keeps it as a deleted revision)."""
        route = self.route("flow_delete", namespace=namespace, flow_id=flow_id)
        self._request(route, context=f"Deleting flow {namespace}.{flow_id}").close()

    def validate_flows(
        self, sources: str | Sequence[str], filenames: Sequence[str] | None = None
    ) -> list[KestraFlowProblem]:
        """Check flow sources locally and with ``POST /flows/validate``; returns only the problems.

        Each problem names the file, the flow's position in it, namespace, id and Kestra's message.
        """
        documents, problems = parse_sources(sources, filenames)
        return problems + self._validate_documents(documents)

    def _validate_documents(self, documents: list[KestraFlowDocument]) -> list[KestraFlowProblem]:
        # Documents holding "---" go alone: Kestra's naive split would cut them inside a batch.
        batch = [doc for doc in documents if not doc.has_separator_text]
        groups = ([batch] if batch else []) + [[doc] for doc in documents if doc.has_separator_text]
        problems: list[KestraFlowProblem] = []
        for group in groups:
            body = "\n---\n".join(doc.source.rstrip("\n") for doc in group) + "\n"
            results = self._json(
                self.route("flow_validate"),
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/x-yaml"},
                context="Validating flows",
            )
            problems.extend(validation_problems(group, results if isinstance(results, list) else []))
        return problems

    def upsert_flow(self, source: str, *, dry_run: bool = False) -> KestraFlowDeployResult:
        """Create the flow, update it, or leave it when Kestra already has this exact source."""
        namespace, flow_id = _identity(source)
        try:
            existing = self.get_flow(namespace, flow_id, source=True)
        except KestraNotFoundError:
            existing = None
        if existing is None:
            if dry_run:
                return _deploy_result(namespace, flow_id, None, "would-create")
            created = self.create_flow(source)
            return _deploy_result(namespace, flow_id, created.get("revision"), "created")
        revision = existing.get("revision")
        if _same_source(existing.get("source"), source):
            return _deploy_result(namespace, flow_id, revision, "unchanged")
        if dry_run:
            return _deploy_result(namespace, flow_id, revision, "would-update")
        updated = self.update_flow(namespace, flow_id, source)
        new_revision = updated.get("revision")
        action = "unchanged" if new_revision is not None and new_revision == revision else "updated"
        return _deploy_result(namespace, flow_id, new_revision, action)

    def deploy_flows(
        self,
        sources: str | Sequence[str],
        *,
        namespace: str | None = None,
        delete_missing: bool = False,
        dry_run: bool = False,
        filenames: Sequence[str] | None = None,
    ) -> list[KestraFlowDeployResult]:
        """Validate every flow, then create/update each one (and delete the namespace's other flows).

        Nothing is deployed when any flow is invalid (:class:`KestraFlowValidationError` lists them all).
        ``delete_missing`` needs an explicit ``namespace`` and only touches flows of exactly that namespace.
        A failure midway raises :class:`KestraFlowDeployError` naming what was and was not deployed.
        """
        if delete_missing and not namespace:
            raise KestraConfigError(
                "delete_missing=True needs an explicit namespace (refusing to guess which flows to delete)"
            )
        documents, problems = parse_sources(sources, filenames)
        problems += scope_problems(documents, namespace) + self._validate_documents(documents)
        if problems:
            raise KestraFlowValidationError(problems_message(problems), problems)
        results: list[KestraFlowDeployResult] = []
        pending = [f"{doc.namespace}.{doc.flow_id}" for doc in documents]
        try:
            for doc in documents:
                results.append(self.upsert_flow(doc.source, dry_run=dry_run))
                pending.pop(0)
            if delete_missing and namespace:
                wanted = {doc.flow_id for doc in documents}
                for flow in self.list_flows(namespace):
                    if flow.get("id") in wanted or flow.get("namespace", namespace) != namespace:
                        continue
                    if not dry_run:
                        self.delete_flow(namespace, str(flow["id"]))
                    results.append(
                        _deploy_result(
                            namespace, str(flow["id"]), None, "would-delete" if dry_run else "deleted"
                        )
                    )
        except KestraError as err:
            done = ", ".join(f"{r['namespace']}.{r['flow_id']} ({r['action']})" for r in results) or "nothing"
            raise KestraFlowDeployError(
                f"Flow deployment stopped: {err}. Already deployed: {done}. "
                f"Not deployed: {', '.join(pending) or 'none (the deletions were not finished)'}",
                deployed=results,
                not_deployed=pending,
            ) from err
        return results

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
    ) -> KestraExecution:
        """Start an execution (``POST /executions/{namespace}/{flowId}``, multipart inputs).

        The POST is never repeated blindly. It is retried when Kestra certainly did not get it (connection
        refused, 429). When the outcome is unknown (connection lost after sending, read timeout,
        502/503/504) and ``idempotency_label_key`` names a label whose value is unique to this request, the
        hook searches for an execution of the flow carrying that label: found → it is returned; not found
        → the POST is sent again. Without that key an unknown outcome raises at once rather than risk a
        second run.
        """
        clean_labels = validate_labels(labels)
        if idempotency_label_key is not None and idempotency_label_key not in clean_labels:
            raise KestraConfigError(
                f"idempotency_label_key {idempotency_label_key!r} is not one of the execution's labels"
            )
        parts = encode_inputs(inputs)
        params: list[tuple[str, str]] = encode_labels(clean_labels)
        if revision is not None:
            params.append(("revision", str(int(revision))))
        if schedule_date is not None:
            params.append(("scheduleDate", format_instant(schedule_date)))
        kwargs: dict[str, Any] = {"params": params}
        if parts:
            body, content_type = multipart_body(parts)
            kwargs.update(data=body, headers={"Content-Type": content_type})
        route = self.route("execution_create", namespace=namespace, flow_id=flow_id)
        context = f"Starting an execution of flow {namespace}.{flow_id}"
        attempt = 0
        while True:
            try:
                return _decode_json(self._attempt(route, context=context, **kwargs), route)
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

    def _find_after_unknown_outcome(
        self,
        failure: KestraAttemptFailure,
        attempt: int,
        namespace: str,
        flow_id: str,
        key: str,
        labels: dict[str, str],
    ) -> KestraExecution | None:
        """Look (twice, after a pause each) for the execution a lost create request may have started.

        Kestra stores a new execution asynchronously, so one immediate search could miss it.
        """
        for check in range(2):
            self._sleep(self._retry_pause(attempt + check, failure))
            try:
                matches = self.search_executions(
                    namespace=namespace, flow_id=flow_id, labels={key: labels[key]}, size=2
                )
                if matches:
                    found = self.get_execution(str(matches[0]["id"]))
                    log.warning(
                        "Starting flow %s.%s had an unknown outcome; found execution %s by label %s",
                        namespace,
                        flow_id,
                        found.get("id"),
                        key,
                    )
                    return found
            except KestraError as err:
                note = f"the execution may or may not have been created; looking for it by label {key!r} "
                note += f"failed: {err}"
                raise with_note(failure.error, note) from None
        return None

    def get_execution(self, execution_id: str) -> KestraExecution:
        """The execution with its task runs (``GET /executions/{id}``)."""
        route = self.route("execution_get", execution_id=execution_id)
        return self._json(route, context=f"Reading execution {execution_id}")

    def search_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Sequence[str] | None = None,
        labels: Mapping[str, Any] | None = None,
        started_after: datetime | str | None = None,
        size: int = 100,
    ) -> list[KestraExecution]:
        """Executions matching every given filter, newest first; refuses to search with no filter.

        On 2.x the results are "light" executions (no ``taskRunList``).
        """
        params = execution_search_params(
            namespace=namespace,
            flow_id=flow_id,
            states=states,
            labels=labels,
            started_after=started_after,
            size=size,
        )
        data = self._json(self.route("execution_search"), params=params, context="Searching executions")
        return list((data or {}).get("results") or [])

    def kill_execution(self, execution_id: str) -> None:
        """Ask Kestra to kill the execution (asynchronous; a finished execution is left as it is)."""
        route = self.route("execution_kill", execution_id=execution_id)
        self._request(route, context=f"Killing execution {execution_id}").close()

    def restart_execution(self, execution_id: str, *, revision: int | None = None) -> KestraExecution:
        """Restart a failed execution from its failed tasks (same id, state RESTARTED)."""
        route = self.route("execution_restart", execution_id=execution_id)
        params = {"revision": str(int(revision))} if revision is not None else None
        return self._json(route, params=params, context=f"Restarting execution {execution_id}")

    def resume_execution(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> None:
        """Resume a PAUSED execution, passing the Pause task's ``onResume`` inputs (multipart)."""
        body, content_type = multipart_body(encode_inputs(inputs))
        route = self.route("execution_resume", execution_id=execution_id)
        self._request(
            route,
            data=body,
            headers={"Content-Type": content_type},
            context=f"Resuming execution {execution_id}",
        ).close()

    def delete_execution(self, execution_id: str) -> None:
        """Delete an execution with its logs, metrics and files."""
        route = self.route("execution_delete", execution_id=execution_id)
        self._request(route, context=f"Deleting execution {execution_id}").close()

    def execution_ui_url(self, execution_or_id: KestraExecution | str) -> str:
        """The Kestra UI page of an execution (``ui_url`` extra, else the API base URL)."""
        execution = (
            self.get_execution(execution_or_id) if isinstance(execution_or_id, str) else execution_or_id
        )
        self.api_version  # noqa: B018 - the tenant segment depends on it
        return self._ui_url(execution)

    def follow_execution(
        self, execution_id: str, *, read_timeout: float | None = None
    ) -> Generator[KestraExecution, None, None]:
        """Execution updates from the SSE stream, ending with the final one (the ``end`` frame).

        Skips the ``start`` stub. Raises :class:`KestraStreamError` when the stream stops before ``end``
        (cut, idle longer than ``read_timeout``, or an unknown id: Kestra then closes without a 404).
        """
        route = self.route("execution_follow", execution_id=execution_id)
        timeout = (self._timeout, read_timeout or self._timeout)
        response = self._request(
            route,
            stream=True,
            timeout=timeout,
            headers={"Accept": "text/event-stream"},
            context=f"Following execution {execution_id}",
        )
        reader, lines = KestraExecutionFollowReader(), KestraSseLineBuffer()
        try:
            for chunk in response.iter_content(chunk_size=None):
                for line in lines.feed(chunk):
                    execution = reader.feed(line)
                    if execution is not None:
                        yield execution
                    if reader.ended:
                        return
        except (requests.exceptions.RequestException, OSError) as err:
            raise self._stream_cut(execution_id, err, idle=_read_timed_out(err)) from None
        finally:
            response.close()
        raise stream_ended_early(execution_id)

    def wait_for_execution(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        on_update: Callable[[KestraExecution], None] | None = None,
        until: Callable[[KestraExecution], bool] | None = None,
    ) -> KestraExecution:
        """Block until the execution is terminal, or until ``until(execution)`` is true when given, and
        return it (follows SSE, falls back to polling).

        ``on_update`` is called for each new state. Raises :class:`KestraWaitTimeout` after ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = KestraWaitTracker(execution_id, deadline, on_update, until=until)
        while True:
            if wait.use_stream:
                try:
                    stream = self.follow_execution(execution_id, read_timeout=wait.begin_stream())
                    with contextlib.closing(stream):
                        for execution in stream:
                            if wait.streamed(execution):
                                return execution
                except STREAM_FALLBACK_ERRORS as err:
                    wait.stream_failed(err)
            execution = self.get_execution(execution_id)
            if wait.polled(execution):
                return execution
            pause = wait.poll_pause(poll_interval)
            if pause > 0:
                self._sleep(pause)
            wait.check_deadline()

    # ------------------------------------------------------------------------------------ outputs, files
    def get_outputs(
        self, execution_or_id: KestraExecution | str, *, include_task_outputs: bool = False
    ) -> KestraOutputs:
        """``{"outputs": flow outputs, "task_outputs": {task_id: outputs}}``, the same on 1.x and 2.x."""
        execution = execution_or_id
        needs_task_runs = include_task_outputs and not has_route("outputs_list", self.api_version)
        if isinstance(execution, str) or (needs_task_runs and "taskRunList" not in execution):
            execution = self.get_execution(execution_id_of(execution))
        task_outputs: dict[str, Any] = {}
        if include_task_outputs:
            if needs_task_runs:
                task_outputs = task_outputs_from_execution(execution)
            else:
                execution_id = execution_id_of(execution)
                listing = self._json(
                    self.route("outputs_list", execution_id=execution_id),
                    context=f"Listing task outputs of execution {execution_id}",
                )
                task_outputs = task_outputs_from_listing(
                    listing or [], lambda task_run_id: self._task_run_outputs(execution_id, task_run_id)
                )
        return {"outputs": dict(execution.get("outputs") or {}), "task_outputs": task_outputs}

    def _task_run_outputs(self, execution_id: str, task_run_id: str) -> dict[str, Any]:
        route = self.route("outputs_task_run", execution_id=execution_id, task_run_id=task_run_id)
        data = self._json(route, context=f"Reading outputs of task run {task_run_id}")
        return data if isinstance(data, dict) else {}

    def download_output_files(
        self, execution_or_id: KestraExecution | str, directory: str | Path
    ) -> list[Path]:
        """Download every ``kestra:///`` file of the flow and task outputs into ``directory``.

        Local names come only from the URI's last segment, sanitised and made unique (task files are
        prefixed with their task id); nothing can be written outside ``directory``.
        """
        outputs = self.get_outputs(execution_or_id, include_task_outputs=True)
        execution_id = execution_id_of(execution_or_id)
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
        route = self.route("execution_file", execution_id=execution_id)
        response = self._request(
            route,
            params={"path": uri},
            stream=True,
            headers={"Accept": "application/octet-stream"},
            context=f"Downloading {uri} of execution {execution_id}",
        )
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as handle:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
            partial.replace(path)
        except (requests.exceptions.RequestException, OSError) as err:
            with contextlib.suppress(OSError):
                partial.unlink()
            detail = self._error_detail(err)
            raise KestraConnectionError(
                f"Downloading {uri} of execution {execution_id} failed: {detail}"
            ) from None
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
        """The log lines ``selection`` accepts (level, not seen before), read as Kestra sends them.

        Kestra answers with every line of the execution in one JSON array; it is decoded entry by entry,
        so memory stays bounded however long the log is. Read ``selection.cursor`` afterwards (also after
        an error: it covers exactly the lines handed over).
        """
        route = self.route("logs_get", execution_id=execution_id)
        context = f"Reading logs of execution {execution_id}"
        response = self._request(
            route, params={"minLevel": selection.min_level}, stream=True, context=context
        )
        reader = KestraJsonArrayReader(f"Kestra's answer to {route.method} {route.path}")
        try:
            for chunk in response.iter_content(chunk_size=LOG_CHUNK_BYTES):
                for entry in reader.feed(chunk):
                    if isinstance(entry, dict) and selection.accepts(entry):
                        yield entry  # type: ignore[misc]
            for entry in reader.close():
                if isinstance(entry, dict) and selection.accepts(entry):
                    yield entry  # type: ignore[misc]
        except (requests.exceptions.RequestException, OSError) as err:
            raise KestraConnectionError(f"{context} failed: {self._error_detail(err)}") from None
        finally:
            response.close()

    def download_logs(self, execution_id: str, min_level: str = "INFO") -> str:
        """The whole log of an execution as text (``<instant> <LEVEL> <message>`` lines)."""
        route = self.route("logs_download", execution_id=execution_id)
        response = self._request(
            route,
            params={"minLevel": normalise_level(min_level)},
            headers={"Accept": "text/plain"},
            context=f"Downloading logs of execution {execution_id}",
        )
        return response.text


# ------------------------------------------------------------------------------------------------ helpers
def _read_timed_out(err: BaseException) -> bool:
    """Whether a body read failed only because nothing arrived within the read timeout (requests wraps
    urllib3's ``ReadTimeoutError`` in a ``ConnectionError`` while streaming)."""
    import urllib3.exceptions

    if isinstance(err, (requests.exceptions.ReadTimeout, TimeoutError)):
        return True
    cause = err.args[0] if err.args else None
    return isinstance(err, requests.exceptions.ConnectionError) and isinstance(
        cause, urllib3.exceptions.ReadTimeoutError
    )


def _never_sent(err: requests.exceptions.ConnectionError) -> bool:
    """Whether a requests connection error happened before the request left (connection not opened)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    cause: BaseException | None = err
    while cause is not None:
        reason = getattr(cause, "reason", None)
        if isinstance(cause, (NewConnectionError, ConnectTimeoutError)) or isinstance(
            reason, (NewConnectionError, ConnectTimeoutError)
        ):
            return True
        cause = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
    return False


def _decode_json(response: requests.Response, route: KestraRoute) -> Any:
    """:func:`decode_json`, then release the connection (the response may have been streamed)."""
    try:
        return decode_json(response, route)
    finally:
        response.close()


def _identity(source: str) -> tuple[str, str]:
    try:
        return flow_identity(source)
    except ValueError as err:
        raise KestraFlowValidationError(
            f"Invalid flow source: {err}",
            [flow_problem(None, 0, None, None, str(err))],
        ) from None


def _same_source(stored: str | None, source: str) -> bool:
    return stored is not None and stored.rstrip() == source.rstrip()


def _deploy_result(namespace: str, flow_id: str, revision: Any, action: str) -> KestraFlowDeployResult:
    return {
        "namespace": namespace,
        "flow_id": flow_id,
        "revision": int(revision) if revision is not None else None,
        "action": action,  # type: ignore[typeddict-item]
    }
