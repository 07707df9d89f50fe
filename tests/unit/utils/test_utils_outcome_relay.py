"""The shared decision and relay: KestraOutcome (utils/state.py) and KestraLogRelay (utils/logs.py)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kestra.utils.logs import KestraLogRelay, KestraLogSelection
from airflow_provider_kestra.utils.state import TERMINAL_STATES, KestraOutcome, failed_task_ids

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator

# ----------------------------------------------------------------------------- KestraOutcome


def test_default_failure_states_are_the_other_terminal_states() -> None:
    outcome = KestraOutcome.of(["success", "Warning"], terminal_only=True)
    assert outcome.success == {"SUCCESS", "WARNING"}
    assert outcome.failure == TERMINAL_STATES - {"SUCCESS", "WARNING"}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("SUCCESS", "success"),
        ("success", "success"),
        ("FAILED", "failed"),
        ("KILLED", "failed"),
        ("KILLING", None),
        ("RUNNING", None),
        ("PAUSED", None),
        ("SOMETHING_NEW", None),
        ("", None),
    ],
)
def test_classify_keeps_waiting_on_unfinished_and_unknown_states(state: str, expected: Any) -> None:
    assert KestraOutcome.of("SUCCESS", terminal_only=True).classify(state) == expected


def test_the_sensor_may_succeed_on_a_non_terminal_state_and_narrow_its_failures() -> None:
    outcome = KestraOutcome.of(["PAUSED"], ["FAILED"], terminal_only=False)
    assert outcome.classify("PAUSED") == "success"
    assert outcome.classify("FAILED") == "failed"
    assert outcome.classify("KILLED") is None


@pytest.mark.parametrize(
    ("success", "failure", "terminal_only", "problem"),
    [
        ([], None, True, "none given"),
        (["RUNNING"], None, True, r"\['RUNNING'\] are not terminal"),
        (["DONE"], None, False, r"unknown success state\(s\) \['DONE'\]"),
        (["FAILED"], ["FAILED"], False, r"\['FAILED'\] overlap failure_states"),
    ],
)
def test_one_validation_with_one_message(
    success: Any, failure: Any, terminal_only: bool, problem: str
) -> None:
    with pytest.raises(ValueError, match=f"^success_states must be .*{problem}"):
        KestraOutcome.of(success, failure, terminal_only=terminal_only)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValueError) as err:
        KestraOutcome.of(["DONE", "RUNNING", "FAILED"], ["FAILED"], terminal_only=True)
    assert "unknown success state(s) ['DONE']" in str(err.value)
    assert "['RUNNING'] are not terminal" in str(err.value)
    assert "['FAILED'] overlap" in str(err.value)


def test_outcome_json_round_trip_uses_the_trigger_keywords() -> None:
    outcome = KestraOutcome.of(["WARNING", "SUCCESS"], terminal_only=True)
    data = json.loads(json.dumps(outcome.to_json()))
    assert data["success_states"] == ["SUCCESS", "WARNING"]
    assert KestraOutcome.from_json(data) == outcome


def test_failed_task_ids_lists_each_failed_task_once_in_run_order() -> None:
    execution: Any = {
        "taskRunList": [
            {"taskId": "b", "state": {"current": "FAILED"}},
            {"taskId": "a", "state": {"current": "SUCCESS"}},
            {"taskId": "c", "state": {"current": "KILLED"}},
            {"taskId": "b", "state": {"current": "FAILED"}},
        ]
    }
    assert failed_task_ids(execution) == ["b", "c"]


# ----------------------------------------------------------------------------- KestraLogRelay


def line(message: str, second: int, level: str = "INFO", task: str | None = "t") -> dict[str, Any]:
    return {
        "taskId": task,
        "level": level,
        "message": message,
        "timestamp": f"2026-11-22T10:00:{second:02d}Z",
    }


def reader(lines: list[dict[str, Any]], fail_after: int | None = None) -> Any:
    def read(execution_id: str, selection: KestraLogSelection) -> Iterator[Any]:
        assert execution_id == "ex1"
        for index, entry in enumerate(lines):
            if fail_after is not None and index == fail_after:
                raise ConnectionError("connection reset")
            if selection.accepts(entry):
                yield entry

    return read


@pytest.fixture
def relay_log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger="test.relay")
    return logging.getLogger("test.relay")


def test_each_line_is_relayed_once_with_its_task_and_level(
    relay_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    relay = KestraLogRelay(relay_log, "INFO")
    relay.relay("ex1", reader([line("one", 1), line("boom", 2, "ERROR", task=None)]))
    relay.relay("ex1", reader([line("one", 1), line("boom", 2, "ERROR", task=None), line("two", 3)]))
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [
        (logging.INFO, "[kestra:t] one"),
        (logging.ERROR, "[kestra:execution] boom"),
        (logging.INFO, "[kestra:t] two"),
    ]
    assert json.loads(json.dumps(relay.cursor)) == relay.cursor


def test_a_read_error_is_a_warning_and_the_cursor_covers_the_lines_printed(
    relay_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    relay = KestraLogRelay(relay_log, "INFO")
    relay.relay("ex1", reader([line("one", 1), line("two", 2)], fail_after=1))
    assert "Could not read the logs of Kestra execution ex1: connection reset" in caplog.text
    relay.relay("ex1", reader([line("one", 1), line("two", 2)]))
    assert caplog.text.count("[kestra:t] one") == 1
    assert caplog.text.count("[kestra:t] two") == 1


def test_an_unusable_cursor_reads_nothing(
    relay_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    relay = KestraLogRelay(relay_log, "INFO", "not a cursor")  # type: ignore[arg-type]
    relay.relay("ex1", reader([line("one", 1)]))
    assert "unusable log cursor" in caplog.text
    assert "[kestra:t] one" not in caplog.text


async def test_arelay_closes_the_reader_and_keeps_the_cursor_after_an_error(
    relay_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[bool] = []

    async def read(execution_id: str, selection: KestraLogSelection) -> AsyncGenerator[Any, None]:
        try:
            for entry in [line("careful", 1, "WARN"), line("chatter", 2)]:
                if selection.accepts(entry):
                    yield entry
            raise ConnectionError("stream cut")
        finally:
            closed.append(True)

    relay = KestraLogRelay(relay_log, "WARN")
    await relay.arelay("ex1", read)
    assert closed == [True]
    assert "stream cut" in caplog.text
    assert "[kestra:t] careful" in caplog.text
    assert "chatter" not in caplog.text  # below WARN
    assert relay.cursor is not None and relay.cursor["since"]
