"""Everything about a Kestra API call except sending it, shared by :class:`KestraHook` (requests) and
:class:`KestraAsyncHook` (httpx). Internal to the hooks package.

* **What to send**: one builder per operation returns a frozen :class:`KestraCall` (route name, path and
  query parameters, body, headers, the words that open its errors, how its answer is read). Both hooks
  send the same description, so an operation cannot drift between them ("prepare once, send twice").
* **What an answer means**: :class:`KestraHookBase` turns statuses into typed errors, decides retries,
  refuses or accepts an event stream (:meth:`KestraHookBase._stream_refused`: a passing failure means
  "poll meanwhile", never "the execution failed"), reads answers, and plans the follow-up requests an
  operation may need (:meth:`KestraHookBase._plan`).

Each hook keeps only its I/O: sending, sleeping and iterating, in the shape of httpx's ``BaseClient`` /
``Client`` / ``AsyncClient``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import quote

from airflow_provider_kestra import __version__
from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraAuthenticationError,
    KestraBadRequestError,
    KestraConfigError,
    KestraConnectionError,
    KestraError,
    KestraFlowValidationError,
    KestraNotFoundError,
    KestraPermissionError,
    KestraStreamError,
    KestraStreamIdle,
    kestra_api_error,
    with_note,
)
from airflow_provider_kestra.utils.connection import KestraConnectionSettings, redact, settings_from_fields
from airflow_provider_kestra.utils.encoding import (
    encode_inputs,
    encode_labels,
    format_instant,
    multipart_body,
)
from airflow_provider_kestra.utils.flows import flow_identity, flow_problem
from airflow_provider_kestra.utils.logs import normalise_level
from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.utils.outputs import task_outputs_from_execution
from airflow_provider_kestra.utils.retry import (
    KestraFailureKind,
    failure_kind_for_status,
    may_retry,
    retry_wait,
)
from airflow_provider_kestra.utils.routes import (
    ACTION_ROUTES,
    KestraActionLayout,
    KestraApiVersion,
    KestraRoute,
    other_layout,
    resolve_route,
)
from airflow_provider_kestra.utils.state import KestraExecutionState, is_terminal, state_of
from airflow_provider_kestra.version_compat import BaseHook

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_kestra.utils.logs import KestraLogSelection
    from airflow_provider_kestra.utils.models import (
        KestraExecution,
        KestraFlowDeployResult,
        KestraLogEntry,
        KestraOutputs,
        KestraServerInfo,
    )

log = logging.getLogger(__name__)

LOG_CHUNK_BYTES = 1 << 16
"""How much of a log answer (``GET /logs/{id}``, streamed) is read at a time."""

UNKNOWN_OUTCOME_NOTE = (
    "the execution may or may not have been created; it was not requested again to avoid a second run "
    "(give labels with a unique value and idempotency_label_key to let the hook find out)"
)

KestraAnswer = Literal["json", "none", "text", "results", "object", "list", "server_info"]
"""How a call's answer is read: the JSON as is, nothing (202/204), the text, a page's ``results``, a JSON
object (``{}`` otherwise), a JSON array (``[]`` otherwise), or the server description of ``/configs``."""


@dataclass(frozen=True)
class KestraCall:
    """One request to Kestra, described: what both hooks send for one operation.

    ``route`` names an entry of the route table (:mod:`airflow_provider_kestra.utils.routes`), ``path``
    fills its template; ``context`` opens every error message (``"Killing execution 4wj..."``);
    ``answer`` says how the answer is read (:data:`KestraAnswer`).
    """

    route: str
    path: Mapping[str, str] = field(default_factory=dict)
    params: Sequence[tuple[str, str]] = ()
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    context: str = ""
    answer: KestraAnswer = "json"
    missing_is_empty: bool = False
    """A 404 means "nothing" (``{}``): Kestra answers 404 when a controller returns null, as the 2.x
    outputs endpoints do for an execution without outputs (or not yet terminated)."""


# ------------------------------------------------------------------------------------------ the calls
def server_info_call() -> KestraCall:
    """``GET /api/v1/configs``: version and edition (credentials are sent: 2.x requires them there)."""
    return KestraCall("configs", context="Reading the Kestra server version", answer="server_info")


def get_execution_call(execution_id: str) -> KestraCall:
    """``GET /executions/{id}``: the execution with its task runs."""
    return KestraCall("execution_get", _of(execution_id), context=f"Reading execution {execution_id}")


def search_executions_call(query: KestraExecutionQuery, size: int) -> KestraCall:
    """``GET /executions/search``: the newest ``size`` executions matching ``query``."""
    return KestraCall(
        "execution_search", params=query.params(size), context="Searching executions", answer="results"
    )


def create_execution_call(
    namespace: str,
    flow_id: str,
    *,
    inputs: Mapping[str, Any] | None,
    labels: Mapping[str, str],
    revision: int | None,
    schedule: datetime | str | None,
    breakpoints: Sequence[str] | str | None = None,
    kind: str | None = None,
) -> KestraCall:
    """``POST /executions/{namespace}/{flowId}``: multipart inputs, ``labels=k:v`` query parameters; no
    body at all without inputs (as Kestra's own SDK does). ``breakpoints`` and ``kind``: see
    :func:`create_options`."""
    params = encode_labels(labels)
    if revision is not None:
        params.append(("revision", str(int(revision))))
    if schedule is not None:
        params.append(("scheduleDate", format_instant(schedule)))
    params.extend(create_options(breakpoints, kind))
    parts = encode_inputs(inputs)
    body, headers = None, {}
    if parts:
        body, content_type = multipart_body(parts)
        headers = {"Content-Type": content_type}
    return KestraCall(
        "execution_create",
        {"namespace": namespace, "flow_id": flow_id},
        params=params,
        body=body,
        headers=headers,
        context=f"Starting an execution of flow {namespace}.{flow_id}",
    )


def kill_execution_call(execution_id: str) -> KestraCall:
    """Kill (asynchronous on Kestra's side; a finished execution is left as it is)."""
    return KestraCall(
        "execution_kill", _of(execution_id), context=f"Killing execution {execution_id}", answer="none"
    )


def restart_execution_call(execution_id: str, revision: int | None) -> KestraCall:
    """Restart from the failed tasks (same id, state RESTARTED), optionally on another flow revision."""
    params = [("revision", str(int(revision)))] if revision is not None else []
    return KestraCall(
        "execution_restart", _of(execution_id), params=params, context=f"Restarting execution {execution_id}"
    )


def resume_execution_call(execution_id: str, inputs: Mapping[str, Any] | None) -> KestraCall:
    """Resume a PAUSED execution with the Pause task's ``onResume`` inputs (always multipart)."""
    body, content_type = multipart_body(encode_inputs(inputs))
    return KestraCall(
        "execution_resume",
        _of(execution_id),
        body=body,
        headers={"Content-Type": content_type},
        context=f"Resuming execution {execution_id}",
        answer="none",
    )


def delete_execution_call(
    execution_id: str, *, delete_logs: bool = True, delete_metrics: bool = True, delete_storage: bool = True
) -> KestraCall:
    """``DELETE /executions/{id}?deleteLogs=&deleteMetrics=&deleteStorage=`` (Kestra's defaults: all true)."""
    flags = {"deleteLogs": delete_logs, "deleteMetrics": delete_metrics, "deleteStorage": delete_storage}
    return KestraCall(
        "execution_delete",
        _of(execution_id),
        params=[(name, "true" if value else "false") for name, value in flags.items()],
        context=f"Deleting execution {execution_id}",
        answer="none",
    )


def webhook_call(
    namespace: str, flow_id: str, key: str, body: Any = None, method: str = "POST"
) -> KestraCall:
    """``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}``: a dict or list body goes as JSON,
    text as UTF-8 text, bytes as they are. The key is only in ``path``: never in ``context``."""
    verb = str(method).upper()
    if verb not in WEBHOOK_METHODS:
        raise KestraConfigError(f"webhook method must be one of {', '.join(WEBHOOK_METHODS)}, got {method!r}")
    payload, headers = None, {}
    if isinstance(body, (dict, list)):
        payload, headers = json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}
    elif isinstance(body, str):
        payload, headers = body.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"}
    elif isinstance(body, (bytes, bytearray)):
        payload, headers = bytes(body), {"Content-Type": "application/octet-stream"}
    elif body is not None:
        raise KestraConfigError(f"webhook body must be a dict, list, str or bytes, got {type(body).__name__}")
    return KestraCall(
        f"execution_webhook_{verb.lower()}",
        {"namespace": namespace, "flow_id": flow_id, "key": key},
        body=payload,
        headers=headers,
        context=f"Triggering the webhook of flow {namespace}.{flow_id}",
    )


def follow_execution_call(execution_id: str) -> KestraCall:
    """``GET /executions/{id}/follow``: the execution's server-sent events."""
    return KestraCall(
        "execution_follow",
        _of(execution_id),
        headers={"Accept": "text/event-stream"},
        context=f"Following execution {execution_id}",
    )


def logs_call(execution_id: str, min_level: str) -> KestraCall:
    """``GET /logs/{id}``: every log line of the execution at ``min_level`` or above, one JSON array."""
    return KestraCall(
        "logs_get",
        _of(execution_id),
        params=[("minLevel", normalise_level(min_level))],
        context=f"Reading logs of execution {execution_id}",
    )


def download_logs_call(execution_id: str, min_level: str) -> KestraCall:
    """``GET /logs/{id}/download``: the whole log as text."""
    return replace(
        logs_call(execution_id, min_level),
        route="logs_download",
        headers={"Accept": "text/plain"},
        context=f"Downloading logs of execution {execution_id}",
        answer="text",
    )


def flow_outputs_call(execution_id: str) -> KestraCall:
    """2.x ``GET /outputs/executions/{id}``: the flow's ``outputs:`` map (404 when it has none)."""
    return KestraCall(
        "outputs_flow",
        _of(execution_id),
        context=f"Reading outputs of execution {execution_id}",
        answer="object",
        missing_is_empty=True,
    )


def task_outputs_list_call(execution_id: str) -> KestraCall:
    """2.x ``GET /outputs/tasks/{id}``: which task runs have outputs (taskId, taskRunId, value...)."""
    return KestraCall(
        "outputs_list",
        _of(execution_id),
        context=f"Listing task outputs of execution {execution_id}",
        answer="list",
    )


def task_run_outputs_call(execution_id: str, task_run_id: str) -> KestraCall:
    """2.x ``GET /outputs/tasks/{id}/{taskRunId}``: one task run's outputs map."""
    return KestraCall(
        "outputs_task_run",
        {"execution_id": execution_id, "task_run_id": task_run_id},
        context=f"Reading outputs of task run {task_run_id}",
        answer="object",
        missing_is_empty=True,
    )


def execution_file_call(execution_id: str, uri: str) -> KestraCall:
    """``GET /executions/{id}/file?path=kestra:///...``: one file of the execution, as bytes."""
    return KestraCall(
        "execution_file",
        _of(execution_id),
        params=[("path", uri)],
        headers={"Accept": "application/octet-stream"},
        context=f"Downloading {uri} of execution {execution_id}",
    )


def get_flow_call(namespace: str, flow_id: str, *, source: bool) -> KestraCall:
    """``GET /flows/{namespace}/{id}``, with its YAML ``source`` when asked."""
    return KestraCall(
        "flow_get",
        {"namespace": namespace, "flow_id": flow_id},
        params=[("source", "true" if source else "false")],
        context=f"Reading flow {namespace}.{flow_id}",
    )


def list_flows_call(namespace: str) -> KestraCall:
    """``GET /flows/{namespace}``: the flows of exactly this namespace."""
    return KestraCall(
        "flow_list",
        {"namespace": namespace},
        context=f"Listing flows of namespace {namespace}",
        answer="list",
    )


def search_flows_call(size: int = 1) -> KestraCall:
    """``GET /flows/search``: the first page of flows (proves the credentials may read the tenant)."""
    return KestraCall("flow_search", params=[("page", "1"), ("size", str(size))], context="Listing flows")


def create_flow_call(source: str) -> KestraCall:
    """``POST /flows``: the YAML source, sent untouched (refused before sending when it names no flow)."""
    namespace, flow_id = flow_identity_of(source)
    return KestraCall("flow_create", **_yaml(source), context=f"Creating flow {namespace}.{flow_id}")


def update_flow_call(namespace: str, flow_id: str, source: str) -> KestraCall:
    """``PUT /flows/{namespace}/{id}``: replace the source (its id/namespace must match)."""
    return KestraCall(
        "flow_update",
        {"namespace": namespace, "flow_id": flow_id},
        **_yaml(source),
        context=f"Updating flow {namespace}.{flow_id}",
    )


def delete_flow_call(namespace: str, flow_id: str) -> KestraCall:
    """``DELETE /flows/{namespace}/{id}`` (Kestra keeps a deleted revision)."""
    return KestraCall(
        "flow_delete",
        {"namespace": namespace, "flow_id": flow_id},
        context=f"Deleting flow {namespace}.{flow_id}",
        answer="none",
    )


def validate_flows_call(yaml_documents: str) -> KestraCall:
    """``POST /flows/validate``: one multi-document YAML body; the answer lists one result per flow."""
    return KestraCall("flow_validate", **_yaml(yaml_documents), context="Validating flows", answer="list")


WEBHOOK_METHODS = ("GET", "POST", "PUT")
"""The methods Kestra's webhook route answers."""

EXECUTION_KINDS = ("NORMAL", "TEST", "PLAYGROUND")
"""``kind`` values of Kestra's create-execution call (``ExecutionKind``)."""


def create_options(breakpoints: Sequence[str] | str | None, kind: str | None) -> list[tuple[str, str]]:
    """The ``breakpoints`` (comma list of ``taskId`` or ``taskId.value``) and ``kind`` query parameters of
    a create-execution call; a ``kind`` Kestra does not know is refused before sending."""
    params: list[tuple[str, str]] = []
    if breakpoints:
        items = [breakpoints] if isinstance(breakpoints, str) else list(breakpoints)
        params.append(("breakpoints", ",".join(str(item).strip() for item in items)))
    if kind is not None:
        if str(kind).upper() not in EXECUTION_KINDS:
            raise KestraConfigError(f"kind must be one of {', '.join(EXECUTION_KINDS)}, got {kind!r}")
        params.append(("kind", str(kind).upper()))
    return params


def check_create_options(version: KestraApiVersion, breakpoints: Any, kind: Any) -> None:
    """Refuse ``breakpoints``/``kind`` before sending to a 0.22 server, which has neither (they appear in
    Kestra 1.x's create-execution parameters; an unknown query parameter would be silently ignored)."""
    if version is KestraApiVersion.V0_22 and (breakpoints or kind is not None):
        raise KestraConfigError(
            "breakpoints and kind need a Kestra 1.x or 2.x server; this one speaks API 0.22 (no such "
            "create-execution parameters)"
        )


def without_secret(error: KestraError, secret: str) -> KestraError:
    """A copy of ``error`` (same class where possible) with ``secret`` and its URL-quoted form masked in
    its message and, for an HTTP error, its path: a webhook key must never reach a log or a traceback."""
    secrets = tuple({secret, quote(secret, safe="")})
    if isinstance(error, KestraApiError):
        return type(error)(
            status=error.status,
            method=error.method,
            path=redact(error.path, secrets),
            kestra_message=redact(error.kestra_message, secrets),
            field_errors=error.field_errors,
            context=redact(error.context or "", secrets) or None,
            problem_type=error.problem_type,
        )
    message = redact(str(error), secrets)
    try:
        return type(error)(message)
    except TypeError:
        return KestraError(message)


def restart_search(execution: KestraExecution) -> KestraExecutionQuery:
    """The search that finds the executions a restart on another revision made of ``execution``: same flow,
    same ``system.correlationId`` (the copy keeps the original's labels, Kestra's
    ``Execution#childExecution``)."""
    labels = {
        str(item["key"]): str(item["value"])
        for item in execution.get("labels") or []
        if isinstance(item, dict) and item.get("key") == "system.correlationId"
    }
    return KestraExecutionQuery.of(
        namespace=str(execution["namespace"]), flow_id=str(execution["flowId"]), labels=labels
    )


def restart_copies(execution_id: str, candidates: Iterable[KestraExecution]) -> set[str]:
    """Ids of the executions made by restarting ``execution_id`` on a revision (``parentId`` is it)."""
    return {
        str(found["id"])
        for found in candidates
        if found.get("parentId") == execution_id and found.get("id") != execution_id
    }


def _of(execution_id: str) -> dict[str, str]:
    return {"execution_id": execution_id}


def _yaml(source: str) -> dict[str, Any]:
    return {"body": source.encode("utf-8"), "headers": {"Content-Type": "application/x-yaml"}}


def execution_query(query: KestraExecutionQuery | None, filters: Mapping[str, Any]) -> KestraExecutionQuery:
    """The query of a ``search_executions(query=None, **filters)`` call: the object, or one built from the
    keywords (``namespace``, ``flow_id``, ``states``, ``labels``, ``started_after``), not both."""
    if query is None:
        return KestraExecutionQuery.of(**filters)
    if filters:
        raise KestraConfigError(
            f"give either a KestraExecutionQuery or filter keywords, not both: {sorted(filters)}"
        )
    return query


def flow_identity_of(source: str) -> tuple[str, str]:
    """``(namespace, id)`` of one flow's YAML source; :class:`KestraFlowValidationError` when unusable."""
    try:
        return flow_identity(source)
    except ValueError as err:
        raise KestraFlowValidationError(
            f"Invalid flow source: {err}", [flow_problem(None, 0, None, None, str(err))]
        ) from None


def same_source(stored: str | None, source: str) -> bool:
    """Whether Kestra already has this source (trailing blank lines aside): an update would change nothing."""
    return stored is not None and stored.rstrip() == source.rstrip()


def deploy_result(namespace: str, flow_id: str, revision: Any, action: str) -> KestraFlowDeployResult:
    """One line of a deployment's report."""
    return {
        "namespace": namespace,
        "flow_id": flow_id,
        "revision": int(revision) if revision is not None else None,
        "action": action,  # type: ignore[typeddict-item]
    }


def outputs_of_execution(execution: KestraExecution, include_task_outputs: bool) -> KestraOutputs:
    """The outputs a 1.x execution carries: ``outputs`` and, when asked, ``taskRunList[].outputs``."""
    task_outputs = task_outputs_from_execution(execution) if include_task_outputs else {}
    return {"outputs": dict(execution.get("outputs") or {}), "task_outputs": task_outputs}


def action_took_effect(route: str, state: str) -> bool:
    """Whether an execution in ``state`` shows that the action ``route`` happened: a kill once it is
    KILLING or ended; a restart once it runs again (RESTARTED or any state that is neither terminal nor
    PAUSED); a resume once it is no longer PAUSED."""
    if route == "execution_kill":
        return state == KestraExecutionState.KILLING.value or is_terminal(state)
    if route == "execution_restart":
        return bool(state) and not is_terminal(state) and state != KestraExecutionState.PAUSED.value
    if route == "execution_resume":
        return bool(state) and state != KestraExecutionState.PAUSED.value
    return False


# ------------------------------------------------------------------------------------------ small tools
class KestraAttemptFailure(Exception):
    """One attempt failed in a way that retrying might fix; ``error`` is what to raise if we give up."""

    def __init__(self, kind: KestraFailureKind, error: KestraError, retry_after: str | None = None) -> None:
        super().__init__(str(error))
        self.kind = kind
        self.error = error
        self.retry_after = retry_after


def user_agent() -> str:
    """``airflow-provider-kestra/<version> apache-airflow/<version>``."""
    from airflow import __version__ as airflow_version

    return f"airflow-provider-kestra/{__version__} apache-airflow/{airflow_version}"


def execution_id_of(execution_or_id: KestraExecution | str) -> str:
    """The id of an execution given as its JSON or as the id itself."""
    return execution_or_id if isinstance(execution_or_id, str) else str(execution_or_id["id"])


def decode_json(response: Any, route: KestraRoute) -> Any:
    """The JSON body of a requests or httpx response, None for an empty body (Kestra answers 202/204
    without one); a body that is not JSON raises :class:`KestraError` naming the call."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise KestraError(
            f"Kestra answered {route.method} {route.path} with a body that is not JSON "
            f"(HTTP {response.status_code}, {response.headers.get('Content-Type', 'no content type')})"
        ) from None


def accepted_entries(selection: KestraLogSelection, entries: Iterable[Any]) -> Iterator[KestraLogEntry]:
    """The decoded log entries ``selection`` accepts (level, not seen before), in order."""
    for entry in entries:
        if isinstance(entry, dict) and selection.accepts(entry):
            yield entry  # type: ignore[misc]


def auth_message(settings: KestraConnectionSettings, found: str | None) -> str:
    """What to tell the user about a 401, naming the kind of credentials (never their value)."""
    head = f"Found {found}, but it" if found else f"Kestra at {settings.base_url}"
    if settings.auth_kind == "none":
        return f"{head} requires authentication (HTTP 401): set login/password (basic auth) or a token"
    what = "the API token" if settings.auth_kind == "token" else f"login {settings.login!r} and its password"
    return f"{head} refused {what} (HTTP 401)"


class KestraPlan:
    """Steps through an operation's plan (a generator of :class:`KestraCall`, see
    :meth:`KestraHookBase._plan`) for a hook that sends each :attr:`step` and reports back with
    :meth:`send` (the answer) or :meth:`throw` (the error); :attr:`result` once :attr:`done`.

    An error the plan does not handle leaves :meth:`throw` (or :meth:`send`) unchanged.
    """

    def __init__(self, plan: Generator[KestraCall, Any, Any]) -> None:
        self._plan = plan
        self.done = False
        self.result: Any = None
        self.step: KestraCall = next(plan)

    def send(self, answer: Any) -> None:
        """Hand the answer to :attr:`step` to the plan."""
        self._advance(lambda: self._plan.send(answer))

    def throw(self, error: KestraError) -> None:
        """Hand the error of :attr:`step` to the plan (re-raised unless the plan handles it)."""
        self._advance(lambda: self._plan.throw(error))

    def _advance(self, resume: Callable[[], KestraCall]) -> None:
        try:
            self.step = resume()
        except StopIteration as stop:
            self.done, self.result = True, stop.value


def connection_test_failure(
    settings: KestraConnectionSettings, info: KestraServerInfo | None, err: KestraError
) -> str:
    """What ``test_connection`` says when reading the server (``info`` None) or then its flows failed."""
    found = _found(info) if info else None
    if isinstance(err, KestraAuthenticationError):
        return auth_message(settings, found)
    if found is None:
        if isinstance(err, KestraApiError):
            return f"Kestra at {settings.base_url} answered GET /api/v1/configs with HTTP {err.status}: {err}"
        return str(err)
    if isinstance(err, KestraPermissionError):
        return (
            f"Found {found}; the credentials were accepted but may not read flows of tenant "
            f"{settings.tenant!r} (HTTP 403)"
        )
    if isinstance(err, (KestraBadRequestError, KestraNotFoundError)):
        return f"Found {found}, but tenant {settings.tenant!r} was refused: {err.kestra_message or err}"
    if isinstance(err, KestraApiError):
        return f"Found {found}, but listing flows failed: {err}"
    return f"Found {found}, but then: {err}"


def connection_test_success(settings: KestraConnectionSettings, info: KestraServerInfo) -> str:
    """What ``test_connection`` says when Kestra answered and let the credentials read flows."""
    tenant = "" if info["api_version"] == KestraApiVersion.V0_22.value else f", tenant {settings.tenant!r}"
    return f"Connected to {_found(info)} (API {info['api_version']}, auth: {settings.auth_kind}{tenant})"


def _found(info: KestraServerInfo) -> str:
    return f"Kestra {info['version'] or '(unknown version)'} {info['edition'] or ''}".rstrip()


# ------------------------------------------------------------------------------------------- the policy
class KestraHookBase(BaseHook):
    """Connection settings, routes, errors, retry decisions and answer reading of both hooks."""

    conn_name_attr = "kestra_conn_id"
    default_conn_name = "kestra_default"
    conn_type = "kestra"
    hook_name = "Kestra"

    def __init__(
        self,
        kestra_conn_id: str = default_conn_name,
        *,
        retry_limit: int = 5,
        retry_delay: float = 1.0,
        request_timeout: float | None = None,
    ) -> None:
        super().__init__()
        if retry_limit < 0:
            raise KestraConfigError(f"retry_limit must be >= 0, got {retry_limit}")
        self.kestra_conn_id = kestra_conn_id
        self.retry_limit = retry_limit
        self.retry_delay = retry_delay
        self.request_timeout = request_timeout
        self._settings: KestraConnectionSettings | None = None
        self._server_info: KestraServerInfo | None = None
        self._api_version: KestraApiVersion | None = None
        self._action_layout: KestraActionLayout = "actions"
        self._action_layout_known = False
        """Whether an action succeeded on :attr:`_action_layout` (then it is never switched again)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kestra_conn_id={self.kestra_conn_id!r})"

    @staticmethod
    def _settings_from_connection(conn: Any) -> KestraConnectionSettings:
        return settings_from_fields(
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extras=conn.extra_dejson,
        )

    @property
    def _timeout(self) -> float:
        assert self._settings is not None
        return self.request_timeout or self._settings.timeout

    def _route(self, name: str, version: KestraApiVersion, **params: str) -> KestraRoute:
        assert self._settings is not None
        return resolve_route(name, version, self._settings.tenant, layout=self._action_layout, **params)

    def _fixed_version(self, call: KestraCall) -> KestraApiVersion | None:
        """The API generation to send ``call`` with before the server's is known: ``/configs`` is how it
        gets known, so it goes with the pinned generation or 1 (same path on every server)."""
        assert self._settings is not None
        return (self._settings.api_version or KestraApiVersion.V1) if call.route == "configs" else None

    def _url(self, route: KestraRoute) -> str:
        assert self._settings is not None
        return self._settings.base_url + route.path

    def _headers(self) -> dict[str, str]:
        assert self._settings is not None
        headers = {"User-Agent": user_agent(), "Accept": "application/json"}
        if self._settings.auth_header:
            headers["Authorization"] = self._settings.auth_header
        return headers

    def _redact(self, text: str) -> str:
        return redact(text, self._settings.secrets) if self._settings else text

    def _error_detail(self, err: BaseException, limit: int = 300) -> str:
        """``ErrorType: message`` of a transport error, secrets redacted, at most ``limit`` characters."""
        return self._redact(f"{type(err).__name__}: {err}")[:limit]

    # ------------------------------------------------------------------------------------------ errors
    def _connection_error(self, route: KestraRoute, err: BaseException, context: str | None) -> KestraError:
        assert self._settings is not None
        head = f"{context}: " if context else ""
        where = f"Kestra at {self._settings.base_url} ({route.method} {route.path})"
        detail = self._error_detail(err, 500)
        if "SSL" in type(err).__name__ or "ssl" in str(err).lower() or "certificate" in str(err).lower():
            return KestraConnectionError(f"{head}TLS handshake with {where} failed: {detail}")
        return KestraConnectionError(f"{head}could not reach {where}: {detail}")

    def _http_error(self, route: KestraRoute, status: int, body: str, context: str | None) -> KestraApiError:
        return kestra_api_error(
            status=status, method=route.method, path=route.path, body=self._redact(body), context=context
        )

    def _status_failure(
        self, route: KestraRoute, status: int, body: str, retry_after: str | None, context: str | None
    ) -> KestraApiError | KestraAttemptFailure:
        """What an HTTP error answer means: a failure worth retrying (429, 502-504), else the typed error."""
        error = self._http_error(route, status, body, context)
        kind = failure_kind_for_status(status)
        return error if kind is None else KestraAttemptFailure(kind, error, retry_after)

    def _stream_refused(
        self, route: KestraRoute, status: int, body: str, retry_after: str | None, context: str | None
    ) -> KestraError:
        """What an HTTP error answer to an event stream means; the one policy of both hooks.

        The stream is only a faster way to learn about the execution, so a refusal is never a verdict on
        it: a passing failure (429, any 5xx, a proxy's 4xx) becomes :class:`KestraStreamError` and the wait
        polls meanwhile. 404 stays :class:`KestraNotFoundError` (no stream route on this server: the wait
        polls too, and a poll tells whether the execution exists); 401 and 403 stay typed errors, as
        polling with the same credentials would fail the same way.
        """
        error = self._http_error(route, status, body, context)
        if isinstance(error, (KestraNotFoundError, KestraAuthenticationError, KestraPermissionError)):
            return error
        return KestraStreamError(f"{error} (polling meanwhile)")

    def _stream_not_opened(self, execution_id: str, failure: KestraAttemptFailure) -> KestraError:
        """The error for an event stream whose request failed in transport: a connection error when it was
        never sent, else a stream error (both make a wait poll)."""
        if failure.kind is KestraFailureKind.NOT_SENT:
            return failure.error
        return KestraStreamError(
            f"The event stream of execution {execution_id} could not be opened: {failure}"
        )

    def _stream_cut(self, execution_id: str, err: BaseException, *, idle: bool = False) -> KestraStreamError:
        """The error for an execution event stream broken by a transport error (``idle``: a read timeout)."""
        detail = self._error_detail(err)
        if idle:
            return KestraStreamIdle(f"The event stream of execution {execution_id} was idle: {detail}")
        return KestraStreamError(f"The event stream of execution {execution_id} was cut: {detail}")

    # ----------------------------------------------------------------------------------------- answers
    def _answer(self, call: KestraCall, route: KestraRoute, response: Any) -> Any:
        """Read a successful answer (a requests or httpx response) as ``call.answer`` says."""
        if call.answer == "none":
            return None
        if call.answer == "text":
            return response.text
        data = decode_json(response, route)
        if call.answer == "results":
            return list((data if isinstance(data, dict) else {}).get("results") or [])
        if call.answer == "object":
            return data if isinstance(data, dict) else {}
        if call.answer == "list":
            return data if isinstance(data, list) else []
        if call.answer == "server_info":
            return self._server_info_from_configs(data, response.headers)
        return data

    def _plan(self, call: KestraCall) -> Generator[KestraCall, Any, Any]:
        """The requests one operation needs, without I/O: yields each call to send, receives its answer
        (or has the send's :class:`KestraError` thrown in), returns the operation's result.

        Both hooks drive it the same way (``_call``), so these follow-up decisions are made once:

        * a 404 on a call that may find nothing (2.x outputs) is an empty answer;
        * a single-execution action refused with 404/405 by a 2.x server may be the other action layout
          (:meth:`_other_layout`);
        * an action answered with 502/503/504 has an unknown outcome: the execution is read again before
          deciding (:meth:`_after_unknown_outcome`); restart and resume are never sent twice.
        """
        try:
            answer = yield call
        except KestraApiError as err:
            if call.missing_is_empty and isinstance(err, KestraNotFoundError):
                return {}
            if call.route not in ACTION_ROUTES:
                raise
            if err.status in (404, 405) and self._api_version is KestraApiVersion.V2:
                return (yield from self._other_layout(call, err))
            if err.status in (502, 503, 504):
                return (yield from self._after_unknown_outcome(call, err))
            raise
        if call.route in ACTION_ROUTES:
            self._action_layout_known = True
        return answer

    def _other_layout(self, call: KestraCall, err: KestraApiError) -> Generator[KestraCall, Any, Any]:
        """Send an action refused with 404/405 once more on the other 2.x layout; keep the one that works.

        Kestra answers an unknown route and an unknown execution alike (``kill`` returns a bare
        ``HttpResponse.notFound()`` in ExecutionController; both render as problem type ``not-found``), so
        a 404 means "no such route" only when the execution exists. A 405 always means another route.
        """
        if self._action_layout_known:
            raise err
        if err.status == 404:
            try:
                yield get_execution_call(call.path["execution_id"])
            except KestraNotFoundError:
                raise err from None
        tried = self._action_layout
        self._action_layout = other_layout(tried)
        try:
            answer = yield call
        except KestraApiError as second:
            if second.status not in (404, 405):
                raise
            self._action_layout = tried
            raise err from None
        self._action_layout_known = True
        log.info("Kestra serves single-execution actions in the %r layout; using it", self._action_layout)
        return answer

    def _after_unknown_outcome(
        self, call: KestraCall, err: KestraApiError
    ) -> Generator[KestraCall, Any, Any]:
        """Decide an action whose answer was lost (502/503/504; 2.x answers 504 "operation timed out" when
        the state transition takes too long) from the execution read again; else raise ``err``, noted."""
        try:
            execution = yield get_execution_call(call.path["execution_id"])
        except KestraError:
            raise err from None
        state = state_of(execution)
        if action_took_effect(call.route, state):
            log.warning(
                "%s: Kestra answered HTTP %s, yet the execution is %s", call.context, err.status, state
            )
            return execution if call.answer == "json" else None
        note = f"the execution is still {state or 'in an unknown state'}; the request was not sent again"
        raise with_note(err, note) from None

    def _server_info_from_configs(self, data: Any, headers: Mapping[str, str]) -> KestraServerInfo:
        """Read ``GET /api/v1/configs`` (anything but a JSON object counts as empty)."""
        assert self._settings is not None
        if not isinstance(data, dict):
            data = {}
        version = data.get("version")
        version_text = str(version) if version else None
        if self._settings.api_version is not None:
            api = self._settings.api_version
        elif version_text:
            try:
                api = KestraApiVersion.from_server_version(version_text)
            except ValueError:
                api = KestraApiVersion.V1
        else:
            log.warning(
                "Kestra did not report its version; assuming API generation 1 (pin api_version to avoid this)"
            )
            api = KestraApiVersion.V1
        simulator_header = str(headers.get("X-Kestra-Simulator", "")).lower() in ("1", "true", "yes")
        return {
            "version": version_text,
            "edition": str(data["edition"]) if data.get("edition") else None,
            "api_version": api.value,
            "is_simulator": bool(data.get("simulator") or data.get("isSimulator") or simulator_header),
        }

    def _ui_url(self, execution: KestraExecution, version: KestraApiVersion) -> str:
        assert self._settings is not None
        base = (self._settings.ui_url or self._settings.base_url).rstrip("/")
        base = base.removesuffix("/ui")
        tenant = "" if version is KestraApiVersion.V0_22 else f"/{self._settings.tenant}"
        parts = [quote(str(execution[key]), safe="") for key in ("namespace", "flowId", "id")]
        return f"{base}/ui{tenant}/executions/{'/'.join(parts)}"

    # ----------------------------------------------------------------------------------------- retries
    def _retry_pause(self, attempt: int, failure: KestraAttemptFailure) -> float:
        return retry_wait(attempt, self.retry_delay, failure.retry_after)

    def _give_up(self, failure: KestraAttemptFailure, route: KestraRoute, attempts: int) -> NoReturn:
        if attempts > 1 and isinstance(failure.error, KestraConnectionError):
            raise KestraConnectionError(f"{failure.error} (after {attempts} attempts)") from failure.error
        raise failure.error

    def _retry_or_give_up(self, route: KestraRoute, attempt: int, failure: KestraAttemptFailure) -> float:
        """The pause before sending ``route`` again after failed attempt number ``attempt`` (from 0).

        Raises the failure's error instead when the retries are used up or the route's retry mode forbids
        repeating it after this kind of failure.
        """
        if attempt >= self.retry_limit or not may_retry(route.retry, failure.kind):
            self._give_up(failure, route, attempt + 1)
        pause = self._retry_pause(attempt, failure)
        log.warning(
            "Kestra %s %s failed (%s); retry %d/%d in %.1fs",
            route.method,
            route.path,
            failure.kind.value,
            attempt + 1,
            self.retry_limit,
            pause,
        )
        return pause
