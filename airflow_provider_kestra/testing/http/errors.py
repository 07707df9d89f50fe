"""HTTP errors: the backend's exceptions mapped to statuses, rendered in each Kestra line's body format.

:func:`http_error` is the simulator's ``ErrorController`` (1.x) and ``KestraProblemMappings`` (2.0): it maps a
:class:`~airflow_provider_kestra.testing.backend.exceptions.KestraSimError` to a status, a 1.x reason and a
2.0 problem type for the profile.

* 1.x and 0.x answer Micronaut ``JsonError`` bodies (``{"message": "<Reason>: <detail>", "_links": ...,
  "_embedded": {"errors": [...]}}``), and a few endpoints bare strings or empty bodies (``plain``, ``empty``).
* The 2.0 line answers RFC 9457 ``application/problem+json`` for every error (``ProblemFactory``,
  ``ProblemResponseFilter`` fills bodiless and plain-text error answers): ``type`` is one of the fixed
  ``ProblemTypes`` URIs, ``title`` the type's fixed title, ``detail`` the occurrence's text, ``instance``
  the request path; a 5xx never echoes its cause: its ``detail`` is a fixed sentence and it carries a
  ``traceId`` (kestra-io/kestra ``webserver/.../errors/ProblemTypes.java`` @14844e4f,
  ``ProblemFactory.java`` @a5a9d5d2, ``ProblemDetail.java`` @0a46f3b4, ``ProblemError.java`` @2a251f35,
  ``filter/ProblemResponseFilter.java`` @3235d1ac, ``KestraProblemMappings.java`` @0af2442f).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend.clock import new_kestra_id
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


@dataclass(frozen=True)
class KestraSimProblemType:
    """One entry of Kestra's closed ``ProblemTypes`` catalogue: a permanent slug, a fixed title, a status."""

    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        """The ``type`` member: ``ProblemType.BASE_URI`` + slug."""
        return PROBLEM_BASE_URI + self.slug


PROBLEM_BASE_URI = "https://kestra.io/docs/api-reference/problems/"
#: ``ProblemFactory.SERVER_ERROR_DETAIL``: the only ``detail`` a 5xx problem ever has.
SERVER_ERROR_DETAIL = "An unexpected error occurred. Quote the traceId when contacting support."

_CATALOGUE = (
    KestraSimProblemType("invalid-json", "Invalid JSON", 422),
    KestraSimProblemType("invalid-plugin-type", "Invalid plugin type", 422),
    KestraSimProblemType("invalid-format", "Invalid value format", 422),
    KestraSimProblemType("invalid-request-body", "Invalid request body", 422),
    KestraSimProblemType("invalid-argument", "Invalid argument", 422),
    KestraSimProblemType("bad-request", "Bad request", 400),
    KestraSimProblemType("invalid-query-parameter", "Invalid query parameter", 400),
    KestraSimProblemType("invalid-query-filters", "Invalid query filters", 400),
    KestraSimProblemType("validation-failed", "Validation failed", 422),
    KestraSimProblemType("invalid-entity", "Invalid entity", 422),
    KestraSimProblemType("bulk-validation-failed", "Bulk validation failed", 400),
    KestraSimProblemType("unauthenticated", "Authentication required", 401),
    KestraSimProblemType("forbidden", "Access denied", 403),
    KestraSimProblemType("not-found", "Resource not found", 404),
    KestraSimProblemType("conflict", "Conflict", 409),
    KestraSimProblemType("entity-already-exists", "Entity already exists", 409),
    KestraSimProblemType("resource-expired", "Resource has expired", 410),
    KestraSimProblemType("locked", "Resource is locked", 423),
    KestraSimProblemType("method-not-allowed", "Method not allowed", 405),
    KestraSimProblemType("not-acceptable", "Not acceptable", 406),
    KestraSimProblemType("payload-too-large", "Payload too large", 413),
    KestraSimProblemType("unsupported-media-type", "Unsupported media type", 415),
    KestraSimProblemType("too-many-requests", "Too many requests", 429),
    KestraSimProblemType("ai-request-failed", "AI request failed", 422),
    KestraSimProblemType("internal-error", "Internal server error", 500),
    KestraSimProblemType("migration-required", "Migration required", 503),
    KestraSimProblemType("service-unavailable", "Service unavailable", 503),
    KestraSimProblemType("timeout", "Operation timed out", 504),
)
PROBLEM_TYPES: dict[str, KestraSimProblemType] = {problem.slug: problem for problem in _CATALOGUE}

#: ``ProblemTypes.byStatus``: the type of an answer whose only known fact is its status.
_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    410: "resource-expired",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-entity",
    423: "locked",
    429: "too-many-requests",
    503: "service-unavailable",
    504: "timeout",
}

#: HTTP reason phrases, the 1.x ``JsonError`` prefix when no Kestra handler names one.
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_type_by_status(status: int) -> KestraSimProblemType:
    """``ProblemTypes.byStatus``: unknown 4xx are ``bad-request``, unknown 5xx ``internal-error``."""
    slug = _BY_STATUS.get(status, "bad-request" if status < 500 else "internal-error")
    return PROBLEM_TYPES[slug]


@dataclass
class KestraSimulatorFieldError:
    """One field-level error: ``_embedded.errors[]`` ``{message, path}`` (1.x), ``errors[]``
    ``{detail, path}`` (2.0 ``ProblemError``)."""

    path: str
    message: str


@dataclass
class KestraSimulatorHttpError(Exception):
    """An error answer; ``reason`` is the JsonError prefix (``Invalid entity``, ``Illegal argument``...),
    ``problem`` the 2.0 problem type slug (by status when None)."""

    status: int
    detail: str | None = None
    reason: str | None = None
    errors: list[KestraSimulatorFieldError] = field(default_factory=list)
    #: 1.x: answer ``detail`` as a bare string (e.g. labels on a running execution).
    plain: bool = False
    #: 1.x: answer with no body at all (e.g. a bodiless ``HttpResponse.notFound()``).
    empty: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    problem: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.reason or _REASONS.get(self.status, '')}: {self.detail}"

    def json_error_message(self) -> str:
        """The 1.x ``message``: ``<reason>[: <detail>]``."""
        reason = self.reason or _REASONS.get(self.status, "Error")
        return f"{reason}: {self.detail}" if self.detail else reason

    def problem_type(self) -> KestraSimProblemType:
        """The 2.0 problem type of this answer."""
        return PROBLEM_TYPES[self.problem] if self.problem else problem_type_by_status(self.status)

    def render(self, profile: KestraSimulatorProfile, path: str, query: str = "") -> tuple[bytes, str]:
        """Return the body and content type for ``profile``; ``path``/``query`` of the request."""
        if profile.problem_json:
            return json.dumps(self.problem_document(path)).encode(), "application/problem+json"
        if self.empty:
            return b"", "application/json"
        if self.plain:
            return (self.detail or "").encode(), "application/json"
        href = path + (f"?{query}" if query else "")
        body: dict[str, Any] = {
            "message": self.json_error_message(),
            "_links": {"self": {"href": href, "templated": False}},
        }
        if self.errors:
            body["_embedded"] = {"errors": [{"message": e.message, "path": e.path} for e in self.errors]}
        return json.dumps(body).encode(), "application/json"

    def problem_document(self, path: str) -> dict[str, Any]:
        """``ProblemFactory#build``: members in Kestra's order, empty ones left out (``NON_EMPTY``)."""
        kind = self.problem_type()
        problem: dict[str, Any] = {"type": kind.uri, "title": kind.title, "status": self.status}
        if self.status >= 500:
            problem.update(detail=SERVER_ERROR_DETAIL, instance=path, traceId=new_kestra_id())
            return problem
        problem.update(detail=self.detail or kind.title, instance=path)
        if self.errors:
            problem["errors"] = [{"detail": e.message, "path": e.path} for e in self.errors]
        return problem


def http_error(error: KestraSimError, profile: KestraSimulatorProfile) -> KestraSimulatorHttpError:
    """The answer Kestra's error handlers give to ``error`` on ``profile``'s line."""
    message = error.message
    if isinstance(error, KestraSimHttpStatus):
        return KestraSimulatorHttpError(error.status, message, plain=error.plain, empty=error.bodiless)
    if isinstance(error, KestraSimNotFound):
        return KestraSimulatorHttpError(404, message, reason="Not Found", problem="not-found")
    if isinstance(error, KestraSimConstraintViolation):
        return _constraint_violation(error.violations, message)
    if isinstance(error, KestraSimAlreadyExists):
        if profile.duplicate_flow_status == 409:
            return KestraSimulatorHttpError(409, message, problem="entity-already-exists")
        return _constraint_violation([KestraSimulatorFieldError(error.path, message or "")], None)
    if isinstance(error, KestraSimInputOutputValidation):
        return KestraSimulatorHttpError(422, message, reason="Invalid entity", problem="invalid-entity")
    if isinstance(error, KestraSimIllegalArgument):
        return KestraSimulatorHttpError(422, message, reason="Illegal argument", problem="invalid-argument")
    if isinstance(error, KestraSimIllegalState):
        if profile.illegal_state_status == 500:
            return KestraSimulatorHttpError(500, message, reason="Internal server error")
        return KestraSimulatorHttpError(409, message, reason="Illegal state")
    if isinstance(error, (KestraSimConflict, KestraSimActionFailed)):
        return KestraSimulatorHttpError(409, message, reason="Conflict", problem="conflict")
    if isinstance(error, KestraSimInvalidQueryFilters):
        return KestraSimulatorHttpError(
            400, message, reason="Invalid query filters", problem="invalid-query-filters"
        )
    if isinstance(error, KestraSimActionTimeout):
        return KestraSimulatorHttpError(504, message, reason="Gateway Timeout", problem="timeout")
    return KestraSimulatorHttpError(500, message, reason="Internal server error")


def _constraint_violation(violations: list[Any], message: str | None) -> KestraSimulatorHttpError:
    """A bean-validation 422: ``Invalid entity: <path>: <msg>, ...`` (2.0 ``validation-failed``)."""
    errors = [KestraSimulatorFieldError(v.path, v.message) for v in violations]
    detail = message or ", ".join(f"{v.path}: {v.message}" if v.path else v.message for v in errors)
    return KestraSimulatorHttpError(
        422, detail, reason="Invalid entity", errors=errors, problem="validation-failed"
    )


def bad_request(detail: str) -> KestraSimulatorHttpError:
    """400 ``Bad Request: detail`` (Micronaut's argument conversion and missing-parameter errors)."""
    return KestraSimulatorHttpError(400, detail, reason="Bad Request")


def bodiless(status: int) -> KestraSimulatorHttpError:
    """A route answering a bare ``HttpResponse.status(...)``: no body in 1.x; in 2.0
    ``ProblemResponseFilter`` gives it a problem whose detail is the type's title."""
    return KestraSimulatorHttpError(status, empty=True)
