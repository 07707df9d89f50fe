"""What to send to Kestra for each operation: one builder per operation returns a frozen :class:`KestraCall`
(route name, path and query parameters, body, headers, the words that open its errors, how its answer is
read). Both hooks send the same description, so an operation cannot drift between them ("prepare once,
send twice"). Internal to the hooks package; :mod:`airflow_provider_kestra.hooks.kestra_base` re-exports
every name, so ``kestra_base.get_execution_call`` keeps working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraConfigError,
    KestraError,
    KestraFlowValidationError,
)
from airflow_provider_kestra.utils.connection import redact
from airflow_provider_kestra.utils.encoding import (
    encode_inputs,
    encode_labels,
    format_instant,
    multipart_body,
)
from airflow_provider_kestra.utils.flows import flow_identity, flow_problem
from airflow_provider_kestra.utils.logs import normalise_level, search_since
from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.utils.routes import KestraApiVersion

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
    from datetime import datetime

    from airflow_provider_kestra.utils.models import KestraExecution

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


LOG_SEARCH_FIRST_PAGE = 100
"""Lines of the first page of each log search: most reads (a quiet or slow task) need no more."""
LOG_SEARCH_PAGE_SIZE = 2000
"""Lines per page when a read has more new lines than the first page. Kestra sets no maximum
(``LogController#searchLogs``: ``@Min(1)`` only, kestra-io/kestra@0034d67e); 2,000 lines of the usual 300
bytes are 0.6 MB, so a read every 5 s of a task logging 1,000 lines/s (5,000 new lines plus the cursor
window) takes 4 to 5 requests. Each page also costs Kestra a count query (``total``): pages not too small.
"""
LOG_SEARCH_PAGE_BYTES = 1 << 20
"""About how many bytes a page may carry: long lines make smaller pages (never under the first page's)."""
LOG_SEARCH_MAX_LINES = 20_000
LOG_SEARCH_MAX_BYTES = 8 << 20
"""The most one log search holds (lines, about bytes) to hand them over oldest first. A read with more
(the first read of a long log, a cursor from long ago, huge lines) pages the other way instead: the list
frozen at its newest line (``until``), oldest page first, one page held at a time."""


def logs_search_call(
    execution_id: str,
    min_level: str,
    since: str | None,
    *,
    page: int = 1,
    size: int = LOG_SEARCH_PAGE_SIZE,
    cursor: str | None = None,
    until: str | None = None,
) -> KestraCall:
    """``GET /logs/search``: one page of the execution's lines at ``min_level`` or above (Kestra: at or
    above, ``LogEntry.findLevelsByMin``) from ``since`` on (inclusive; truncated down to milliseconds by
    :func:`search_since`, no date filter without one), newest first. ``cursor``: the ``nextCursor`` of a
    2.x cursor-paged answer (then ``page`` is not sent). ``until``: only lines at or before this instant
    (a line's own ``timestamp``, sent as Kestra wrote it), which freezes the list while it is paged."""
    params = [("filters[executionId][EQUALS]", execution_id)]
    value = search_since(since)
    if value is not None:
        params.append(("filters[startDate][GREATER_THAN_OR_EQUAL_TO]", value))
    if until is not None:
        params.append(("filters[endDate][LESS_THAN_OR_EQUAL_TO]", until))
    params.append(("filters[level][EQUALS]", normalise_level(min_level)))
    params.append(("cursor", cursor) if cursor is not None else ("page", str(int(page))))
    params.append(("size", str(int(size))))
    return KestraCall("logs_search", params=params, context=f"Searching the logs of execution {execution_id}")


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
