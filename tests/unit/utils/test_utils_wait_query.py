"""The sans-I/O wait protocols (utils/wait.py) and the execution query (utils/models.py), without HTTP."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_kestra.exceptions import (
    KestraConfigError,
    KestraExecutionError,
    KestraExecutionStateError,
    KestraInputError,
    KestraStreamError,
    KestraStreamIdle,
    KestraWaitTimeout,
)
from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.utils.state import KestraExecutionState
from airflow_provider_kestra.utils.wait import (
    STREAM_IDLE_SECONDS,
    KestraMatchWait,
    KestraWaitTracker,
    wait_deadline,
)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def execution(state: str) -> dict[str, object]:
    return {"id": "e1", "state": {"current": state}}


# ---------------------------------------------------------------------------------------------- deadlines
def test_wait_deadline_takes_the_earlier_limit() -> None:
    clock = Clock(100.0)
    assert wait_deadline(None, None, clock) is None
    assert wait_deadline(30, None, clock) == 130.0
    assert wait_deadline(None, 500.0, clock) == 500.0
    assert wait_deadline(30, 110.0, clock) == 110.0


# ------------------------------------------------------------------------------------------------ tracker
def test_tracker_reports_new_states_once_and_ends_at_terminal() -> None:
    seen: list[str] = []
    wait = KestraWaitTracker("e1", None, lambda e: seen.append(e["state"]["current"]))  # type: ignore[index]
    assert not wait.streamed(execution("RUNNING"))  # type: ignore[arg-type]
    assert not wait.polled(execution("RUNNING"))  # type: ignore[arg-type]
    assert wait.polled(execution("SUCCESS"))  # type: ignore[arg-type]
    assert seen == ["RUNNING", "SUCCESS"]


def test_tracker_hands_every_frame_to_on_frame_also_when_the_state_stays() -> None:
    """Task runs move while the execution stays RUNNING: on_frame sees every stream frame and poll (the
    log pacer needs them), on_update only the state changes."""
    states: list[str] = []
    frames: list[str] = []
    wait = KestraWaitTracker(
        "e1",
        None,
        lambda e: states.append(e["state"]["current"]),  # type: ignore[index]
        on_frame=lambda e: frames.append(e["state"]["current"]),  # type: ignore[index]
    )
    assert not wait.streamed(execution("RUNNING"))  # type: ignore[arg-type]
    assert not wait.streamed(execution("RUNNING"))  # type: ignore[arg-type]
    assert not wait.polled(execution("RUNNING"))  # type: ignore[arg-type]
    assert wait.polled(execution("SUCCESS"))  # type: ignore[arg-type]
    assert states == ["RUNNING", "SUCCESS"]
    assert frames == ["RUNNING", "RUNNING", "RUNNING", "SUCCESS"]


def test_tracker_times_out_with_the_last_state() -> None:
    clock = Clock()
    wait = KestraWaitTracker("e1", clock.now + 10, None, clock=clock)
    assert not wait.polled(execution("PAUSED"))  # type: ignore[arg-type]
    assert wait.poll_pause(5) == 5
    clock.now += 8
    assert wait.poll_pause(5) == 2  # never sleeps past the deadline
    assert wait.begin_stream() == 2
    clock.now += 2
    with pytest.raises(KestraWaitTimeout) as info:
        wait.check_deadline()
    assert (info.value.execution_id, info.value.state) == ("e1", "PAUSED")


def test_tracker_gives_up_on_the_stream_after_failures_without_updates() -> None:
    wait = KestraWaitTracker("e1", None, None)
    assert wait.begin_stream() == STREAM_IDLE_SECONDS
    for _ in range(KestraWaitTracker.MAX_STREAM_FAILURES - 1):
        wait.stream_failed(KestraStreamError("cut"))
    assert wait.use_stream
    wait.begin_stream()
    wait.streamed(execution("RUNNING"))  # type: ignore[arg-type]
    wait.stream_failed(KestraStreamError("cut after an update"))  # resets the count
    assert wait.stream_failures == 0
    for _ in range(KestraWaitTracker.MAX_STREAM_FAILURES):
        wait.begin_stream()
        wait.stream_failed(KestraStreamError("refused"))
    assert not wait.use_stream


def test_an_idle_stream_is_reopened_without_a_pause() -> None:
    wait = KestraWaitTracker("e1", None, None)
    wait.begin_stream()
    wait.stream_failed(KestraStreamIdle("idle"))
    assert wait.stream_failures == 0 and wait.poll_pause(5) == 0.0


# ----------------------------------------------------------------------------------------------- matching
def test_match_wait_pauses_until_the_deadline() -> None:
    clock = Clock()
    wait = KestraMatchWait(clock.now + 7, 5, clock)
    assert wait.next_pause() == 5
    clock.now += 5
    assert wait.next_pause() == 2
    clock.now += 2
    assert wait.next_pause() is None
    assert KestraMatchWait(None, 3).next_pause() == 3


# -------------------------------------------------------------------------------------------------- query
def test_query_params_and_json_round_trip() -> None:
    query = KestraExecutionQuery.of(
        namespace="n",
        states=[KestraExecutionState.SUCCESS, "failed"],
        labels={"k": "v", "n": 1},
        started_after=datetime(2026, 1, 1),
    )
    assert query.params(5) == [
        ("filters[namespace][EQUALS]", "n"),
        ("filters[state][IN]", "SUCCESS,FAILED"),
        ("filters[labels][EQUALS][k]", "v"),
        ("filters[labels][EQUALS][n]", "1"),
        ("filters[startDate][GREATER_THAN_OR_EQUAL_TO]", "2026-01-01T00:00:00+00:00"),
        ("sort", "state.startDate:desc"),
        ("page", "1"),
        ("size", "5"),
    ]
    assert KestraExecutionQuery.from_json(query.to_json()) == query
    aware = KestraExecutionQuery.of(flow_id="f", started_after=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert aware.started_after == "2026-01-01T00:00:00+00:00"
    assert KestraExecutionQuery(labels={"system.correlationId": "x"}).labels == {"system.correlationId": "x"}


def test_query_refuses_to_match_everything_and_bad_labels() -> None:
    with pytest.raises(KestraConfigError, match="without any filter"):
        KestraExecutionQuery()
    with pytest.raises(KestraConfigError, match="without any filter"):
        KestraExecutionQuery.of(namespace="", states=[], labels={})
    with pytest.raises(KestraInputError, match="invalid"):
        KestraExecutionQuery(labels={"Bad Key": "x"})


# --------------------------------------------------------------------------------------------- exceptions
def test_state_errors_share_one_base() -> None:
    for cls in (KestraWaitTimeout, KestraExecutionError):
        error = cls("m", execution_id="e1", state="FAILED")
        assert isinstance(error, KestraExecutionStateError)
        assert (error.execution_id, error.state) == ("e1", "FAILED")
    assert issubclass(KestraInputError, ValueError) and issubclass(KestraInputError, KestraConfigError)
