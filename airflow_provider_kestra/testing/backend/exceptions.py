"""What the backend raises: one class per Java exception Kestra's services throw, never an HTTP status.

Kestra's services throw Java exceptions (``IllegalStateException``, ``ConstraintViolationException``,
``NotFoundException``, ...) and its webserver maps them to statuses and bodies (``ErrorController`` in 1.x,
``KestraProblemMappings`` in the 2.0 line). The simulator keeps the same split: the backend raises these
classes and :mod:`airflow_provider_kestra.testing.http.errors` maps them per profile, so the backend knows
nothing about HTTP and a version difference in the mapping lives in the profile table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KestraSimViolation:
    """One bean-validation violation: a property path (``flow.id``) and its message."""

    path: str
    message: str


class KestraSimError(Exception):
    """Base of the backend's exceptions; ``message`` is the Java exception message (may be None)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or type(self).__name__)
        self.message = message


class KestraSimNotFound(KestraSimError):
    """``NoSuchElementException`` / Kestra ``NotFoundException`` / a controller returning ``null``."""


class KestraSimIllegalArgument(KestraSimError):
    """Java ``IllegalArgumentException``."""


class KestraSimIllegalState(KestraSimError):
    """Java ``IllegalStateException`` (1.x maps it to 409, the 2.0 line leaves it unmapped: 500)."""


class KestraSimConflict(KestraSimError):
    """Kestra ``ConflictException`` (409 ``Conflict`` in 1.x, problem type ``conflict`` in 2.0)."""


class KestraSimAlreadyExists(KestraSimError):
    """A duplicate entity: 1.x reports it as a constraint violation on ``path``, 2.0 as 409."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class KestraSimConstraintViolation(KestraSimError):
    """``ConstraintViolationException``: every violation, and the summary message Jakarta builds."""

    def __init__(self, violations: list[KestraSimViolation], message: str | None = None) -> None:
        summary = ", ".join(f"{v.path}: {v.message}" if v.path else v.message for v in violations)
        super().__init__(message or summary)
        self.violations = violations


class KestraSimInputOutputValidation(KestraSimError):
    """Kestra ``InputOutputValidationException`` (bad or missing flow inputs), one message per problem."""


class KestraSimInvalidQueryFilters(KestraSimError):
    """Kestra ``InvalidQueryFiltersException`` (400 ``Invalid query filters``)."""


class KestraSimActionFailed(KestraSimError):
    """2.0 line: an awaited execution command that the executor refused (409 ``Failed to execute action``)."""


class KestraSimActionTimeout(KestraSimError):
    """2.0 line: an awaited execution command that got no answer in time (504)."""


class KestraSimHttpStatus(KestraSimError):
    """Micronaut ``HttpStatusException(status, message)`` thrown by a Kestra service or controller.

    ``plain``: the controller answers the message itself as the body (``HttpResponse.badRequest("...")``);
    ``bodiless``: it answers a bare status (``HttpResponse.notFound()``), without a body.
    """

    def __init__(
        self, status: int, message: str | None = None, *, plain: bool = False, bodiless: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.plain = plain
        self.bodiless = bodiless


def constraint_violation(path: str, message: str) -> KestraSimConstraintViolation:
    """A single-violation ``ConstraintViolationException``."""
    return KestraSimConstraintViolation([KestraSimViolation(path, message)])
