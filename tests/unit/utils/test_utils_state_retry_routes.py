"""Pure helpers: state sets, retry policy, route table."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_kestra.utils.retry import (
    KestraFailureKind,
    KestraRetryMode,
    backoff_delay,
    failure_kind_for_status,
    may_retry,
    parse_retry_after,
)
from airflow_provider_kestra.utils.routes import ROUTES, KestraApiVersion, has_route, resolve_route
from airflow_provider_kestra.utils.state import (
    FAILED_STATES,
    SUCCESSFUL_TERMINAL_STATES,
    TERMINAL_STATES,
    KestraExecutionState,
    is_failed,
    is_paused,
    is_successful,
    is_terminal,
)


def test_state_sets_match_kestra() -> None:
    assert len(KestraExecutionState) == 17
    assert {
        "SUCCESS",
        "WARNING",
        "FAILED",
        "KILLED",
        "CANCELLED",
        "RETRIED",
        "SKIPPED",
        "RESUBMITTED",
    } == TERMINAL_STATES
    assert {"SUCCESS", "WARNING", "RETRIED", "SKIPPED", "RESUBMITTED"} == SUCCESSFUL_TERMINAL_STATES
    assert {"FAILED", "KILLED", "CANCELLED"} == FAILED_STATES


@pytest.mark.parametrize(
    "state", ["KILLING", "PAUSED", "QUEUED", "RESTARTED", "BREAKPOINT", "RUNNING", "NEW_THING", "", None]
)
def test_non_terminal_and_unknown_states(state: str | None) -> None:
    assert not is_terminal(state)
    assert not is_successful(state) and not is_failed(state)


def test_state_helpers() -> None:
    assert is_terminal("success") and is_terminal(KestraExecutionState.KILLED)
    assert is_successful("WARNING") and is_failed("CANCELLED")
    assert is_paused("PAUSED") and is_paused("BREAKPOINT") and not is_paused("RUNNING")


def test_retry_policy() -> None:
    assert failure_kind_for_status(429) is KestraFailureKind.REJECTED
    assert failure_kind_for_status(503) is KestraFailureKind.UNAVAILABLE
    for status in (400, 401, 403, 404, 409, 422, 500):
        assert failure_kind_for_status(status) is None
    assert all(may_retry(KestraRetryMode.SAFE, kind) for kind in KestraFailureKind)
    for mode in (KestraRetryMode.ONCE, KestraRetryMode.AMBIGUOUS):
        assert may_retry(mode, KestraFailureKind.NOT_SENT) and may_retry(mode, KestraFailureKind.REJECTED)
        assert not may_retry(mode, KestraFailureKind.LOST) and not may_retry(
            mode, KestraFailureKind.UNAVAILABLE
        )


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, rng=rng) for n in range(10)]
    assert 0.5 <= delays[0] <= 1.0 and 4.0 <= delays[3] <= 8.0
    assert max(delays) <= 60.0
    assert len({round(backoff_delay(2, 1.0), 6) for _ in range(20)}) > 1, "jitter"


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("999999") == 300.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.22.3", "0.22"), ("0.23.1", "1"), ("1.3.25", "1"), ("2.0.0-SNAPSHOT", "2"), ("v1.0", "1")],
)
def test_api_version_from_server_version(text: str, expected: str) -> None:
    assert KestraApiVersion.from_server_version(text).value == expected


def test_api_version_pin() -> None:
    assert KestraApiVersion.parse("auto") is None and KestraApiVersion.parse("") is None
    assert KestraApiVersion.parse("0.22") is KestraApiVersion.V0_22
    assert KestraApiVersion.parse("2") is KestraApiVersion.V2
    with pytest.raises(ValueError):
        KestraApiVersion.parse("latest")


def test_routes_per_version() -> None:
    v022, v1, v2 = KestraApiVersion.V0_22, KestraApiVersion.V1, KestraApiVersion.V2
    assert resolve_route("execution_kill", v022, "main", execution_id="e").path == "/api/v1/executions/e/kill"
    assert (
        resolve_route("execution_kill", v1, "main", execution_id="e").path == "/api/v1/main/executions/e/kill"
    )
    assert (
        resolve_route("execution_kill", v2, "t", execution_id="e").path
        == "/api/v1/t/executions/e/actions/kill"
    )
    assert resolve_route("configs", v2, "t").path == "/api/v1/configs"
    assert (
        resolve_route("flow_get", v1, "main", namespace="a/b", flow_id="x y").path
        == "/api/v1/main/flows/a%2Fb/x%20y"
    )
    assert has_route("outputs_list", v2) and not has_route("outputs_list", v1)
    with pytest.raises(ValueError, match="no route"):
        resolve_route("outputs_list", v1, "main", execution_id="e")
    assert (
        resolve_route("execution_create", v1, "main", namespace="n", flow_id="f").retry
        is KestraRetryMode.AMBIGUOUS
    )
    assert resolve_route("execution_resume", v2, "main", execution_id="e").retry is KestraRetryMode.ONCE
    # Reads, updates and deletes are safe to repeat; a webhook (GET/PUT too) starts an execution each time.
    assert all(
        spec.retry is (KestraRetryMode.ONCE if name.startswith("execution_webhook") else KestraRetryMode.SAFE)
        for name, r in ROUTES.items()
        for spec in r.values()
        if spec.method in ("GET", "PUT", "DELETE")
    )
