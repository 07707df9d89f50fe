"""Kestra 2.x problem+json ``type`` values choose the error class (exceptions.kestra_api_error).

Slugs and base URI from kestra-io/kestra: webserver/src/main/java/io/kestra/webserver/errors/ProblemTypes.java
(@14844e4f), ProblemType.java (@67c8181a, ``BASE_URI``) and KestraProblemMappings.java (@0af2442f:
e.g. ``AlreadyExistsException`` -> ``entity-already-exists`` 409, ``IllegalArgumentException`` ->
``invalid-argument`` 422, ``ConstraintViolationException`` -> ``validation-failed`` 422).
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraAuthenticationError,
    KestraBadRequestError,
    KestraConflictError,
    KestraMethodNotAllowedError,
    KestraNotFoundError,
    KestraPermissionError,
    KestraServerError,
    KestraValidationError,
    kestra_api_error,
    problem_type_of,
    with_note,
)

BASE = "https://kestra.io/docs/api-reference/problems/"


def problem(slug: str, status: int, detail: str = "details") -> str:
    return json.dumps(
        {"type": BASE + slug, "title": slug, "status": status, "detail": detail, "instance": "/p"}
    )


@pytest.mark.parametrize(
    ("slug", "status", "cls"),
    [
        ("not-found", 404, KestraNotFoundError),
        ("conflict", 409, KestraConflictError),
        ("entity-already-exists", 409, KestraConflictError),
        ("unauthenticated", 401, KestraAuthenticationError),
        ("forbidden", 403, KestraPermissionError),
        ("invalid-argument", 422, KestraValidationError),
        ("invalid-entity", 422, KestraValidationError),
        ("validation-failed", 422, KestraValidationError),
        ("method-not-allowed", 405, KestraMethodNotAllowedError),
        ("invalid-query-filters", 400, KestraBadRequestError),
        ("bulk-validation-failed", 400, KestraBadRequestError),
        ("timeout", 504, KestraServerError),
    ],
)
def test_problem_types_choose_the_class(slug: str, status: int, cls: type[KestraApiError]) -> None:
    error = kestra_api_error(
        status=status, method="POST", path="/api/v1/main/flows", body=problem(slug, status)
    )
    assert type(error) is cls and error.problem_type == slug and error.status == status


def test_the_type_wins_over_an_unusual_status() -> None:
    # HttpStatusException keeps the status it was thrown with (ProblemFactory.statusOf); the type still says
    # what happened.
    error = kestra_api_error(status=400, method="POST", path="/p", body=problem("entity-already-exists", 400))
    assert isinstance(error, KestraConflictError)


def test_unknown_types_and_other_bodies_fall_back_to_the_status() -> None:
    other = json.dumps({"type": "https://example.com/problems/not-found", "status": 422, "title": "x"})
    assert type(kestra_api_error(status=422, method="GET", path="/p", body=other)) is KestraValidationError
    new = problem("some-future-type", 409)
    assert type(kestra_api_error(status=409, method="GET", path="/p", body=new)) is KestraConflictError
    assert problem_type_of('{"message": "Not Found"}') is None and problem_type_of("plain text") is None
    assert problem_type_of("[1]") is None


def test_with_note_keeps_the_problem_type() -> None:
    error = kestra_api_error(status=504, method="POST", path="/p", body=problem("timeout", 504))
    noted = with_note(error, "the execution is still PAUSED")
    assert isinstance(noted, KestraServerError) and noted.problem_type == "timeout"
    assert "still PAUSED" in str(noted)
