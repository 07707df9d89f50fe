"""HTTP errors raised by the simulator's routes and rendered in each Kestra line's error body format.

1.x and 0.x answer Micronaut ``JsonError`` bodies (``{"message": "<Reason>: <detail>", "_links": ...,
"_embedded": {"errors": [...]}}``); the 2.0 line answers RFC 9457 ``application/problem+json``. A few
Kestra endpoints answer bare strings or empty bodies; those are modelled with ``plain`` and ``empty``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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


def constraint_violation(
    violations: list[KestraSimulatorFieldError], message: str | None = None
) -> KestraSimulatorHttpError:
    """A bean-validation style 422: ``Invalid entity: <path>: <msg>, ...`` with every violation listed."""
    detail = message or ", ".join(f"{v.path}: {v.message}" if v.path else v.message for v in violations)
    return KestraSimulatorHttpError(422, detail, reason="Invalid entity", errors=violations)


def not_found(detail: str | None = None) -> KestraSimulatorHttpError:
    """404 ``Not Found[: detail]``."""
    return KestraSimulatorHttpError(404, detail, reason="Not Found")


def illegal_argument(detail: str) -> KestraSimulatorHttpError:
    """422 ``Illegal argument: detail`` (Java IllegalArgumentException)."""
    return KestraSimulatorHttpError(422, detail, reason="Illegal argument")


def illegal_state(profile: KestraSimulatorProfile, detail: str) -> KestraSimulatorHttpError:
    """``Illegal state: detail``: 409 in 1.x, 500 in the 2.0 line (left unmapped there)."""
    if profile.illegal_state_status == 500:
        return KestraSimulatorHttpError(500, detail, reason="Internal server error")
    return KestraSimulatorHttpError(409, detail, reason="Illegal state")
