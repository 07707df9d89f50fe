"""The log pacer (utils/log_pacer.py): when a wait reads an execution's log, decided without I/O.

The bench flow of issue 12 (bench/bench_requests_per_execution.py: Log 3 lines, Sleep 12 s, Log 2 lines)
must cost exactly two reads: one after the first task runs appear, one final (the caller's, at the end).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_kestra.utils.log_pacer import (
    KestraLogPacer,
    KestraLogReadResult,
    task_run_signature,
)

POLL = 5.0


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run(run_id: str, state: str = "RUNNING", attempts: int = 1) -> dict[str, Any]:
    return {"id": run_id, "taskId": run_id, "state": {"current": state}, "attempts": [{}] * attempts}


def frame(state: str = "RUNNING", *runs: dict[str, Any]) -> dict[str, Any]:
    return {"id": "e1", "state": {"current": state}, "taskRunList": list(runs)}


def pacer(clock: Clock, jitter: float = 0.0) -> KestraLogPacer:
    return KestraLogPacer(POLL, clock=clock, jitter=lambda: jitter)


def lines(*run_ids: str | None) -> KestraLogReadResult:
    return KestraLogReadResult(frozenset(run_ids))


def read(p: KestraLogPacer, result: KestraLogReadResult | None) -> None:
    assert p.due_in() == 0.0
    p.begin_read()
    p.end_read(result)


# ----------------------------------------------------------------------------------------- signature
def test_the_signature_sees_task_runs_states_attempts_and_the_execution_state() -> None:
    base = task_run_signature(frame("RUNNING", run("a")))
    assert task_run_signature(frame("RUNNING", run("a"))) == base
    assert task_run_signature({**frame("RUNNING", run("a")), "outputs": {"x": 1}}) == base
    assert task_run_signature(frame("RUNNING", run("a"), run("b"))) != base
    assert task_run_signature(frame("RUNNING", run("a", "SUCCESS"))) != base
    assert task_run_signature(frame("RUNNING", run("a", attempts=2))) != base
    assert task_run_signature(frame("PAUSED", run("a"))) != base


def test_the_signature_of_a_frame_without_task_runs() -> None:
    assert task_run_signature({"id": "e1", "state": {"current": "CREATED"}}) == ("CREATED", ())
    assert task_run_signature({"id": "e1"}) == (None, ())
    assert task_run_signature({"id": "e1", "taskRunList": ["junk", None]}) == (None, ())


# -------------------------------------------------------------------------------------------- schedule
def test_nothing_is_read_before_the_first_frame() -> None:
    assert pacer(Clock()).due_in() is None


def test_a_task_run_change_schedules_a_read_one_interval_later() -> None:
    clock = Clock()
    p = pacer(clock)
    assert p.frame(frame("RUNNING", run("a")))
    assert p.due_in() == POLL
    clock.now += POLL
    assert p.due_in() == 0.0


def test_the_first_read_gets_a_random_extra_delay_within_one_interval() -> None:
    clock = Clock()
    p = pacer(clock, jitter=0.5)
    p.frame(frame("RUNNING", run("a")))
    assert p.due_in() == POLL * 1.5
    clock.now += POLL * 1.5
    read(p, lines())
    p.frame(frame("RUNNING", run("a", "SUCCESS")))
    assert p.due_in() == POLL  # later reads: no extra delay


def test_frames_soon_after_the_first_never_pull_the_staggered_first_read_in() -> None:
    clock = Clock()
    p = pacer(clock, jitter=0.8)
    p.frame(frame("CREATED"))
    clock.now += 0.2
    assert not p.frame(frame("RUNNING", run("a")))
    assert p.next_read == 1000.0 + POLL * 1.8


def test_a_burst_of_frames_costs_one_read() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("CREATED"))
    for seconds, runs in enumerate([[run("a")], [run("a", "SUCCESS")], [run("a", "SUCCESS"), run("b")]]):
        clock.now += 0.1 * (seconds + 1)
        assert not p.frame(frame("RUNNING", *runs))  # the read already scheduled stays
    assert p.next_read == 1000.0 + POLL
    clock.now = 1000.0 + POLL
    read(p, lines("a"))  # "a" ended: no follow-up
    assert p.due_in() is None
    assert p.reads == 1


def test_the_same_frame_again_schedules_nothing() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a")))
    clock.now += POLL
    read(p, lines())
    for _ in range(100):
        clock.now += 1
        assert not p.frame(frame("RUNNING", run("a")))
    assert p.due_in() is None


def test_a_change_soon_after_a_read_waits_one_interval_after_that_read() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a")))
    clock.now += POLL
    p.begin_read()
    clock.now += 2.0  # a slow read
    p.end_read(lines())
    read_ended = clock.now
    clock.now += 0.5
    assert p.frame(frame("RUNNING", run("a", "SUCCESS")))
    assert p.next_read == max(clock.now + POLL, read_ended + POLL)


def test_a_frame_during_a_read_schedules_the_next_read() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a")))
    clock.now += POLL
    p.begin_read()
    clock.now += 1.0
    assert p.frame(frame("RUNNING", run("a", "SUCCESS"), run("b")))
    p.end_read(lines())
    assert p.next_read == clock.now + POLL


# ----------------------------------------------------------------------------------------- follow-ups
def test_lines_of_a_running_task_run_read_again_one_interval_later() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a")))
    for _ in range(5):  # a task that keeps logging is tailed every interval
        clock.now = p.next_read or 0.0
        read(p, lines("a"))
        assert p.due_in() == POLL
    clock.now += POLL
    read(p, lines())  # it stopped logging: no more reads
    assert p.due_in() is None


def test_lines_of_a_task_run_that_ended_need_no_follow_up() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a", "SUCCESS"), run("b")))
    clock.now += POLL
    read(p, lines("a"))
    assert p.due_in() is None


def test_lines_of_a_task_run_not_in_the_last_frame_need_no_follow_up() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a")))
    clock.now += POLL
    read(p, lines("unknown"))
    assert p.due_in() is None


@pytest.mark.parametrize(("execution_state", "follow_up"), [("RUNNING", True), ("SUCCESS", False)])
def test_lines_without_a_task_run_follow_the_execution_state(execution_state: str, follow_up: bool) -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame(execution_state))
    clock.now += POLL
    read(p, lines(None))
    assert (p.due_in() == POLL) is follow_up


@pytest.mark.parametrize("result", [None, KestraLogReadResult(failed=True)])
def test_a_failed_read_is_tried_again_one_interval_later(result: KestraLogReadResult | None) -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a", "SUCCESS")))
    clock.now += POLL
    read(p, result)
    assert p.due_in() == POLL
    clock.now += POLL
    read(p, lines())
    assert p.due_in() is None


def test_a_follow_up_never_postpones_an_earlier_read() -> None:
    clock = Clock()
    p = pacer(clock)
    p.frame(frame("RUNNING", run("a")))
    clock.now += POLL
    p.begin_read()
    p.next_read = clock.now + 1.0  # something asked for an earlier read meanwhile
    p.end_read(lines("a"))
    assert p.next_read == clock.now + 1.0


def test_a_zero_interval_reads_at_once() -> None:
    p = KestraLogPacer(0.0, clock=Clock(), jitter=lambda: 0.9)
    p.frame(frame("RUNNING", run("a")))
    assert p.due_in() == 0.0


# ------------------------------------------------------------------------------------------ bench flow
def test_the_12_second_bench_flow_costs_two_reads() -> None:
    """Log 3 lines, Sleep 12 s, Log 2 lines, frames as Kestra sends them; the pacer asks for one read
    (the first task's 3 lines, that task already ended) and the caller adds the final one."""
    clock = Clock(0.0)
    p = pacer(clock, jitter=0.99)
    timeline: list[tuple[float, dict[str, Any]]] = [
        (0.0, frame("CREATED")),
        (0.1, frame("RUNNING")),
        (0.2, frame("RUNNING", run("log1", "CREATED", 0))),
        (0.3, frame("RUNNING", run("log1"))),
        (0.4, frame("RUNNING", run("log1", "SUCCESS"))),
        (0.5, frame("RUNNING", run("log1", "SUCCESS"), run("sleep", "CREATED", 0))),
        (0.6, frame("RUNNING", run("log1", "SUCCESS"), run("sleep"))),
        (12.6, frame("RUNNING", run("log1", "SUCCESS"), run("sleep", "SUCCESS"))),
        (12.7, frame("RUNNING", run("log1", "SUCCESS"), run("sleep", "SUCCESS"), run("log2"))),
        (12.8, frame("RUNNING", run("log1", "SUCCESS"), run("sleep", "SUCCESS"), run("log2", "SUCCESS"))),
    ]
    reads = 0
    for at, execution in timeline:
        while p.next_read is not None and p.next_read <= at:
            clock.now = p.next_read
            read(p, lines("log1") if reads == 0 else lines())
            reads += 1
        clock.now = at
        p.frame(execution)
    # The execution ends (SUCCESS frame): the wait stops and the caller makes its final read.
    assert reads == 1
    assert p.reads == 1
