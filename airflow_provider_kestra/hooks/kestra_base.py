"""What the sync and async Kestra hooks share: connection settings, routes, error building, retry pauses,
the UI URL, the connection-form description and the wait-loop bookkeeping. Internal to the hooks package.
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
    KestraWaitTimeout,
    kestra_api_error,
)
from airflow_provider_kestra.utils.connection import KestraConnectionSettings, redact, settings_from_fields
from airflow_provider_kestra.utils.retry import KestraFailureKind, retry_wait
from airflow_provider_kestra.utils.routes import KestraApiVersion, KestraRoute, resolve_route
from airflow_provider_kestra.version_compat import BaseHook

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_kestra.utils.models import KestraExecution, KestraServerInfo

log = logging.getLogger(__name__)

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

    def _connection_error(self, route: KestraRoute, err: BaseException, context: str | None) -> KestraError:
        assert self._settings is not None
        head = f"{context}: " if context else ""
        where = f"Kestra at {self._settings.base_url} ({route.method} {route.path})"
        detail = self._redact(f"{type(err).__name__}: {err}")[:500]
        if "SSL" in type(err).__name__ or "ssl" in str(err).lower() or "certificate" in str(err).lower():
            return KestraConnectionError(f"{head}TLS handshake with {where} failed: {detail}")
        return KestraConnectionError(f"{head}could not reach {where}: {detail}")

    def _http_error(self, route: KestraRoute, status: int, body: str, context: str | None) -> KestraApiError:
        return kestra_api_error(
            status=status, method=route.method, path=route.path, body=self._redact(body), context=context
        )

    def _server_info_from_configs(
        self, data: Mapping[str, Any], headers: Mapping[str, str]
    ) -> KestraServerInfo:
        assert self._settings is not None
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


def remaining_seconds(
    deadline: float | None, default: float, clock: Callable[[], float] = time.monotonic
) -> float:
    """Seconds left before ``deadline`` (at least 0.5, at most ``default``); ``default`` without one."""
    if deadline is None:
        return default
    return max(0.5, min(default, deadline - clock()))


def check_deadline(
    deadline: float | None, execution_id: str, state: str | None, clock: Callable[[], float] = time.monotonic
) -> None:
    """Raise :class:`KestraWaitTimeout` once ``clock()`` has reached ``deadline``."""
    if deadline is not None and clock() >= deadline:
        raise KestraWaitTimeout(
            f"Execution {execution_id} is still {state or 'in an unknown state'} after the timeout",
            execution_id=execution_id,
            state=state,
        )


class KestraStateTracker:
    """Remembers the last execution seen and reports each new state once."""

    def __init__(self, on_update: Callable[[KestraExecution], None] | None) -> None:
        self.on_update = on_update
        self.last: KestraExecution | None = None
        self.state: str | None = None

    def update(self, execution: KestraExecution) -> None:
        self.last = execution
        state = (execution.get("state") or {}).get("current")
        if state != self.state:
            self.state = state
            if self.on_update is not None:
                self.on_update(execution)
