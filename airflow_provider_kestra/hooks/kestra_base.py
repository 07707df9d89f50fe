"""Everything about a Kestra API call except sending it, shared by :class:`KestraHook` (requests) and
:class:`KestraAsyncHook` (httpx). Internal to the hooks package.

* **What to send**: one builder per operation in :mod:`airflow_provider_kestra.hooks.kestra_calls`
  returns a frozen :class:`KestraCall`; every name of that module is re-exported here.
* **What an answer means**: :class:`KestraHookBase` turns statuses into typed errors, decides retries,
  refuses or accepts an event stream (:meth:`KestraHookBase._stream_refused`: a passing failure means
  "poll meanwhile", never "the execution failed"), reads answers, and plans the follow-up requests an
  operation may need (:meth:`KestraHookBase._plan`).

Each hook keeps only its I/O: sending, sleeping and iterating, in the shape of httpx's ``BaseClient`` /
``Client`` / ``AsyncClient``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from airflow_provider_kestra import __version__
from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraAuthenticationError,
    KestraConfigError,
    KestraConflictError,
    KestraConnectionError,
    KestraError,
    KestraNotFoundError,
    KestraPermissionError,
    KestraStreamError,
    KestraStreamIdle,
    kestra_api_error,
    with_note,
)
from airflow_provider_kestra.hooks.kestra_calls import (
    EXECUTION_KINDS,
    LOG_SEARCH_FIRST_PAGE,
    LOG_SEARCH_MAX_BYTES,
    LOG_SEARCH_MAX_LINES,
    LOG_SEARCH_PAGE_BYTES,
    LOG_SEARCH_PAGE_SIZE,
    WEBHOOK_METHODS,
    KestraAnswer,
    KestraCall,
    KestraPlan,
    check_create_options,
    create_execution_call,
    create_flow_call,
    create_options,
    delete_execution_call,
    delete_flow_call,
    download_logs_call,
    execution_file_call,
    execution_query,
    flow_identity_of,
    flow_outputs_call,
    follow_execution_call,
    get_execution_call,
    get_flow_call,
    kill_execution_call,
    list_flows_call,
    logs_call,
    logs_search_call,
    restart_copies,
    restart_execution_call,
    restart_search,
    resume_execution_call,
    search_executions_call,
    search_flows_call,
    server_info_call,
    task_outputs_list_call,
    task_run_outputs_call,
    update_flow_call,
    validate_flows_call,
    webhook_call,
    without_secret,
)
from airflow_provider_kestra.hooks.kestra_messages import (
    UNKNOWN_OUTCOME_NOTE,
    auth_message,
    connection_failure_cause,
    connection_test_failure,
    connection_test_success,
    found_by_label,
    label_search_failed,
    match_wait_what,
    one_line,
)
from airflow_provider_kestra.hooks.kestra_server_info import (
    SERVER_INFO_CACHE,
    KestraServerFacts,
    server_facts,
    server_key,
)
from airflow_provider_kestra.utils.connection import KestraConnectionSettings, redact, settings_from_fields
from airflow_provider_kestra.utils.logs import instant_key
from airflow_provider_kestra.utils.outputs import task_outputs_from_execution
from airflow_provider_kestra.utils.retry import (
    READ_AFTER_WRITE_SECONDS,
    KestraFailureKind,
    KestraPatience,
    backoff_delay,
    failure_kind_for_status,
    may_retry,
    retry_wait,
)
from airflow_provider_kestra.utils.routes import (
    ACTION_ROUTES,
    KestraActionLayout,
    KestraApiVersion,
    KestraRoute,
    has_route,
    other_layout,
    resolve_route,
)
from airflow_provider_kestra.utils.state import KestraExecutionState, is_terminal, state_of
from airflow_provider_kestra.version_compat import BaseHook

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping

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

__all__ = [  # the call descriptions, messages and server facts, re-exported from their modules
    "EXECUTION_KINDS",
    "LOG_SEARCH_FIRST_PAGE",
    "LOG_SEARCH_MAX_BYTES",
    "LOG_SEARCH_MAX_LINES",
    "LOG_SEARCH_PAGE_BYTES",
    "LOG_SEARCH_PAGE_SIZE",
    "SERVER_INFO_CACHE",
    "UNKNOWN_OUTCOME_NOTE",
    "WEBHOOK_METHODS",
    "KestraAnswer",
    "KestraCall",
    "KestraPlan",
    "KestraServerFacts",
    "auth_message",
    "check_create_options",
    "connection_failure_cause",
    "connection_test_failure",
    "connection_test_success",
    "create_execution_call",
    "create_flow_call",
    "create_options",
    "delete_execution_call",
    "delete_flow_call",
    "download_logs_call",
    "execution_file_call",
    "execution_query",
    "flow_identity_of",
    "flow_outputs_call",
    "follow_execution_call",
    "found_by_label",
    "get_execution_call",
    "get_flow_call",
    "kill_execution_call",
    "label_search_failed",
    "list_flows_call",
    "logs_call",
    "logs_search_call",
    "match_wait_what",
    "one_line",
    "restart_copies",
    "restart_execution_call",
    "restart_search",
    "resume_execution_call",
    "search_executions_call",
    "search_flows_call",
    "server_info_call",
    "task_outputs_list_call",
    "task_run_outputs_call",
    "update_flow_call",
    "validate_flows_call",
    "webhook_call",
    "without_secret",
]


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


def action_took_effect(route: str, state: str, execution: Mapping[str, Any] | None = None) -> bool:
    """Whether an execution in ``state`` shows that the action ``route`` happened: a kill once it is
    KILLING or ended; a restart once it runs again (RESTARTED or any state that is neither terminal nor
    PAUSED); a resume once it is no longer PAUSED (and, when ``execution`` is given, was PAUSED before:
    an execution that never paused was not resumed)."""
    if route == "execution_resume" and execution is not None and not was_paused(execution):
        return False
    if route == "execution_kill":
        return state == KestraExecutionState.KILLING.value or is_terminal(state)
    if route == "execution_restart":
        return bool(state) and not is_terminal(state) and state != KestraExecutionState.PAUSED.value
    if route == "execution_resume":
        return bool(state) and state != KestraExecutionState.PAUSED.value
    return False


def was_paused(execution: Mapping[str, Any]) -> bool:
    """Whether the execution's state history holds PAUSED (it waited for a resume at some point)."""
    histories = (execution.get("state") or {}).get("histories") or []
    paused = KestraExecutionState.PAUSED.value
    return any(isinstance(h, dict) and str(h.get("state", "")).upper() == paused for h in histories)


# ------------------------------------------------------------------------------------------ small tools
class KestraAttemptFailure(Exception):
    """One attempt failed in a way that retrying might fix; ``error`` is what to raise if we give up.
    ``until``: for a ``LAGGING`` failure, the ``clock()`` value its retries stop at."""

    def __init__(
        self,
        kind: KestraFailureKind,
        error: KestraError,
        retry_after: str | None = None,
        until: float | None = None,
    ) -> None:
        super().__init__(str(error))
        self.kind = kind
        self.error = error
        self.retry_after = retry_after
        self.until = until


_UNREAD: Any = object()

_PATIENCE: ContextVar[KestraPatience | None] = ContextVar("kestra_patience", default=None)
"""The retry budget of the wait in progress in this thread or asyncio task (``retrying_until``)."""


_DECIDED_BY_STATE_ON_CONFLICT = frozenset({"execution_kill", "execution_resume"})
"""Actions whose 409 is decided by the execution's state (see :meth:`KestraHookBase._plan`)."""


def created_execution(answer: Any, route: KestraRoute) -> KestraExecution:
    """The execution a create answered; an answer without an id is a lost answer (unknown outcome)."""
    if isinstance(answer, dict) and answer.get("id"):
        return answer  # type: ignore[return-value]
    error = KestraError(f"Kestra answered {route.method} {route.path} without an execution id")
    raise KestraAttemptFailure(KestraFailureKind.GARBLED, error)


def current_patience() -> KestraPatience | None:
    """The retry budget of the wait in progress in this thread or asyncio task, None outside a wait."""
    return _PATIENCE.get()


def user_agent() -> str:
    """``airflow-provider-kestra/<version> apache-airflow/<version>``."""
    from airflow import __version__ as airflow_version

    return f"airflow-provider-kestra/{__version__} apache-airflow/{airflow_version}"


def execution_id_of(execution_or_id: KestraExecution | str) -> str:
    """The id of an execution given as its JSON or as the id itself."""
    return execution_or_id if isinstance(execution_or_id, str) else str(execution_or_id["id"])


def decode_json(response: Any, route: KestraRoute, *, required: bool = False) -> Any:
    """The JSON body of a requests or httpx response, None for an empty body (Kestra answers 202/204
    without one, so only a ``required`` body may not be empty). A body that is not JSON (a proxy's HTML
    page, a cut answer) raises :class:`KestraAttemptFailure` of kind ``GARBLED``: the answer was lost,
    retried on safe routes, an unknown outcome for the others."""
    if not response.content and not (required and response.status_code == 200):
        return None
    try:
        if not response.content:
            raise ValueError("empty body")
        return response.json()
    except ValueError:
        error = KestraError(
            f"Kestra answered {route.method} {route.path} with a body that is not JSON "
            f"(HTTP {response.status_code}, {response.headers.get('Content-Type', 'no content type')}, "
            f"{len(response.content)} bytes)"
        )
        raise KestraAttemptFailure(KestraFailureKind.GARBLED, error) from None


def accepted_entries(selection: KestraLogSelection, entries: Iterable[Any]) -> Iterator[KestraLogEntry]:
    """The decoded log entries ``selection`` accepts (level, not seen before), in order."""
    for entry in entries:
        if isinstance(entry, dict) and selection.accepts(entry):
            yield entry  # type: ignore[misc]


class KestraLogSearch:
    """One read of the new lines of an execution with ``GET /logs/search``, without I/O: a hook sends
    :attr:`step` and hands each answer to :meth:`take`, which returns the lines ready to hand over (oldest
    first), until :attr:`step` is None.

    Kestra's search (``AbstractJdbcLogRepository#find``, kestra-io/kestra@0034d67e) answers newest first
    whatever ``sort`` says, with offset paging and a ``total``; 2.x may answer a store's cursor pages
    instead (``CursorOrOffsetPagedResults``: ``type`` ``CURSOR``, ``nextCursor``, no ``total``; paged until
    an empty page). Every page down to the cursor's ``since`` is read before any line is handed over, then
    the lines go oldest first. Lines logged while paging push the older ones down: the next page starts
    with lines already read, which are dropped here (by ``id`` when Kestra sends it, else by their place
    in the list once the growth of ``total`` is accounted for), so nothing is handed over twice and
    nothing is skipped. The lines logged meanwhile above the first page are left to the next read.

    The first page is small (:data:`LOG_SEARCH_FIRST_PAGE` lines: a quiet task costs one small request);
    when more lines are new, they are read again from the top in pages of :data:`LOG_SEARCH_PAGE_SIZE`
    lines, fewer when lines are long (about :data:`LOG_SEARCH_PAGE_BYTES` a page). A read of more than
    :data:`LOG_SEARCH_MAX_LINES` lines or about :data:`LOG_SEARCH_MAX_BYTES` is not held: the list is
    frozen at the newest line read (``filters[endDate]`` at or before it) and read from its last page
    (the oldest lines) up, each page handed over as it comes. Without a ``total`` (cursor pages) that is
    impossible: :attr:`too_long` is set and the hook streams the whole log instead.

    A line of another execution means the server ignored the filter: :attr:`foreign` is set, the read
    stops and nothing of that page is handed over.
    """

    def __init__(self, execution_id: str, selection: KestraLogSelection) -> None:
        self.execution_id = execution_id
        self.size = LOG_SEARCH_FIRST_PAGE
        self.foreign = False
        self.too_long = False
        self._min_level = selection.min_level
        self._since = selection.since
        self._until: str | None = None
        self._page = 1
        self._offset = 0
        self._total: int | None = None
        self._newest_first: list[dict[str, Any]] = []
        self._bytes = 0
        self._listing: list[dict[str, Any] | None] = []
        self._ids: set[str] = set()
        self.step: KestraCall | None = self._call()

    def _call(self, cursor: str | None = None) -> KestraCall:
        if cursor is None:
            self._offset = (self._page - 1) * self.size
        return logs_search_call(
            self.execution_id,
            self._min_level,
            self._since,
            page=self._page,
            size=self.size,
            cursor=cursor,
            until=self._until,
        )

    def take(self, answer: Any) -> list[dict[str, Any]]:
        """Take the answer to :attr:`step`: the lines to hand over now, oldest first (often none until
        the last page); :attr:`step` becomes the next page to read, or None."""
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or not all(isinstance(entry, dict) for entry in results):
            assert self.step is not None
            raise KestraError(f"{self.step.context}: Kestra's answer is not a page of log entries")
        if any(entry.get("executionId") != self.execution_id for entry in results):
            self.foreign, self.step = True, None
            return []
        if self._until is not None:  # oldest page first, up to page 1
            self._page -= 1
            self.step = self._call() if self._page >= 1 else None
            return _oldest_first(results)
        total = answer.get("total")
        total = total if isinstance(total, int) and not isinstance(total, bool) else None
        first, line_bytes = self.size == LOG_SEARCH_FIRST_PAGE and self._page == 1, _line_bytes(results)
        self._keep(results, total)
        size = self.size
        if first and len(results) == size:
            size = max(LOG_SEARCH_FIRST_PAGE, min(LOG_SEARCH_PAGE_SIZE, LOG_SEARCH_PAGE_BYTES // line_bytes))
        lines = max(total or 0, len(self._newest_first))
        if lines > LOG_SEARCH_MAX_LINES or max(lines * line_bytes, self._bytes) > LOG_SEARCH_MAX_BYTES:
            self._page_from_the_oldest(size)
            return []
        if str(answer.get("type") or "").upper() == "CURSOR":
            next_cursor = answer.get("nextCursor")
            self.size = size
            self.step = self._call(cursor=str(next_cursor)) if results and next_cursor else None
        elif len(results) < self.size or (total is not None and self._page * self.size >= total):
            self.step = None
        elif size != self.size:  # read again from the top in bigger pages (the repeats are dropped)
            self.size, self._page = size, 1
            self.step = self._call()
        else:
            self._page += 1
            self.step = self._call()
        return self.entries() if self.step is None else []

    def _page_from_the_oldest(self, size: int) -> None:
        """Too many lines to hold: freeze the list at the newest line read and page it from the end."""
        newest = max(self._newest_first, key=lambda entry: instant_key(entry.get("timestamp")), default=None)
        if self._total is None or newest is None or not newest.get("timestamp"):
            self.too_long, self.step = True, None
            return
        self._until = str(newest["timestamp"])
        self._newest_first, self._listing, self._ids = [], [], set()
        self.size = size
        self._page = max(1, -(-self._total // size))
        self.step = self._call()

    def _keep(self, results: list[dict[str, Any]], total: int | None) -> None:
        """Add a page to the lines read, without the ones a shift of the offsets made it repeat."""
        if results and all(entry.get("id") for entry in results):
            fresh = [entry for entry in results if str(entry["id"]) not in self._ids]
            self._ids.update(str(entry["id"]) for entry in fresh)
        else:
            # ``_listing`` mirrors Kestra's newest-first list as far as it was read. Lines logged since the
            # previous page (the growth of ``total``) went on top, unread (None), and moved the rest down;
            # a line of this page found at its place in the mirror was read before.
            shift = total - self._total if total is not None and self._total is not None else 0
            self._listing[:0] = [None] * max(shift, 0)
            fresh = []
            for i, entry in enumerate(results):
                at = self._offset + i
                if at < len(self._listing) and self._listing[at] == entry:
                    continue
                if at < len(self._listing):
                    self._listing[at] = entry
                else:
                    self._listing.extend([None] * (at - len(self._listing)) + [entry])
                fresh.append(entry)
        self._newest_first.extend(fresh)
        self._bytes += _line_bytes(fresh) * len(fresh)
        self._offset += len(results)
        self._total = total if total is not None else self._total

    def entries(self) -> list[dict[str, Any]]:
        """The lines read and held, oldest first (lines of one instant in the order Kestra listed them)."""
        return _oldest_first(self._newest_first)


def _oldest_first(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda entry: instant_key(entry.get("timestamp")))


def _line_bytes(entries: list[dict[str, Any]]) -> int:
    """About how many bytes a line of ``entries`` takes in Kestra's answer (its message, plus the other
    fields' usual 300 bytes)."""
    if not entries:
        return 300
    return 300 + sum(len(str(entry.get("message") or "")) for entry in entries) // len(entries)


class KestraHookBase(BaseHook):
    """Connection settings, routes, errors, retry decisions and answer reading of both hooks."""

    conn_name_attr = "kestra_conn_id"
    default_conn_name = "kestra_default"
    conn_type = "kestra"
    hook_name = "Kestra"

    _clock: Callable[[], float] = staticmethod(time.time)
    """The UNIX clock of deadlines, outages and read-after-write windows (tests replace it)."""

    def __init__(
        self,
        kestra_conn_id: str = default_conn_name,
        *,
        retry_limit: int = 5,
        retry_delay: float = 1.0,
        request_timeout: float | None = None,
        api_version: str | None = None,
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
        self._api_version: KestraApiVersion | None = KestraApiVersion.parse(api_version or "")
        """Pinned by the ``api_version`` argument (a hook that already knows the server's, e.g. a trigger
        handed :attr:`known_api_version` by its operator), else by the connection, else detected once."""
        self._expected: dict[str, float] = {}
        """Execution ids just created or waited for, not read yet: a 404 for them is retried until then."""
        self._action_layout: KestraActionLayout = "actions"
        self._action_layout_known = False
        """Whether an action succeeded on :attr:`_action_layout` (then it is never switched again)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kestra_conn_id={self.kestra_conn_id!r})"

    @property
    def known_api_version(self) -> str | None:
        """The API generation this hook pinned or detected (``"0.22"``, ``"1"``, ``"2"``), None before it
        knows; hand it to another hook as ``api_version=`` so that one never reads ``/api/v1/configs``."""
        return self._api_version.value if self._api_version is not None else None

    # ------------------------------------------------------------------------------------- patience
    @contextlib.contextmanager
    def retrying_until(self, deadline: float | None, *, what: str) -> Iterator[KestraPatience]:
        """Within this block (this thread, or this asyncio task), every retryable failure of a request this
        hook sends (connection errors, 429, any 5xx, unreadable 200 answers of safe routes) is retried
        until ``deadline`` (a UNIX time; None: forever) instead of ``retry_limit`` times: what a wait does,
        so that only a terminal state, the deadline or a person ends it. ``what`` ("waiting for execution
        X") names the wait in the WARNING logged every few minutes of outage. Nested blocks keep the
        outer one. Requests that must not be repeated (create, restart, resume) keep their rules.
        """
        outer = _PATIENCE.get()
        if outer is not None:
            yield outer
            return
        patience = KestraPatience(what, deadline, clock=self._clock)
        token = _PATIENCE.set(patience)
        try:
            yield patience
        finally:
            _PATIENCE.reset(token)

    def _expect(self, execution_id: str, window: float = READ_AFTER_WRITE_SECONDS) -> None:
        """Take a 404 for ``execution_id`` for read-after-write lag (retried) for ``window`` seconds, until
        it is read once."""
        self._expected.setdefault(execution_id, self._clock() + window)

    def _lagging(
        self, call: KestraCall, error: KestraError | KestraAttemptFailure
    ) -> KestraError | KestraAttemptFailure:
        """A 404 reading an execution that was just created (or whose wait just began) and never read: a
        replica that has not seen it yet, retried until its window closes."""
        if not isinstance(error, KestraNotFoundError) or call.route != "execution_get":
            return error
        until = self._expected.get(call.path["execution_id"])
        if until is None or self._clock() >= until:
            return error
        return KestraAttemptFailure(KestraFailureKind.LAGGING, error, until=until)

    def _reached(self, call: KestraCall, status: int) -> None:
        """Kestra answered ``call`` with ``status``: an outage is over unless it says "later" (429, 5xx);
        an expected execution was read."""
        patience = _PATIENCE.get()
        if patience is not None and status < 500 and status != 429:
            patience.recovered()
        if call.route == "execution_get" and status < 400:
            self._expected.pop(call.path.get("execution_id", ""), None)

    def _attempt_timeout(self) -> float:
        """The request timeout of one attempt: never much past the deadline of the wait in progress."""
        patience = _PATIENCE.get()
        left = patience.left() if patience is not None else None
        return self._timeout if left is None else max(1.0, min(self._timeout, left + 1.0))

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
        cause = connection_failure_cause(err)
        return KestraConnectionError(f"{head}could not reach {where}{cause}: {detail}")

    def _http_error(self, route: KestraRoute, status: int, body: str, context: str | None) -> KestraApiError:
        return kestra_api_error(
            status=status, method=route.method, path=route.path, body=self._redact(body), context=context
        )

    def _status_failure(
        self, route: KestraRoute, status: int, body: str, retry_after: str | None, context: str | None
    ) -> KestraApiError | KestraAttemptFailure:
        """What an HTTP error answer means: a failure worth retrying (429, 502-504; in a wait any 5xx),
        else the typed error."""
        error = self._http_error(route, status, body, context)
        kind = failure_kind_for_status(status)
        if kind is None and status >= 500 and _PATIENCE.get() is not None:
            kind = KestraFailureKind.UNAVAILABLE
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

    def _log_read_failed(self, call: KestraCall, err: BaseException, decoded: int) -> KestraAttemptFailure:
        """A log answer that broke (cut, or not a JSON array: a proxy's page): read again (a failed
        attempt) when no line was decoded yet, else raise; a partly shown answer is never shown twice."""
        error = err if isinstance(err, KestraError) else None
        error = error or KestraConnectionError(f"{call.context} failed: {self._error_detail(err)}")
        if decoded:
            raise error from None
        return KestraAttemptFailure(KestraFailureKind.GARBLED, error)

    _log_search_off = False
    """Set once this hook's server refused or ignored the log search: it reads whole logs from then on."""

    def _log_search(
        self, version: KestraApiVersion, execution_id: str, selection: KestraLogSelection
    ) -> KestraLogSearch | None:
        """The plan of an incremental log read, or None when this server must be read whole (API 0.22,
        whose search has no execution filter, or a server that refused or ignored it before)."""
        if self._log_search_off or not has_route("logs_search", version):
            return None
        return KestraLogSearch(execution_id, selection)

    def _log_search_refused(self, err: KestraApiError) -> bool:
        """Whether a search error means "this server has no usable log search" (400: filters refused,
        404/405: no such route); if so it is remembered and the whole log is read instead. Other errors
        (auth, 5xx after the retries) are the read's failure."""
        if err.status not in (400, 404, 405):
            return False
        self._log_search_off = True
        log.info("Kestra refused the log search (HTTP %s); reading whole logs instead", err.status)
        return True

    def _log_search_finished(self, search: KestraLogSearch) -> bool:
        """After a search read its last page: True when it handed over every new line; False when the
        whole log must be read instead (too many lines to page, or the server answered lines of other
        executions: it ignores the filters, so it is never searched again)."""
        if search.foreign:
            self._log_search_off = True
            log.warning(
                "Kestra's log search ignored the execution filter (lines of other executions for %s); "
                "reading whole logs with GET /logs/{id} instead",
                search.execution_id,
            )
            return False
        return not search.too_long

    def _stream_cut(self, execution_id: str, err: BaseException, *, idle: bool = False) -> KestraStreamError:
        """The error for an execution event stream broken by a transport error (``idle``: a read timeout)."""
        detail = self._error_detail(err)
        if idle:
            return KestraStreamIdle(f"The event stream of execution {execution_id} was idle: {detail}")
        return KestraStreamError(f"The event stream of execution {execution_id} was cut: {detail}")

    # ----------------------------------------------------------------------------------------- answers
    def _answer(self, call: KestraCall, route: KestraRoute, response: Any, data: Any = _UNREAD) -> Any:
        """Read a successful answer (a requests or httpx response) as ``call.answer`` says (``data``: its
        body already decoded, by the async hook off its event loop). An unreadable body raises
        :class:`KestraAttemptFailure` (``GARBLED``); so does an empty 200 where an execution or a page of
        results is expected."""
        if call.answer == "none":
            return None
        if call.answer == "text":
            return response.text
        if data is _UNREAD:
            data = decode_json(response, route, required=call.answer in ("json", "results"))
        if call.answer == "results":
            return list((data if isinstance(data, dict) else {}).get("results") or [])
        if call.answer == "object":
            return data if isinstance(data, dict) else {}
        if call.answer == "list":
            return data if isinstance(data, list) else []
        if call.answer == "server_info":
            return server_facts(data, response.headers)
        return data

    def _plan(self, call: KestraCall) -> Generator[KestraCall, Any, Any]:
        """The requests one operation needs, without I/O: yields each call to send, receives its answer
        (or has the send's :class:`KestraError` thrown in), returns the operation's result.

        Both hooks drive it the same way (``_call``), so these follow-up decisions are made once:

        * a 404 on a call that may find nothing (2.x outputs) is an empty answer;
        * a single-execution action refused with 404/405 by a 2.x server may be the other action layout
          (:meth:`_other_layout`);
        * an action answered with 502/503/504, or whose answer was lost (connection dropped, unreadable
          answer), has an unknown outcome: the execution is read again before deciding
          (:meth:`_after_unknown_outcome`); restart and resume are never sent twice;
        * a kill or resume refused with 409 (a retry of ours, or an Airflow retry, after Kestra did it) is
          decided the same way: an execution already KILLING or ended was killed; one that was PAUSED and
          runs or ended was resumed.
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
            if err.status in (502, 503, 504) or (
                isinstance(err, KestraConflictError) and call.route in _DECIDED_BY_STATE_ON_CONFLICT
            ):
                return (yield from self._after_unknown_outcome(call, err))
            raise
        except KestraConnectionError as err:
            if call.route not in ACTION_ROUTES:
                raise
            return (yield from self._after_unknown_outcome(call, err))
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

    def _after_unknown_outcome(self, call: KestraCall, err: KestraError) -> Generator[KestraCall, Any, Any]:
        """Decide an action whose answer was lost (502/503/504, 2.x's 504 "operation timed out" when the
        state transition takes too long, a dropped connection) or refused with 409, from the execution
        read again; else raise ``err``, noted."""
        try:
            execution = yield get_execution_call(call.path["execution_id"])
        except KestraError:
            raise err from None
        state = state_of(execution)
        conflict = isinstance(err, KestraConflictError)
        if action_took_effect(call.route, state, execution if conflict else None):
            answer = f"HTTP {err.status}" if isinstance(err, KestraApiError) else "no answer"
            log.warning("%s: Kestra gave %s, yet the execution is %s: done", call.context, answer, state)
            return execution if call.answer == "json" else None
        if conflict:
            raise err from None
        note = f"the execution is still {state or 'in an unknown state'}; the request was not sent again"
        raise with_note(err, note) from None

    def _server_key(self) -> str:
        """The key of this hook's server in :data:`SERVER_INFO_CACHE` (its normalised base URL)."""
        assert self._settings is not None
        return server_key(self._settings.base_url)

    def _server_info_of(self, facts: KestraServerFacts) -> KestraServerInfo:
        """What :meth:`server_info` reports: the server's answer, with the pinned API generation if any."""
        assert self._settings is not None
        return facts.info(self._settings.api_version)

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
        repeating it after this kind of failure. In a wait (:meth:`retrying_until`) the retries are used up
        only at the deadline; a read-after-write 404 only at the end of its window.
        """
        if failure.kind is KestraFailureKind.LAGGING and failure.until is not None:
            left = failure.until - self._clock()
            if left <= 0:
                raise failure.error
            pause = min(backoff_delay(attempt, 0.5), 5.0, left)
            log.info("Kestra does not know execution yet (%s); reading it again in %.1fs", route.path, pause)
            return pause
        patience = _PATIENCE.get()
        if patience is not None and may_retry(route.retry, failure.kind):
            wait = patience.pause(attempt, max(self.retry_delay, 0.5), failure.retry_after)
            if wait is None:
                self._give_up(failure, route, attempt + 1)
            warning = patience.warning(f"{self._settings.base_url if self._settings else '?'}")
            if warning:
                log.warning("%s (last: %s)", warning, self._error_detail(failure.error, 200))
            else:
                log.info(
                    "Kestra %s %s failed (%s); retrying in %.1fs",
                    route.method,
                    route.path,
                    failure.kind.value,
                    wait,
                )
            return wait
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
