"""HTTP errors: the backend's exceptions mapped to statuses, rendered in each Kestra line's body format.

:func:`http_error` is the simulator's ``ErrorController`` (1.x) / ``KestraProblemMappings`` (2.0): it maps
a :class:`~airflow_provider_kestra.testing.backend.exceptions.KestraSimError` to a status and a reason for
the profile. 1.x and 0.x answer Micronaut ``JsonError`` bodies (``{"message": "<Reason>: <detail>",
"_links": ..., "_embedded": {"errors": [...]}}``); the 2.0 line answers RFC 9457
``application/problem+json``. A few Kestra endpoints answer bare strings or empty bodies; those are
modelled with ``plain`` and ``empty``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend.exceptions import (
    KestraSimActionFailed,
    KestraSimActionTimeout,
    KestraSimAlreadyExists,
    KestraSimConflict,
    KestraSimConstraintViolation,
    KestraSimError,
    KestraSimHttpStatus,
    KestraSimIllegalArgument,
    KestraSimIllegalState,
    KestraSimInputOutputValidation,
    KestraSimInvalidQueryFilters,
    KestraSimNotFound,
)

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.profiles import KestraSimulatorProfile

_PROBLEM_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "resource-not-found",
    409: "entity-already-exists",
    422: "validation-failed",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class KestraSimulatorFieldError:
    """One entry of ``_embedded.errors`` (1.x) / ``errors`` (2.0): a property path and its message."""

    path: str
    message: str


@dataclass
class KestraSimulatorHttpError(Exception):
    """An error answer; ``reason`` is the JsonError prefix (``Invalid entity``, ``Illegal argument``...)."""

    status: int
    detail: str | None = None
    reason: str | None = None
    errors: list[KestraSimulatorFieldError] = field(default_factory=list)
    #: Answer ``detail`` as a bare ``text/plain``-ish string (e.g. labels on a running execution).
    plain: bool = False
    #: Answer with no body at all (e.g. webhook conditions not met).
    empty: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.reason or _TITLES.get(self.status, '')}: {self.detail}"

    def json_error_message(self) -> str:
        """The 1.x ``message``: ``<reason>[: <detail>]``."""
        reason = self.reason or _TITLES.get(self.status, "Error")
        return f"{reason}: {self.detail}" if self.detail else reason

    def render(self, profile: KestraSimulatorProfile, path: str) -> tuple[bytes, str]:
        """Return the body and content type for ``profile``; ``path`` is the request path for links."""
        if self.empty:
            return b"", "application/json"
        if self.plain:
            return (self.detail or "").encode(), "application/json"
        if profile.problem_json:
            problem: dict[str, Any] = {
                "type": "https://kestra.io/docs/api-reference/problems/"
                + _PROBLEM_TYPES.get(self.status, "error"),
                "title": self.reason or _TITLES.get(self.status, "Error"),
                "status": self.status,
                "detail": self.detail or self.reason or _TITLES.get(self.status, "Error"),
                "instance": path,
            }
            if self.errors:
                problem["errors"] = [{"path": e.path, "message": e.message} for e in self.errors]
            return json.dumps(problem).encode(), "application/problem+json"
        body: dict[str, Any] = {
            "message": self.json_error_message(),
            "_links": {"self": {"href": path, "templated": False}},
        }
        if self.errors:
            body["_embedded"] = {"errors": [{"message": e.message, "path": e.path} for e in self.errors]}
        return json.dumps(body).encode(), "application/json"


def http_error(error: KestraSimError, profile: KestraSimulatorProfile) -> KestraSimulatorHttpError:
    """The answer Kestra's error handlers give to ``error`` on ``profile``'s line."""
    message = error.message
    if isinstance(error, KestraSimHttpStatus):
        return KestraSimulatorHttpError(error.status, message, plain=error.plain)
    if isinstance(error, KestraSimNotFound):
        return KestraSimulatorHttpError(404, message, reason="Not Found")
    if isinstance(error, KestraSimConstraintViolation):
        return _constraint_violation(error.violations, message)
    if isinstance(error, KestraSimAlreadyExists):
        if profile.duplicate_flow_status == 409:
            return KestraSimulatorHttpError(409, message, reason="Entity already exists")
        return _constraint_violation([KestraSimulatorFieldError(error.path, message or "")], None)
    if isinstance(error, KestraSimInputOutputValidation):
        return KestraSimulatorHttpError(422, message, reason="Invalid entity")
    if isinstance(error, KestraSimIllegalArgument):
        return KestraSimulatorHttpError(422, message, reason="Illegal argument")
    if isinstance(error, KestraSimIllegalState):
        if profile.illegal_state_status == 500:
            return KestraSimulatorHttpError(500, message, reason="Internal server error")
        return KestraSimulatorHttpError(409, message, reason="Illegal state")
    if isinstance(error, KestraSimConflict):
        return KestraSimulatorHttpError(409, message, reason="Conflict")
    if isinstance(error, KestraSimInvalidQueryFilters):
        return KestraSimulatorHttpError(400, message, reason="Invalid query filters")
    if isinstance(error, KestraSimActionFailed):
        return KestraSimulatorHttpError(409, message, reason="Conflict")
    if isinstance(error, KestraSimActionTimeout):
        return KestraSimulatorHttpError(504, message, reason="Gateway Timeout")
    return KestraSimulatorHttpError(500, message, reason="Internal server error")


def _constraint_violation(violations: list[Any], message: str | None) -> KestraSimulatorHttpError:
    """A bean-validation style 422: ``Invalid entity: <path>: <msg>, ...`` with every violation listed."""
    errors = [KestraSimulatorFieldError(v.path, v.message) for v in violations]
    detail = message or ", ".join(f"{v.path}: {v.message}" if v.path else v.message for v in errors)
    return KestraSimulatorHttpError(422, detail, reason="Invalid entity", errors=errors)


def bad_request(detail: str) -> KestraSimulatorHttpError:
    """400 ``Bad Request: detail`` (Micronaut's argument conversion and missing-parameter errors)."""
    return KestraSimulatorHttpError(400, detail, reason="Bad Request")
