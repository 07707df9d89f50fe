"""The words of the hooks: what ``test_connection`` reports, the notes and warnings of unknown outcomes, and
the root cause of a transport error. Pure functions; :mod:`airflow_provider_kestra.hooks.kestra_base`
re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraAuthenticationError,
    KestraBadRequestError,
    KestraNotFoundError,
    KestraPermissionError,
)
from airflow_provider_kestra.utils.routes import KestraApiVersion

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_kestra.exceptions import KestraError
    from airflow_provider_kestra.utils.connection import KestraConnectionSettings
    from airflow_provider_kestra.utils.models import KestraExecutionQuery, KestraServerInfo

UNKNOWN_OUTCOME_NOTE = (
    "the execution may or may not have been created; it was not requested again to avoid a second run "
    "(give labels with a unique value and idempotency_label_key to let the hook find out)"
)


def connection_failure_cause(err: BaseException) -> str:
    """`` (DNS: name not found)``, `` (connection refused)``, `` (timed out)`` or nothing: the root cause of
    a transport error in a few words, from its type and message (requests and httpx alike)."""
    text = f"{type(err).__name__}: {err}".lower()
    if any(
        marker in text
        for marker in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo",
            "name resolution",
            "no address associated",
            "temporary failure in name",
        )
    ):
        return " (DNS: host name not found)"
    if "refused" in text:
        return " (connection refused)"
    if "timeout" in text or "timed out" in text:
        return " (timed out)"
    return ""


def found_by_label(namespace: str, flow_id: str, found: Mapping[str, Any], key: str, searches: int) -> str:
    """The warning of a create whose unknown outcome a label search resolved."""
    return (
        f"Starting flow {namespace}.{flow_id} had an unknown outcome; found execution {found.get('id')} "
        f"by label {key} (search {searches})"
    )


def label_search_failed(key: str, err: KestraError) -> str:
    """The note of a create whose unknown outcome could not be resolved (the search itself failed)."""
    return f"the execution may or may not have been created; looking for it by label {key!r} failed: {err}"


def match_wait_what(query: KestraExecutionQuery) -> str:
    """What a ``wait_for_match`` is waiting for, in the outage warning's words."""
    flow = ".".join(part for part in (query.namespace, query.flow_id) if part) or "any flow"
    labels = f" with labels {dict(query.labels)}" if query.labels else ""
    return f"waiting for an execution of {flow}{labels}"


def auth_message(settings: KestraConnectionSettings, found: str | None) -> str:
    """What to tell the user about a 401, naming the kind of credentials (never their value)."""
    head = f"Found {found}, but it" if found else f"Kestra at {settings.base_url}"
    if settings.auth_kind == "none":
        return f"{head} requires authentication (HTTP 401): set login/password (basic auth) or a token"
    what = "the API token" if settings.auth_kind == "token" else f"login {settings.login!r} and its password"
    return f"{head} refused {what} (HTTP 401)"


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


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line (whitespace runs collapsed), at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def connection_test_success(settings: KestraConnectionSettings, info: KestraServerInfo) -> str:
    """What ``test_connection`` says when Kestra answered and let the credentials read flows."""
    tenant = "" if info["api_version"] == KestraApiVersion.V0_22.value else f", tenant {settings.tenant!r}"
    return f"Connected to {_found(info)} (API {info['api_version']}, auth: {settings.auth_kind}{tenant})"


def _found(info: KestraServerInfo) -> str:
    return f"Kestra {info['version'] or '(unknown version)'} {info['edition'] or ''}".rstrip()


# ------------------------------------------------------------------------------------------- the policy
