"""What the sync and async Kestra hooks share: connection settings, routes, error building, the retry
decision, JSON decoding, the UI URL and the wait-loop bookkeeping. Internal to the hooks package.

Each hook keeps only its I/O: sending (requests or httpx), sleeping (``time.sleep`` or ``asyncio.sleep``)
and iterating (``for`` or ``async for``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from airflow_provider_kestra import __version__
from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraConfigError,
    KestraConnectionError,
    KestraError,
    KestraNotFoundError,
    KestraStreamError,
    KestraWaitTimeout,
    kestra_api_error,
)
from airflow_provider_kestra.utils.connection import KestraConnectionSettings, redact, settings_from_fields
from airflow_provider_kestra.utils.retry import (
    KestraFailureKind,
    failure_kind_for_status,
    may_retry,
    retry_wait,
)
from airflow_provider_kestra.utils.routes import KestraApiVersion, KestraRoute, resolve_route
from airflow_provider_kestra.utils.state import is_terminal, state_of
from airflow_provider_kestra.version_compat import BaseHook

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_kestra.utils.models import KestraExecution, KestraServerInfo

log = logging.getLogger(__name__)

LOG_CHUNK_BYTES = 1 << 16
"""How much of a log answer (``GET /logs/{id}``, streamed) is read at a time."""

UNKNOWN_OUTCOME_NOTE = (
    "the execution may or may not have been created; it was not requested again to avoid a second run "
    "(give labels with a unique value and idempotency_label_key to let the hook find out)"
)


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


def stream_ended_early(execution_id: str) -> KestraStreamError:
    """The error for an execution event stream that closed before its ``end`` frame."""
    return KestraStreamError(f"The event stream of execution {execution_id} ended before its end event")


class KestraHookBase(BaseHook):
    """What the sync and async hooks share: connection settings, routes, errors, retry decisions."""

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
        return resolve_route(name, version, self._settings.tenant, **params)

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

    def _stream_cut(self, execution_id: str, err: BaseException, *, idle: bool = False) -> KestraStreamError:
        """The error for an execution event stream broken by a transport error (``idle``: a read timeout)."""
        detail = self._error_detail(err)
        if idle:
            return KestraStreamIdle(f"The event stream of execution {execution_id} was idle: {detail}")
        return KestraStreamError(f"The event stream of execution {execution_id} was cut: {detail}")

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

    def _ui_url(self, execution: KestraExecution) -> str:
        assert self._settings is not None
        base = (self._settings.ui_url or self._settings.base_url).rstrip("/")
        base = base.removesuffix("/ui")
        version = self._api_version or self._settings.api_version or KestraApiVersion.V1
        tenant = "" if version is KestraApiVersion.V0_22 else f"/{self._settings.tenant}"
        parts = [quote(str(execution[key]), safe="") for key in ("namespace", "flowId", "id")]
        return f"{base}/ui{tenant}/executions/{'/'.join(parts)}"

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


def with_note(error: KestraError, note: str) -> KestraError:
    """A copy of ``error`` (same class) whose message ends with ``note``."""
    if isinstance(error, KestraApiError):
        context = f"{error.context} ({note})" if error.context else note
        return type(error)(
            status=error.status,
            method=error.method,
            path=error.path,
            kestra_message=error.kestra_message,
            field_errors=error.field_errors,
            context=context,
        )
    return type(error)(f"{error} ({note})")


def auth_message(settings: KestraConnectionSettings, found: str | None) -> str:
    """What to tell the user about a 401, naming the kind of credentials (never their value)."""
    head = f"Found {found}, but it" if found else f"Kestra at {settings.base_url}"
    if settings.auth_kind == "none":
        return f"{head} requires authentication (HTTP 401): set login/password (basic auth) or a token"
    what = "the API token" if settings.auth_kind == "token" else f"login {settings.login!r} and its password"
    return f"{head} refused {what} (HTTP 401)"


STREAM_IDLE_SECONDS = 300.0
"""Longest silence accepted on an execution's event stream before it is reopened (Kestra sends a frame
only when the execution changes, so an execution that waits for hours is silent for hours)."""


class KestraStreamIdle(KestraStreamError):
    """An execution's event stream sent nothing for its whole read timeout: not a failure, reopen it."""


def _is_terminal_execution(execution: KestraExecution) -> bool:
    return is_terminal(state_of(execution))


class KestraWaitTracker:
    """The bookkeeping of one ``wait_for_execution``, the same for the sync and async hooks.

    Remembers the last execution seen and reports each new state once to ``on_update``; ends the wait
    when ``until(execution)`` holds (by default: the execution is terminal), so a caller may stop at a
    state such as PAUSED; enforces the deadline (a ``clock()`` value, None for no limit); and decides when
    to give up on the event stream: after :attr:`MAX_STREAM_FAILURES` stream attempts in a row that
    brought no update, the wait only polls. A stream that was merely idle is reopened at once.
    """

    MAX_STREAM_FAILURES = 3

    def __init__(
        self,
        execution_id: str,
        deadline: float | None,
        on_update: Callable[[KestraExecution], None] | None,
        clock: Callable[[], float] = time.monotonic,
        until: Callable[[KestraExecution], bool] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.deadline = deadline
        self.on_update = on_update
        self.clock = clock
        self.until = until or _is_terminal_execution
        self.last: KestraExecution | None = None
        self.state: str | None = None
        self.stream_failures = 0
        self._stream_updates = 0
        self._reconnect_now = False

    @property
    def use_stream(self) -> bool:
        """Whether to (re)open the event stream before the next poll."""
        return self.stream_failures < self.MAX_STREAM_FAILURES

    def remaining(self, default: float) -> float:
        """Seconds left before the deadline (at least 0.5, at most ``default``); ``default`` without one."""
        if self.deadline is None:
            return default
        return max(0.5, min(default, self.deadline - self.clock()))

    def begin_stream(self) -> float:
        """Note that a stream attempt starts; returns its read timeout.

        Kestra sends nothing while an execution's state does not change, so silence is normal: the
        timeout is the time left to the deadline, at most :data:`STREAM_IDLE_SECONDS`.
        """
        self._stream_updates = 0
        self._reconnect_now = False
        return self.remaining(STREAM_IDLE_SECONDS)

    def streamed(self, execution: KestraExecution) -> bool:
        """Take an update from the stream; True when it ends the wait (raises past the deadline otherwise)."""
        self._stream_updates += 1
        return self.polled(execution)

    def stream_failed(self, err: KestraError) -> None:
        """Count a failed stream attempt; one that brought updates before it broke resets the count.

        A stream that was only idle for its whole read timeout is no failure: after one poll it is
        reopened at once.
        """
        if isinstance(err, KestraStreamIdle):
            self._reconnect_now = True
            log.debug("Event stream of execution %s idle; reconnecting", self.execution_id)
            return
        if isinstance(err, KestraStreamError) and self._stream_updates:
            self.stream_failures = 0
        else:
            self.stream_failures += 1
        log.info("Falling back to polling execution %s: %s", self.execution_id, err)

    def polled(self, execution: KestraExecution) -> bool:
        """Take a polled execution; True when it ends the wait (raises past the deadline otherwise)."""
        self._update(execution)
        if self.until(execution):
            return True
        self.check_deadline()
        return False

    def poll_pause(self, poll_interval: float) -> float:
        """How long to sleep before the next poll: nothing when an idle stream is to be reopened."""
        if self._reconnect_now and self.use_stream:
            return 0.0
        return min(poll_interval, self.remaining(poll_interval))

    def check_deadline(self) -> None:
        """Raise :class:`KestraWaitTimeout` once ``clock()`` has reached the deadline."""
        if self.deadline is not None and self.clock() >= self.deadline:
            state = self.state or "in an unknown state"
            raise KestraWaitTimeout(
                f"Execution {self.execution_id} is still {state} after the timeout",
                execution_id=self.execution_id,
                state=self.state,
            )

    def _update(self, execution: KestraExecution) -> None:
        self.last = execution
        state = state_of(execution) or None
        if state != self.state:
            self.state = state
            if self.on_update is not None:
                self.on_update(execution)


#: What makes ``wait_for_execution`` fall back to polling (a stream error, or no stream route / server).
STREAM_FALLBACK_ERRORS = (KestraStreamError, KestraNotFoundError, KestraConnectionError)
