"""Errors raised by the Kestra hook, operators and triggers.

Every class derives from :class:`KestraError`, itself an ``AirflowException`` so Airflow's retry and
failure handling applies. API errors are built from the HTTP response by :func:`kestra_api_error`,
which understands Kestra 1.x ``JsonError`` bodies, 2.x RFC 9457 ``problem+json`` bodies, plain text
and empty bodies. Messages never contain credentials: only the method, the path (without query string),
the status and what Kestra said.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from airflow.exceptions import AirflowException

_MAX_MESSAGE_CHARS = 2000


class KestraError(AirflowException):
    """Root of every error raised by this provider."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments; rebuild from args + attributes so pickling round-trips.
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


def _rebuild_error(cls: type[KestraError], args: tuple[Any, ...], state: dict[str, Any]) -> KestraError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class KestraConfigError(KestraError):
    """The Airflow connection or the arguments given to the hook are not usable."""


class KestraInputError(KestraConfigError, ValueError):
    """A flow input or label cannot be sent to Kestra (bad key, unsupported value type, missing file).

    Also a ``ValueError``, so code that validated arguments with ``except ValueError`` keeps working.
    """


class KestraConnectionError(KestraError):
    """Kestra could not be reached (DNS, refused, TLS, timeout) even after the retries."""


class KestraStreamError(KestraError):
    """A server-sent-event stream was refused, ended or was cut before its ``end`` frame.

    Never a verdict on the execution: a wait that gets it polls the execution instead.
    """


class KestraStreamIdle(KestraStreamError):
    """An execution's event stream sent nothing for its whole read timeout: not a failure, reopen it."""


def stream_ended_early(execution_id: str) -> KestraStreamError:
    """The error for an execution event stream that closed before its ``end`` frame."""
    return KestraStreamError(f"The event stream of execution {execution_id} ended before its end event")


class KestraExecutionStateError(KestraError):
    """Base of the errors about one execution's state; carries ``execution_id`` and ``state``."""

    def __init__(self, message: str, *, execution_id: str, state: str | None) -> None:
        super().__init__(message)
        self.execution_id = execution_id
        self.state = state


class KestraWaitTimeout(KestraExecutionStateError, TimeoutError):
    """An execution did not reach a terminal state before the deadline."""


class KestraExecutionError(KestraExecutionStateError):
    """An execution ended in a failing (or unexpected) state."""


@dataclass(frozen=True)
class KestraFieldError:
    """One field-level problem reported by Kestra (``path`` may be empty)."""

    path: str
    message: str


class KestraFlowValidationError(KestraError):
    """Flow sources were refused, locally or by ``POST /flows/validate``; ``problems`` names each one."""

    def __init__(self, message: str, problems: list[Any]) -> None:
        super().__init__(message)
        self.problems = problems


class KestraFlowDeployError(KestraError):
    """A deployment stopped midway. ``deployed``: the results of what was done; ``not_deployed``: the flows
    (``namespace.id``) certainly left as they were; ``unknown``: the flows whose write was sent but whose
    answer was lost or partial (a cut connection, a 5xx), which Kestra may or may not have applied."""

    def __init__(
        self, message: str, *, deployed: list[Any], not_deployed: list[str], unknown: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.deployed = deployed
        self.not_deployed = not_deployed
        self.unknown = list(unknown or [])


class KestraApiError(KestraError):
    """Kestra answered with an HTTP error status."""

    def __init__(
        self,
        *,
        status: int,
        method: str,
        path: str,
        kestra_message: str,
        field_errors: list[KestraFieldError] | None = None,
        context: str | None = None,
        problem_type: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.kestra_message = kestra_message
        self.field_errors = list(field_errors or [])
        self.context = context
        self.problem_type = problem_type
        """The slug of a 2.x problem+json ``type`` (``not-found``, ``conflict``...), else None."""
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.context}: " if self.context else ""
        text = f"{head}Kestra answered HTTP {self.status} to {self.method} {self.path}"
        if self.kestra_message:
            text += f": {self.kestra_message}"
        details = [f"{e.path}: {e.message}" if e.path else e.message for e in self.field_errors]
        details = [d for d in details if d and d not in self.kestra_message]
        if details:
            text += " [" + "; ".join(details) + "]"
        return text[:_MAX_MESSAGE_CHARS]


class KestraBadRequestError(KestraApiError):
    """HTTP 400 (bad filter, wrong tenant on OSS, bulk errors)."""


class KestraAuthenticationError(KestraApiError):
    """HTTP 401: missing or wrong credentials."""


class KestraPermissionError(KestraApiError):
    """HTTP 403: authenticated but not allowed (EE RBAC, or a file outside the allowed scheme)."""


class KestraNotFoundError(KestraApiError):
    """HTTP 404: no such flow, execution, file or route."""


class KestraConflictError(KestraApiError):
    """HTTP 409: illegal state (not paused, flow disabled, already exists on 2.x)."""


class KestraValidationError(KestraApiError):
    """HTTP 422: invalid entity, input, argument or flow source."""


class KestraMethodNotAllowedError(KestraApiError):
    """HTTP 405: the server has this path, but not for this method (a route of another API layout)."""


class KestraServerError(KestraApiError):
    """HTTP 5xx."""


_STATUS_CLASSES: dict[int, type[KestraApiError]] = {
    400: KestraBadRequestError,
    401: KestraAuthenticationError,
    403: KestraPermissionError,
    404: KestraNotFoundError,
    405: KestraMethodNotAllowedError,
    409: KestraConflictError,
    422: KestraValidationError,
}

PROBLEM_TYPE_BASE = "https://kestra.io/docs/api-reference/problems/"
"""Base of Kestra 2.x problem ``type`` URIs (webserver/.../errors/ProblemType.java @67c8181a)."""

_PROBLEM_CLASSES: dict[str, type[KestraApiError]] = {
    # The catalog of webserver/.../errors/ProblemTypes.java (kestra-io/kestra@14844e4f).
    **dict.fromkeys(
        ("bad-request", "invalid-query-parameter", "invalid-query-filters"), KestraBadRequestError
    ),
    "bulk-validation-failed": KestraBadRequestError,
    "unauthenticated": KestraAuthenticationError,
    "forbidden": KestraPermissionError,
    "not-found": KestraNotFoundError,
    "method-not-allowed": KestraMethodNotAllowedError,
    "conflict": KestraConflictError,
    "entity-already-exists": KestraConflictError,
    **dict.fromkeys(
        (
            "invalid-json",
            "invalid-plugin-type",
            "invalid-format",
            "invalid-request-body",
            "invalid-argument",
            "validation-failed",
            "invalid-entity",
        ),
        KestraValidationError,
    ),
    **dict.fromkeys(
        ("internal-error", "migration-required", "service-unavailable", "timeout"), KestraServerError
    ),
}
"""Error class per problem type: on 2.x the ``type`` says what happened, whatever the status."""


def problem_type_of(body: str) -> str | None:
    """The slug of a problem+json body's ``type`` (``not-found``...), None for other bodies or types."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return None
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str) or not kind.startswith(PROBLEM_TYPE_BASE):
        return None
    return kind[len(PROBLEM_TYPE_BASE) :].strip("/") or None


def _field_errors(items: Any) -> list[KestraFieldError]:
    errors: list[KestraFieldError] = []
    if not isinstance(items, list):
        return errors
    for item in items:
        if isinstance(item, dict):
            path = item.get("path") or item.get("field") or item.get("pointer") or item.get("name") or ""
            message = item.get("message") or item.get("detail") or item.get("reason") or ""
            errors.append(KestraFieldError(path=str(path), message=str(message)))
        elif isinstance(item, str):
            errors.append(KestraFieldError(path="", message=item))
    return errors


def parse_error_body(body: str) -> tuple[str, list[KestraFieldError]]:
    """Kestra's message and field errors from an error body of any known shape."""
    text = (body or "").strip()
    if not text:
        return "", []
    try:
        data = json.loads(text)
    except ValueError:
        return text[:_MAX_MESSAGE_CHARS], []
    if isinstance(data, str):
        return data, []
    if not isinstance(data, dict):
        return text[:_MAX_MESSAGE_CHARS], []
    if "title" in data or "detail" in data or ("type" in data and "status" in data):
        title = str(data.get("title") or "")
        detail = str(data.get("detail") or "")
        message = f"{title}: {detail}" if title and detail and detail != title else detail or title
        return message, _field_errors(data.get("errors"))
    message = str(data.get("message") or "")
    embedded = data.get("_embedded")
    errors = _field_errors(embedded.get("errors") if isinstance(embedded, dict) else data.get("errors"))
    invalids = data.get("invalids")
    if isinstance(invalids, list):
        errors.extend(_field_errors(invalids))
    return message, errors


def kestra_api_error(
    *, status: int, method: str, path: str, body: str, context: str | None = None
) -> KestraApiError:
    """The typed error for an HTTP error response: the class follows a 2.x problem ``type`` when Kestra
    gives a known one, else the status."""
    message, errors = parse_error_body(body)
    if not message and status == 401:
        message = "authentication required or credentials refused"
    problem = problem_type_of(body)
    cls = (
        _PROBLEM_CLASSES.get(problem or "")
        or _STATUS_CLASSES.get(status)
        or (KestraServerError if status >= 500 else KestraApiError)
    )
    return cls(
        status=status,
        method=method,
        path=path,
        kestra_message=message,
        field_errors=errors,
        context=context,
        problem_type=problem,
    )


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
            problem_type=error.problem_type,
        )
    return type(error)(f"{error} ({note})")
