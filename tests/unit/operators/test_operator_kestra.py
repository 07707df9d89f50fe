"""Unit tests of the Kestra operators (hook double, plus requests-mock where the wire matters)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from support.airflow_doubles import FakeTaskStateStore, make_ti, pushed, use_hook
from support.kestra_payloads import API, BASE, PASSWORD, execution
from support.log_helpers import new_log_entries

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraConflictError,
    KestraConnectionError,
    KestraError,
    KestraExecutionError,
    KestraServerError,
    KestraWaitTimeout,
)
from airflow_provider_kestra.links.kestra import KestraExecutionLink
from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraKillExecutionOperator,
    KestraResumeExecutionOperator,
    KestraTriggerExecutionOperator,
)
from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger
from airflow_provider_kestra.utils.reattach import (
    FIRST_TRY_LABEL,
    RUN_KEY_LABEL,
    RUN_LINEAGE_LABEL,
    STATE_STORE_KEY,
    TRY_ID_LABEL,
    dag_run_keys,
)
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import TaskDeferred
else:
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
    from airflow.models.dag import DAG  # type: ignore[no-redef]

FLOW_WITH_EXPRESSION = """id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }}"
"""


def trigger_op(**kwargs: Any) -> KestraTriggerExecutionOperator:
    kwargs.setdefault("task_id", "run_flow")
    kwargs.setdefault("namespace", "company.team")
    kwargs.setdefault("flow_id", "hello")
    return KestraTriggerExecutionOperator(**kwargs)


# ----------------------------------------------------------------------------- trigger: start and wait


def test_first_try_starts_an_execution_with_airflow_labels_and_publishes_it_before_waiting(
    hook: mock.MagicMock,
) -> None:
    op = use_hook(trigger_op(inputs={"name": "Ada"}, labels={"team": "data"}), hook)
    ti = make_ti()
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")

    def wait(execution_id: str, **_: Any) -> dict[str, Any]:
        assert pushed(ti)["execution_id"] == "ex1", "the id must be in XCom before the wait starts"
        return execution("SUCCESS", execution_id="ex1", outputs={"greeting": "Hello Ada"})

    hook.wait_for_execution.side_effect = wait
    hook.get_outputs.return_value = {"outputs": {"greeting": "Hello Ada"}, "task_outputs": {}}

    result = op.execute({"ti": ti})

    assert result == {"greeting": "Hello Ada"}
    hook.search_executions.assert_not_called()  # a first try has nothing to reattach to
    args, kwargs = hook.create_execution.call_args
    assert args == ("company.team", "hello")
    assert kwargs["inputs"] == {"name": "Ada"}
    assert kwargs["idempotency_label_key"] == TRY_ID_LABEL
    labels = kwargs["labels"]
    assert labels["team"] == "data"
    assert labels["airflow.dag_id"] == "etl"
    assert labels["airflow.run_id"] == "manual__2026-11-22T10:00:00+00:00"
    assert labels["airflow.task_id"] == "run_flow"
    assert labels["airflow.map_index"] == "-1"
    assert labels["airflow.try_number"] == "1"
    assert labels[FIRST_TRY_LABEL] == "1"
    assert len(labels[TRY_ID_LABEL]) == 32
    xcoms = pushed(ti)
    assert xcoms["execution_url"].endswith("/executions/company.team/hello/ex1")
    assert xcoms["execution_state"] == "SUCCESS"
    if AIRFLOW_V_3_0_PLUS:
        assert xcoms[KestraExecutionLink().xcom_key] == xcoms["execution_url"]


def test_each_try_gets_a_fresh_idempotency_label(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex1")
    op = use_hook(trigger_op(), hook)
    op.execute({"ti": make_ti()})
    op.execute({"ti": make_ti()})
    first, second = (c.kwargs["labels"][TRY_ID_LABEL] for c in hook.create_execution.call_args_list)
    assert first != second


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ({"Team": "x"}, "invalid"),
        ({"team": ""}, "empty value"),
        ({"airflow.dag_id": "other"}, "reserved"),
        ({"system.app": "x"}, "reserved"),
    ],
)
def test_bad_labels_fail_before_anything_is_sent(hook: mock.MagicMock, labels: Any, problem: Any) -> None:
    op = use_hook(trigger_op(labels=labels), hook)
    with pytest.raises(ValueError, match=problem):
        op.execute({"ti": make_ti()})
    hook.create_execution.assert_not_called()


def test_templated_revision_must_be_an_integer(hook: mock.MagicMock) -> None:
    op = use_hook(trigger_op(revision="latest"), hook)
    with pytest.raises(ValueError, match="revision must be an integer"):
        op.execute({"ti": make_ti()})
    hook.create_execution.assert_not_called()


def test_not_waiting_returns_the_execution_id(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex9")
    op = use_hook(trigger_op(wait_for_completion=False), hook)
    assert op.execute({"ti": make_ti()}) == "ex9"
    hook.wait_for_execution.assert_not_called()


@pytest.mark.parametrize("state", ["FAILED", "KILLED", "CANCELLED", "WARNING", "RETRIED", "MYSTERY", ""])
def test_any_state_outside_success_states_fails_the_task(hook: mock.MagicMock, state: Any) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.return_value = execution(state, execution_id="ex1")
    op = use_hook(trigger_op(), hook)
    with pytest.raises(KestraExecutionError) as err:
        op.execute({"ti": make_ti()})
    assert err.value.execution_id == "ex1"
    hook.get_outputs.assert_not_called()


def test_warning_passes_when_opted_in(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.return_value = execution("WARNING", execution_id="ex1")
    op = use_hook(trigger_op(success_states=["SUCCESS", "warning"]), hook)
    assert op.execute({"ti": make_ti()}) == {}


def test_failure_message_names_state_failed_tasks_and_last_error_lines(hook: mock.MagicMock) -> None:
    failed = execution(
        "FAILED",
        execution_id="ex1",
        task_runs=[
            {"taskId": "extract", "state": {"current": "SUCCESS"}},
            {"taskId": "load", "state": {"current": "FAILED"}},
            {"taskId": "notify", "state": {"current": "KILLED"}},
        ],
    )
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.return_value = failed
    errors = [{"taskId": "load", "level": "ERROR", "message": f"boom {i}"} for i in range(8)]
    hook.get_logs.side_effect = lambda _id, min_level="INFO", cursor=None: (
        (errors, {}) if min_level == "ERROR" else ([], {})
    )
    op = use_hook(trigger_op(), hook)
    with pytest.raises(KestraExecutionError) as err:
        op.execute({"ti": make_ti()})
    message = str(err.value)
    assert "ended in FAILED" in message
    assert "Failed Kestra tasks: load, notify." in message
    assert "[load] boom 7" in message and "[load] boom 3" in message
    assert "boom 2" not in message  # only the last lines
    assert err.value.state == "FAILED"


def test_success_returns_outputs_and_pushes_task_outputs_and_files(
    hook: mock.MagicMock, tmp_path: Path
) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="ex1")
    hook.get_outputs.return_value = {"outputs": {"rows": 3}, "task_outputs": {"t1": {"value": 1}}}
    hook.download_output_files.side_effect = download_into_staging("data.csv")
    op = use_hook(trigger_op(include_task_outputs=True, output_files_dir=str(tmp_path)), hook)
    ti = make_ti()
    assert op.execute({"ti": ti}) == {"rows": 3}
    hook.get_outputs.assert_called_once_with(mock.ANY, include_task_outputs=True)
    staging = hook.download_output_files.call_args.args[1]
    assert staging.parent == tmp_path and not staging.exists(), "downloads go through a private folder"
    assert (tmp_path / "data.csv").read_text() == "data.csv"
    assert pushed(ti)["task_outputs"] == {"t1": {"value": 1}}
    assert pushed(ti)["output_files"] == [str(tmp_path / "data.csv")]


def download_into_staging(*names: str) -> Any:
    """A ``download_output_files`` double that writes each file (its name as content) where it is told."""

    def download(_execution: Any, directory: Path) -> list[Path]:
        paths = [Path(directory) / name for name in names]
        for path in paths:
            path.write_text(path.name)
        return paths

    return download


def test_output_files_never_go_through_a_planted_link(hook: mock.MagicMock, tmp_path: Path) -> None:
    """A link planted in output_files_dir under an output's name (or its old ``.part`` name) is replaced,
    never followed: nothing is written outside the folder (case 15)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    (target_dir / "data.csv").symlink_to(outside / "victim.csv")
    (target_dir / "data.csv.part").symlink_to(outside / "victim.part")
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex1")
    hook.download_output_files.side_effect = download_into_staging("data.csv")
    op = use_hook(trigger_op(output_files_dir=str(target_dir)), hook)
    op.execute({"ti": make_ti()})
    assert list(outside.iterdir()) == []
    assert not (target_dir / "data.csv").is_symlink()
    assert (target_dir / "data.csv").read_text() == "data.csv"
    assert [p.name for p in target_dir.iterdir() if p.name.startswith(".kestra-download-")] == []


def test_logs_are_streamed_tagged_with_the_kestra_task_and_never_twice(
    hook: mock.MagicMock, caplog: pytest.LogCaptureFixture, std_log: Any
) -> None:
    std_log(KestraTriggerExecutionOperator)
    lines = [
        {"taskId": "extract", "level": "INFO", "message": "reading 3 rows"},
        {"taskId": "load", "level": "ERROR", "message": "table locked"},
    ]
    selections: list[Any] = []

    def iter_logs(_id: str, selection: Any) -> Any:
        selections.append((selection.min_level, selection.cursor))
        return (line for line in lines if selection.accepts(line))

    def wait_for_execution(execution_id: str, *, on_frame: Any, **_: Any) -> dict[str, Any]:
        """A task run appears: the log-following thread reads once (paced), then the execution ends."""
        running = execution("RUNNING", execution_id="ex1")
        running["taskRunList"] = [{"id": "tr1", "taskId": "extract", "state": {"current": "RUNNING"}}]
        on_frame(running)
        give_up = time.monotonic() + 30
        while not selections and time.monotonic() < give_up:
            time.sleep(0.01)
        return execution("SUCCESS", execution_id="ex1")

    hook.iter_logs.side_effect = iter_logs
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.side_effect = wait_for_execution
    op = use_hook(trigger_op(log_level="debug", poll_interval=0.01), hook)
    with caplog.at_level(logging.INFO):
        op.execute({"ti": make_ti()})
    assert caplog.text.count("[kestra:extract] reading 3 rows") == 1
    assert caplog.text.count("[kestra:load] table locked") == 1
    assert [r.levelno for r in caplog.records if "table locked" in r.getMessage()] == [logging.ERROR]
    assert len(selections) >= 2 and selections[0][1] == {"since": None, "seen": []}
    assert all(len(cursor["seen"]) == 2 for _, cursor in selections[1:])
    assert {level for level, _ in selections} == {"DEBUG"}


def test_stream_logs_off_reads_no_logs_on_success(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="ex1")
    use_hook(trigger_op(stream_logs=False), hook).execute({"ti": make_ti()})
    hook.get_logs.assert_not_called()


def test_sync_timeout_kills_the_execution_and_fails(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.side_effect = KestraWaitTimeout("late", execution_id="ex1", state="RUNNING")
    op = use_hook(trigger_op(timeout=timedelta(minutes=2)), hook)
    before = time.time()
    with pytest.raises(KestraExecutionError, match=r"did not finish within 120s \(still RUNNING\)"):
        op.execute({"ti": make_ti()})
    assert before + 120 <= hook.wait_for_execution.call_args.kwargs["deadline"] <= time.time() + 120
    hook.kill_execution.assert_called_once_with("ex1")


@pytest.mark.parametrize(
    "fault",
    [
        KestraConnectionError("Kestra unreachable"),
        KestraError("GET /executions/ex1 answered 200 text/html, not JSON"),
        KestraServerError(status=503, method="GET", path="/x", kestra_message="down"),
    ],
    ids=["unreachable", "html-200", "503"],
)
def test_a_fault_while_waiting_never_kills_and_the_wait_goes_on(hook: mock.MagicMock, fault: Any) -> None:
    """Case 0, sync: on the first (and last: retries=0) try, a fault mid-wait is waited out, not a kill."""
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.side_effect = [fault, fault, execution("SUCCESS", execution_id="ex1")]
    op = use_hook(trigger_op(poll_interval=0.01), hook)
    assert op.execute({"ti": make_ti(try_number=1, max_tries=0)}) == {}
    assert hook.wait_for_execution.call_count == 3
    hook.kill_execution.assert_not_called()


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_lasting_error_while_waiting_leaves_the_execution_running_and_says_where(
    hook: mock.MagicMock, caplog: pytest.LogCaptureFixture, std_log: Any, status: int
) -> None:
    """A revoked credential (or the execution gone) ends the try, never the execution: no kill even on the
    last try; the log names the execution and its URL for the next try and for people."""
    std_log(KestraTriggerExecutionOperator)
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.side_effect = api_error(status)
    op = use_hook(trigger_op(), hook)
    with caplog.at_level(logging.INFO), pytest.raises(KestraApiError):
        op.execute({"ti": make_ti(try_number=1, max_tries=0)})
    hook.kill_execution.assert_not_called()
    assert "ex1" in caplog.text and "left running, not killed" in caplog.text
    assert f"{BASE}/ui/main/executions/company.team/hello/ex1" in caplog.text


def api_error(status: int) -> KestraApiError:
    from airflow_provider_kestra.exceptions import kestra_api_error

    return kestra_api_error(status=status, method="GET", path="/api/v1/main/executions/ex1", body="no")


def test_on_kill_kills_the_running_execution_and_does_not_hang(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    op = use_hook(trigger_op(), hook)

    def killed_while_waiting(*_: Any, **__: Any) -> dict[str, Any]:
        op.on_kill()  # what Airflow does on execution_timeout / mark failed
        raise RuntimeError("task killed")

    hook.wait_for_execution.side_effect = killed_while_waiting
    with pytest.raises(RuntimeError):
        op.execute({"ti": make_ti()})
    hook.kill_execution.assert_any_call("ex1")


def test_on_kill_returns_while_a_hanging_kill_is_still_pending(
    hook: mock.MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import airflow_provider_kestra.operators.kestra as module

    monkeypatch.setattr(module, "KILL_TIMEOUT_SECONDS", 0.01)
    called, release = threading.Event(), threading.Event()

    def hanging_kill(_id: str) -> None:
        called.set()
        release.wait(30)

    hook.kill_execution.side_effect = hanging_kill
    op = use_hook(trigger_op(), hook)
    op._execution_id = "ex1"
    op.on_kill()  # returns although Kestra has not answered: release is only set below
    assert called.wait(30)
    hook.kill_execution.assert_called_once_with("ex1")
    release.set()


def test_on_kill_without_execution_does_nothing(hook: mock.MagicMock) -> None:
    use_hook(trigger_op(), hook).on_kill()
    hook.kill_execution.assert_not_called()


# ----------------------------------------------------------------------------- trigger: retries


def retry_ti() -> mock.MagicMock:
    return make_ti(try_number=2, max_tries=1)


def test_retry_reattaches_to_the_running_execution_of_the_earlier_try(hook: mock.MagicMock) -> None:
    hook.search_executions.return_value = [execution("RUNNING", execution_id="ex1")]
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="ex1")
    op = use_hook(trigger_op(retries=1), hook)
    ti = retry_ti()
    op.execute({"ti": ti})
    hook.create_execution.assert_not_called()
    search = hook.search_executions.call_args.kwargs
    assert search["namespace"] == "company.team" and search["flow_id"] == "hello"
    lineage, run_key = dag_run_keys({"ti": ti})
    assert search["labels"] == {
        "airflow.dag_id": "etl",
        "airflow.run_id": "manual__2026-11-22T10:00:00+00:00",
        "airflow.task_id": "run_flow",
        "airflow.map_index": "-1",
        RUN_LINEAGE_LABEL: lineage,
        RUN_KEY_LABEL: run_key,
        FIRST_TRY_LABEL: "1",
    }
    assert pushed(ti)["execution_id"] == "ex1"
    assert pushed(ti)["execution_url"] == f"{BASE}/ui/main/executions/company.team/hello/ex1"


def dag_run(**fields: Any) -> Any:
    from types import SimpleNamespace

    defaults = {"run_after": datetime(2026, 11, 22, 10, tzinfo=timezone.utc), "start_date": None}
    return SimpleNamespace(**{**defaults, **fields})


@pytest.mark.parametrize(
    "other",
    [
        {"run_after": datetime(2026, 11, 23, 10, tzinfo=timezone.utc)},  # the run id came back later
        {"start_date": datetime(2026, 11, 22, 11, tzinfo=timezone.utc)},  # a second Airflow, same run id
        {"id": 42},  # Airflow 2.11: another row of the dag_run table
    ],
    ids=["run-recreated", "other-airflow", "other-db-row"],
)
def test_reattach_keys_are_unique_to_the_dag_run(hook: mock.MagicMock, other: dict[str, Any]) -> None:
    """Case 10: an execution labelled by another DAG run with the same run id is never adopted, even when a
    Kestra search hands it over, and a state-store entry of another run is ignored."""
    mine = {"ti": retry_ti(), "dag_run": dag_run()}
    theirs = {"ti": retry_ti(), "dag_run": dag_run(**other)}
    assert dag_run_keys(mine)[1] != dag_run_keys(theirs)[1]
    old = execution("SUCCESS", execution_id="old", labels={RUN_KEY_LABEL: dag_run_keys(theirs)[1]})
    hook.search_executions.return_value = [old]
    hook.create_execution.return_value = execution("SUCCESS", execution_id="new")
    store = FakeTaskStateStore(
        {STATE_STORE_KEY: {"execution_id": "old", FIRST_TRY_LABEL: 1, RUN_KEY_LABEL: dag_run_keys(theirs)[1]}}
    )
    op = use_hook(trigger_op(retries=1), hook)
    op.execute({**mine, "task_state_store": store})
    hook.get_execution.assert_not_called()
    hook.get_outputs.assert_called_once()
    assert hook.get_outputs.call_args.args[0]["id"] == "new"
    assert pushed(mine["ti"])["execution_id"] == "new"


def test_a_retry_that_reattached_pushes_the_link_of_that_execution(hook: mock.MagicMock) -> None:
    """Case 20: execution_id / execution_url are pushed by every try that knows the execution."""
    hook.search_executions.return_value = [execution("RUNNING", execution_id="ex1")]
    hook.get_execution.return_value = execution("RUNNING", execution_id="ex1")
    op = use_hook(trigger_op(retries=1, deferrable=True), hook)
    ti = retry_ti()
    with pytest.raises(TaskDeferred):
        op.execute({"ti": ti})
    assert pushed(ti)["execution_id"] == "ex1"
    assert pushed(ti)["execution_url"].endswith("/executions/company.team/hello/ex1")


def test_a_failure_before_any_execution_leaves_an_empty_link_not_an_xcom_error(hook: mock.MagicMock) -> None:
    """Case 20: Airflow renders the link when the task ends; an empty execution_url spares the task log an
    "XCom not found key='execution_url'" ERROR after a failure before any execution existed."""
    hook.create_execution.side_effect = api_error(404)
    ti = make_ti()
    with pytest.raises(KestraApiError):
        use_hook(trigger_op(), hook).execute({"ti": ti})
    assert pushed(ti) == {"execution_url": ""}


def test_retry_after_success_returns_the_outputs_without_running_again(
    hook: mock.MagicMock, caplog: pytest.LogCaptureFixture, std_log: Any
) -> None:
    """Also case 22: the finished execution's Kestra log lines are relayed into this try's log."""
    std_log(KestraTriggerExecutionOperator)
    hook.search_executions.return_value = [execution("SUCCESS", execution_id="ex1")]
    hook.get_outputs.return_value = {"outputs": {"n": 1}, "task_outputs": {}}
    line = {"taskId": "load", "level": "INFO", "message": "written after the worker died"}
    hook.iter_logs.side_effect = lambda _id, selection: (e for e in [line] if selection.accepts(e))
    op = use_hook(trigger_op(retries=1), hook)
    with caplog.at_level(logging.INFO):
        assert op.execute({"ti": retry_ti()}) == {"n": 1}
    hook.create_execution.assert_not_called()
    hook.wait_for_execution.assert_not_called()
    assert caplog.text.count("[kestra:load] written after the worker died") == 1


def test_retry_after_failure_starts_a_new_execution_by_default(hook: mock.MagicMock) -> None:
    hook.search_executions.return_value = [execution("FAILED", execution_id="ex1")]
    hook.create_execution.return_value = execution("CREATED", execution_id="ex2")
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="ex2")
    op = use_hook(trigger_op(retries=1), hook)
    ti = retry_ti()
    op.execute({"ti": ti})
    hook.restart_execution.assert_not_called()
    assert pushed(ti)["execution_id"] == "ex2"
    assert hook.create_execution.call_args.kwargs["labels"]["airflow.try_number"] == "2"


def test_restart_on_retry_restarts_the_failed_execution(hook: mock.MagicMock) -> None:
    hook.search_executions.return_value = [execution("FAILED", execution_id="ex1")]
    hook.restart_execution.return_value = execution("RESTARTED", execution_id="ex1")
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="ex1")
    op = use_hook(trigger_op(retries=1, restart_on_retry=True), hook)
    op.execute({"ti": retry_ti()})
    hook.restart_execution.assert_called_once_with("ex1")
    hook.create_execution.assert_not_called()


@pytest.mark.parametrize("state", ["KILLED", "KILLING"])
def test_killed_executions_are_replaced_even_with_restart_on_retry(hook: mock.MagicMock, state: Any) -> None:
    hook.search_executions.return_value = [execution(state, execution_id="ex1")]
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex2")
    op = use_hook(trigger_op(retries=1, restart_on_retry=True), hook)
    op.execute({"ti": retry_ti()})
    hook.restart_execution.assert_not_called()
    hook.create_execution.assert_called_once()


def test_refused_restart_falls_back_to_a_new_execution(hook: mock.MagicMock) -> None:
    hook.search_executions.return_value = [execution("FAILED", execution_id="ex1")]
    hook.restart_execution.side_effect = KestraConflictError(
        status=409, method="POST", path="/x", kestra_message="cannot restart"
    )
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex2")
    op = use_hook(trigger_op(retries=1, restart_on_retry=True), hook)
    op.execute({"ti": retry_ti()})
    hook.create_execution.assert_called_once()


def test_clearing_a_task_starts_a_new_execution(hook: mock.MagicMock) -> None:
    # Try 1 succeeded, then the task was cleared: Airflow sets max_tries = 1 + retries, try_number = 2.
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex2")
    op = use_hook(trigger_op(retries=1), hook)
    op.execute({"ti": make_ti(try_number=2, max_tries=2)})
    hook.kill_execution.assert_not_called()
    assert hook.create_execution.call_args.kwargs["labels"][FIRST_TRY_LABEL] == "2"


def test_clearing_a_task_kills_what_the_cleared_tries_left_running(hook: mock.MagicMock) -> None:
    """Case 12: a deferred task cleared on Airflow 2.11 (no trigger kill hook there): the first try after
    the clear kills the cleared try's still-running execution, then starts its own. Never two running."""
    ti = make_ti(try_number=2, max_tries=2)
    lineage, _ = dag_run_keys({"ti": ti})
    hook.search_executions.return_value = [
        execution("RUNNING", execution_id="cleared", labels={FIRST_TRY_LABEL: "1"}),
        execution("SUCCESS", execution_id="done"),
    ]
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex2")
    op = use_hook(trigger_op(retries=1), hook)
    op.execute({"ti": ti})
    hook.kill_execution.assert_called_once_with("cleared")
    search = hook.search_executions.call_args.kwargs["labels"]
    assert search[RUN_LINEAGE_LABEL] == lineage and RUN_KEY_LABEL not in search
    assert FIRST_TRY_LABEL not in search
    hook.create_execution.assert_called_once()


def test_task_state_store_remembers_the_execution_and_is_used_on_retry(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.wait_for_execution.side_effect = api_error(401)  # the credential was revoked mid-wait
    op = use_hook(trigger_op(retries=1), hook)
    store = FakeTaskStateStore()
    with pytest.raises(KestraApiError):
        op.execute({"ti": make_ti(max_tries=1), "task_state_store": store})
    assert store.values[STATE_STORE_KEY] == {
        "execution_id": "ex1",
        FIRST_TRY_LABEL: 1,
        RUN_KEY_LABEL: dag_run_keys({"ti": make_ti()})[1],
    }

    hook.reset_mock()
    hook.wait_for_execution.side_effect = None
    hook.get_execution.return_value = execution("RUNNING", execution_id="ex1")
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="ex1")
    op.execute({"ti": retry_ti(), "task_state_store": store})
    hook.get_execution.assert_any_call("ex1")
    hook.search_executions.assert_not_called()
    hook.create_execution.assert_not_called()


def test_state_store_entry_of_an_earlier_run_is_ignored(hook: mock.MagicMock) -> None:
    store = FakeTaskStateStore({STATE_STORE_KEY: {"execution_id": "old", FIRST_TRY_LABEL: 1}})
    hook.search_executions.return_value = []  # the clear check (case 12) finds nothing left running
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex3")
    op = use_hook(trigger_op(retries=1), hook)
    op.execute({"ti": make_ti(try_number=4, max_tries=4), "task_state_store": store})  # cleared: first try 4
    hook.get_execution.assert_not_called()
    assert store.values[STATE_STORE_KEY]["execution_id"] == "ex3"


# ----------------------------------------------------------------------------- trigger: deferrable


def test_deferrable_defers_with_a_wall_clock_deadline_and_no_airflow_timeout(hook: mock.MagicMock) -> None:
    """Deferring sends no request: no log read, no "look once more" (the trigger's first frame does)."""
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    op = use_hook(
        trigger_op(deferrable=True, timeout=600, poll_interval=7, hook_params={"retry_limit": 2}), hook
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": make_ti()})
    assert deferred.value.timeout is None
    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, KestraExecutionTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["execution_id"] == "ex1"
    assert kwargs["kestra_conn_id"] == "kestra_default"
    assert kwargs["hook_params"] == {"retry_limit": 2}
    assert kwargs["poll_interval"] == 7.0
    assert kwargs["cancel_on_kill"] is True
    assert kwargs["log_cursor"] is None
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    hook.wait_for_execution.assert_not_called()
    hook.get_execution.assert_not_called()
    hook.iter_logs.assert_not_called()


def test_deferrable_deadline_respects_execution_timeout(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.get_execution.return_value = execution("RUNNING", execution_id="ex1")
    op = use_hook(trigger_op(deferrable=True, execution_timeout=timedelta(minutes=10)), hook)
    ti = make_ti()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": ti})
    deadline = deferred.value.trigger.serialize()[1]["deadline"]
    end = ti.start_date.timestamp() + 600
    assert end - 60 <= deadline <= end


def test_deferrable_returns_outputs_without_deferring_when_already_done(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex1")
    hook.get_outputs.return_value = {"outputs": {"rows": 3}, "task_outputs": {}}
    op = use_hook(trigger_op(deferrable=True), hook)
    assert op.execute({"ti": make_ti()}) == {"rows": 3}


def test_deferrable_finishes_without_deferring_when_already_terminal(hook: mock.MagicMock) -> None:
    hook.create_execution.return_value = execution("FAILED", execution_id="ex1")
    op = use_hook(trigger_op(deferrable=True), hook)
    with pytest.raises(KestraExecutionError, match="ended in FAILED"):
        op.execute({"ti": make_ti()})


def test_deferrable_defers_an_execution_that_ends_meanwhile_without_reading_it(hook: mock.MagicMock) -> None:
    """No "look once more" before deferring: an execution that ended since it was created is reported by
    the trigger's first frame, which costs the same request the look would have."""
    hook.create_execution.return_value = execution("CREATED", execution_id="ex1")
    hook.get_execution.return_value = execution("SUCCESS", execution_id="ex1")
    with pytest.raises(TaskDeferred):
        use_hook(trigger_op(deferrable=True), hook).execute({"ti": make_ti()})
    hook.get_execution.assert_not_called()


def event(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "execution_id": "ex1",
        "state": None,
        "message": "m",
        "log_cursor": None,
        **extra,
    }


def test_execute_complete_success_returns_outputs_and_prints_remaining_logs(
    hook: mock.MagicMock, caplog: pytest.LogCaptureFixture, std_log: Any
) -> None:
    std_log(KestraTriggerExecutionOperator)
    hook.get_execution.return_value = execution("SUCCESS", execution_id="ex1")
    hook.get_outputs.return_value = {"outputs": {"ok": True}, "task_outputs": {}}
    late = {"taskId": "t", "level": "INFO", "message": "late line"}
    earlier = {"taskId": "t", "level": "INFO", "message": "shown by the trigger"}
    _, trigger_cursor = new_log_entries([earlier], None)
    hook.iter_logs.side_effect = lambda _id, selection: (e for e in [earlier, late] if selection.accepts(e))
    op = use_hook(trigger_op(deferrable=True), hook)
    with caplog.at_level(logging.INFO):
        done = event("success", state="SUCCESS", log_cursor=trigger_cursor)
        assert op.execute_complete({"ti": make_ti()}, done) == {"ok": True}
    assert "shown by the trigger" not in caplog.text
    assert "[kestra:t] late line" in caplog.text


@pytest.mark.parametrize(
    "done",
    [
        event("success", state="SUCCESS"),
        event("failed", state="FAILED"),
        event("timeout", state="RUNNING"),
        event("error"),
        event("success", state="SUCCESS", logs_complete=True),  # an unreleased key: ignored
    ],
)
def test_execute_complete_always_reads_the_rest_of_the_log_from_the_event_cursor(
    hook: mock.MagicMock, done: dict[str, Any]
) -> None:
    """Issue 12: the trigger fires at once, without a final log read, so the worker reads the rest."""
    state = "FAILED" if done["status"] == "failed" else "SUCCESS"
    hook.get_execution.return_value = execution(state, execution_id="ex1")
    hook.get_outputs.return_value = {"outputs": {}, "task_outputs": {}}
    hook.get_logs.return_value = ([], None)
    hook.iter_logs.side_effect = lambda _id, selection: iter(())
    op = use_hook(trigger_op(deferrable=True, timeout=60), hook)
    fails = done["status"] in ("failed", "timeout")
    with pytest.raises(KestraExecutionError) if fails else contextlib.nullcontext():
        op.execute_complete({"ti": make_ti()}, done)
    if done["status"] == "error":  # the execution had ended: read again after that state was seen
        assert hook.iter_logs.call_count >= 1
    else:
        assert hook.iter_logs.call_count == 1


def test_execute_complete_double_checks_the_state_on_success(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("SOMETHING_NEW", execution_id="ex1")
    op = use_hook(trigger_op(deferrable=True), hook)
    with pytest.raises(KestraExecutionError):
        op.execute_complete({"ti": make_ti()}, event("success"))


def test_execute_complete_failed_fails_with_details(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("FAILED", execution_id="ex1")
    op = use_hook(trigger_op(deferrable=True), hook)
    with pytest.raises(KestraExecutionError, match="ended in FAILED"):
        op.execute_complete({"ti": make_ti()}, event("failed", state="FAILED"))


def test_execute_complete_timeout_kills_and_fails(hook: mock.MagicMock) -> None:
    """The trigger already killed at its deadline (case 8); the kill is asked again here for triggers of an
    older release, and changes nothing in Kestra if the execution already stopped."""
    op = use_hook(trigger_op(deferrable=True, timeout=60), hook)
    timed_out = event("timeout", state="RUNNING", message="still RUNNING; asked Kestra to kill it")
    with pytest.raises(KestraExecutionError, match="still RUNNING; asked Kestra to kill it \\(timeout"):
        op.execute_complete({"ti": make_ti()}, timed_out)
    hook.kill_execution.assert_called_once_with("ex1")


def test_execute_complete_error_on_the_last_try_watches_again_and_never_kills(hook: mock.MagicMock) -> None:
    """Case 0, deferred: the probe's bug. An ``error`` event (one malformed SSE frame, an HTML 200) on the
    first and last try (retries=0) used to kill the healthy execution; now the task defers again."""
    hook.get_execution.return_value = execution("RUNNING", execution_id="ex1")
    op = use_hook(trigger_op(deferrable=True, timeout=600), hook)
    ti = make_ti(try_number=1, max_tries=0)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute_complete({"ti": ti}, event("error"))
    hook.kill_execution.assert_not_called()
    assert deferred.value.trigger.serialize()[1]["execution_id"] == "ex1"
    assert pushed(ti)["kestra_redeferrals"] == 1


def test_execute_complete_error_after_the_end_finishes_with_the_outcome(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("SUCCESS", execution_id="ex1")
    hook.get_outputs.return_value = {"outputs": {"ok": 1}, "task_outputs": {}}
    op = use_hook(trigger_op(deferrable=True), hook)
    assert op.execute_complete({"ti": make_ti()}, event("error")) == {"ok": 1}
    hook.kill_execution.assert_not_called()


@pytest.mark.parametrize("why", ["lasting-error", "too-many-redeferrals", "deadline-passed"])
def test_execute_complete_error_that_cannot_be_waited_out_leaves_the_execution_running(
    hook: mock.MagicMock, caplog: pytest.LogCaptureFixture, std_log: Any, why: str
) -> None:
    std_log(KestraTriggerExecutionOperator)
    hook.get_execution.return_value = execution("RUNNING", execution_id="ex1")
    if why == "lasting-error":
        hook.get_execution.side_effect = api_error(401)
    op = use_hook(trigger_op(deferrable=True, timeout=600), hook)
    ti = make_ti(try_number=1, max_tries=0)
    if why == "deadline-passed":
        op.execution_timeout = timedelta(seconds=1)  # started 2026-11-22: long past
    ti.xcom_pull.return_value = 10 if why == "too-many-redeferrals" else None
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(KestraError, match="Lost track of Kestra execution ex1"),
    ):
        op.execute_complete({"ti": ti}, event("error"))
    hook.kill_execution.assert_not_called()
    assert "left running, not killed" in caplog.text and "executions/company.team/hello/ex1" in caplog.text


@pytest.mark.parametrize(
    "bad", [None, {}, {"status": "cancelled", "execution_id": "ex1"}, {"status": "success"}]
)
def test_execute_complete_fails_closed_on_unknown_events(hook: mock.MagicMock, bad: Any) -> None:
    op = use_hook(trigger_op(deferrable=True), hook)
    with pytest.raises(KestraError, match="unexpected event"):
        op.execute_complete({"ti": make_ti()}, bad)
    hook.get_outputs.assert_not_called()


# ----------------------------------------------------------------------------- trigger: construction


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"success_states": ["RUNNING"]}, "success_states"),
        ({"success_states": []}, "success_states"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"timeout": -1}, "timeout"),
        ({"log_level": "LOUD"}, "log_level"),
    ],
)
def test_bad_arguments_are_refused_at_parse_time(kwargs: Any, problem: Any) -> None:
    with pytest.raises(ValueError, match=problem):
        trigger_op(**kwargs)


def test_templated_fields_render_and_keep_file_inputs(hook: mock.MagicMock, tmp_path: Path) -> None:
    op = trigger_op(
        namespace="{{ params.ns }}",
        inputs={"day": "{{ ds }}", "file": tmp_path / "in.csv", "n": 3},
        labels={"run": "{{ run_id }}"},
        output_files_dir="{{ params.out }}",
        params={"ns": "company.team", "out": "/tmp/out"},
    )
    context = {"ds": "2026-11-22", "run_id": "r1", "params": {"ns": "company.team", "out": "/tmp/out"}}
    op.render_template_fields(context)  # type: ignore[arg-type]
    assert op.namespace == "company.team"
    assert op.inputs == {"day": "2026-11-22", "file": tmp_path / "in.csv", "n": 3}
    assert op.labels == {"run": "r1"}
    assert op.output_files_dir == "/tmp/out"


def test_dag_parse_does_not_import_http_or_yaml_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import airflow_provider_kestra.operators.kestra, airflow_provider_kestra.sensors.kestra\n"
        "import airflow_provider_kestra.links.kestra, airflow_provider_kestra.triggers.kestra\n"
        "bad = [m for m in ('requests', 'httpx', 'yaml', 'airflow_provider_kestra.hooks.kestra') "
        "if m in sys.modules and m not in before]\n"
        "print('HEAVY=' + ','.join(bad))\n"
    )
    prelude = "import sys, airflow.configuration\nbefore = set(sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout + "\n"


# ----------------------------------------------------------------------------- deploy


def test_deploy_never_renders_flow_sources(hook: mock.MagicMock) -> None:
    op = use_hook(KestraDeployFlowOperator(task_id="deploy", source=FLOW_WITH_EXPRESSION), hook)
    jinja_context: Any = {"inputs": {"name": "WRONG"}}
    op.render_template_fields(jinja_context)
    hook.deploy_flows.return_value = [
        {"namespace": "company.team", "flow_id": "hello", "revision": 1, "action": "created"}
    ]
    result = op.execute({"ti": make_ti()})
    assert hook.deploy_flows.call_args.args[0] == [FLOW_WITH_EXPRESSION]
    assert result == [{"namespace": "company.team", "flow_id": "hello", "revision": 1, "action": "created"}]


def test_deploy_sends_kestra_expressions_untouched_over_the_wire(
    kestra_conn: str, requests_mock: Any, tmp_path: Path
) -> None:
    (tmp_path / "hello.yml").write_text(FLOW_WITH_EXPRESSION)
    requests_mock.post(f"{API}/flows/validate", json=[{"index": 0, "flow": "hello", "constraints": None}])
    requests_mock.get(f"{API}/flows/company.team", json=[])
    created = requests_mock.post(
        f"{API}/flows/bulk", json=[{"id": "hello", "namespace": "company.team", "revision": 1}]
    )
    op = KestraDeployFlowOperator(task_id="deploy", path="{{ params.dir }}", params={"dir": str(tmp_path)})
    jinja_context: Any = {"params": {"dir": str(tmp_path)}, "inputs": {"name": "WRONG"}}
    op.render_template_fields(jinja_context)
    result = op.execute({"ti": make_ti()})
    assert created.called_once
    assert "Hello {{ inputs.name }}" in created.last_request.text
    assert created.last_request.headers["Content-Type"].startswith("application/x-yaml")
    assert result == [{"namespace": "company.team", "flow_id": "hello", "revision": 1, "action": "created"}]


def test_deploy_reads_a_folder_recursively_with_relative_file_names(
    hook: mock.MagicMock, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yaml").write_text("id: b\nnamespace: n\n")
    (tmp_path / "sub" / "a.yml").write_text("id: a\nnamespace: n\n")
    (tmp_path / "notes.txt").write_text("ignored")
    hook.deploy_flows.return_value = []
    op = use_hook(
        KestraDeployFlowOperator(
            task_id="deploy", path=tmp_path, namespace="n", delete_missing=True, dry_run=True
        ),
        hook,
    )
    op.execute({"ti": make_ti()})
    args, kwargs = hook.deploy_flows.call_args
    assert args[0] == ["id: b\nnamespace: n\n", "id: a\nnamespace: n\n"]
    assert kwargs == {
        "namespace": "n",
        "delete_missing": True,
        "dry_run": True,
        "filenames": ["b.yaml", "sub/a.yml"],
    }


def test_deploy_finds_a_relative_path_next_to_the_dag_file(hook: mock.MagicMock, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yml").write_text("id: a\nnamespace: n\n")
    hook.deploy_flows.return_value = []
    with DAG("deploy_dag", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        op = use_hook(KestraDeployFlowOperator(task_id="d", path="flows"), hook)
    dag.fileloc = str(tmp_path / "my_dag.py")
    op.execute({"ti": make_ti()})
    assert hook.deploy_flows.call_args.args[0] == ["id: a\nnamespace: n\n"]


def test_deploy_logs_each_flow_including_deletions(
    hook: mock.MagicMock, caplog: pytest.LogCaptureFixture, std_log: Any
) -> None:
    std_log(KestraDeployFlowOperator)
    hook.deploy_flows.return_value = [
        {"namespace": "n", "flow_id": "a", "revision": 2, "action": "updated"},
        {"namespace": "n", "flow_id": "old", "revision": None, "action": "deleted"},
    ]
    op = use_hook(KestraDeployFlowOperator(task_id="d", source="id: a\nnamespace: n\n", namespace="n"), hook)
    with caplog.at_level(logging.INFO):
        op.execute({"ti": make_ti()})
    assert "Flow n.a: updated (revision 2)" in caplog.text
    assert "Flow n.old: deleted" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({}, "exactly one of"),
        ({"source": "x", "path": "y"}, "exactly one of"),
        ({"source": "x", "delete_missing": True}, "namespace"),
    ],
)
def test_deploy_argument_errors(kwargs: Any, problem: Any) -> None:
    with pytest.raises(ValueError, match=problem):
        KestraDeployFlowOperator(task_id="d", **kwargs)


@pytest.mark.parametrize("name", ["missing", "empty"])
def test_deploy_path_errors_name_the_path(hook: mock.MagicMock, tmp_path: Path, name: Any) -> None:
    target = tmp_path / name
    if name == "empty":
        target.mkdir()
    op = use_hook(KestraDeployFlowOperator(task_id="d", path=target), hook)
    with pytest.raises(FileNotFoundError, match=str(target)):
        op.execute({"ti": make_ti()})
    hook.deploy_flows.assert_not_called()


def test_deploy_operator_keeps_airflow_dry_run_method() -> None:
    op = KestraDeployFlowOperator(task_id="d", source="id: a\nnamespace: n\n", dry_run=True)
    assert callable(op.dry_run)
    assert op.deploy_dry_run is True


# ----------------------------------------------------------------------------- kill / resume


def test_kill_waits_for_termination_and_returns_the_state(hook: mock.MagicMock) -> None:
    hook.wait_for_execution.return_value = execution("KILLED", execution_id="ex1")
    op = use_hook(KestraKillExecutionOperator(task_id="k", execution_id="ex1", timeout=30), hook)
    assert op.execute({"ti": make_ti()}) == "KILLED"
    hook.kill_execution.assert_called_once_with("ex1")
    assert hook.wait_for_execution.call_args.kwargs["timeout"] == 30.0


def test_kill_without_waiting(hook: mock.MagicMock) -> None:
    op = use_hook(
        KestraKillExecutionOperator(task_id="k", execution_id="ex1", wait_for_termination=False), hook
    )
    assert op.execute({"ti": make_ti()}) is None
    hook.wait_for_execution.assert_not_called()


def test_resume_passes_inputs_over_the_wire(kestra_conn: str, requests_mock: Any) -> None:
    resume = requests_mock.post(f"{API}/executions/ex1/resume", status_code=204)
    op = KestraResumeExecutionOperator(
        task_id="approve", execution_id="ex1", inputs={"approved": True, "by": "ops"}
    )
    assert op.execute({"ti": make_ti()}) == "ex1"
    body = resume.last_request.body
    text = body.decode() if isinstance(body, bytes) else str(body)
    assert 'name="approved"' in text and "true" in text
    assert 'name="by"' in text and "ops" in text


def test_resume_of_a_not_paused_execution_fails_with_kestras_message(
    kestra_conn: str, requests_mock: Any
) -> None:
    requests_mock.post(
        f"{API}/executions/ex1/resume",
        status_code=409,
        json={"message": "Illegal state: Execution 'ex1' is not paused, can't resume it"},
    )
    # The hook reads the execution on a 409 (a lost answer to an earlier resume would look the same):
    # never PAUSED, so the refusal stands.
    requests_mock.get(f"{API}/executions/ex1", json=execution("RUNNING", execution_id="ex1"))
    op = KestraResumeExecutionOperator(task_id="approve", execution_id="ex1")
    with pytest.raises(KestraConflictError, match="is not paused"):
        op.execute({"ti": make_ti()})


def test_trigger_operator_talks_http_end_to_end(kestra_conn: str, requests_mock: Any, tmp_path: Path) -> None:
    """The operator and the real hook together: create (labels as query params), poll, outputs."""
    create = requests_mock.post(
        f"{API}/executions/company.team/hello", json={**execution("CREATED", execution_id="ex1"), "url": "u"}
    )
    requests_mock.get(f"{API}/executions/ex1/follow", status_code=404, json={"message": "Not Found"})
    requests_mock.get(
        f"{API}/executions/ex1", json=execution("SUCCESS", execution_id="ex1", outputs={"x": 1})
    )
    requests_mock.get(f"{API}/logs/search", json={"results": [], "total": 0})
    op = trigger_op(inputs={"name": "Ada", "n": 2}, labels={"team": "data"}, poll_interval=0.01)
    ti = make_ti()
    assert op.execute({"ti": ti}) == {"x": 1}
    query = create.last_request.qs
    labels = dict(value.split(":", 1) for value in query["labels"])
    assert labels["team"] == "data"
    assert labels["airflow.dag_id"] == "etl"
    assert labels["airflow.run_id"] == "manual__2026-11-22t10:00:00+00:00"  # requests-mock lower-cases qs
    assert PASSWORD not in json.dumps(pushed(ti))


def test_links_module_exposes_the_execution_link() -> None:
    assert KestraExecutionLink.name == "Kestra execution"
    assert isinstance(KestraTriggerExecutionOperator.operator_extra_links[0], KestraExecutionLink)


def test_path_inputs_reach_the_hook_as_paths(hook: mock.MagicMock, tmp_path: Path) -> None:
    upload = tmp_path / "in.csv"
    upload.write_text("a,b\n")
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex1")
    use_hook(trigger_op(inputs={"data": upload}), hook).execute({"ti": make_ti()})
    assert isinstance(hook.create_execution.call_args.kwargs["inputs"]["data"], Path)


def test_file_inputs_are_templated_paths_merged_into_inputs(hook: mock.MagicMock, tmp_path: Path) -> None:
    (tmp_path / "2026-11-22.csv").write_text("a,b\n")
    hook.create_execution.return_value = execution("SUCCESS", execution_id="ex1")
    op = use_hook(trigger_op(inputs={"n": 1}, file_inputs={"data": str(tmp_path / "{{ ds }}.csv")}), hook)
    jinja_context: Any = {"ds": "2026-11-22"}
    op.render_template_fields(jinja_context)
    op.execute({"ti": make_ti()})
    assert hook.create_execution.call_args.kwargs["inputs"] == {"n": 1, "data": tmp_path / "2026-11-22.csv"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"inputs": {"data": "x"}, "file_inputs": {"data": "/etc/hostname"}}, ValueError),
        ({"file_inputs": {"data": "/no/such/file.csv"}}, FileNotFoundError),
    ],
)
def test_bad_file_inputs_fail_before_anything_is_sent(hook: mock.MagicMock, kwargs: Any, error: Any) -> None:
    op = use_hook(trigger_op(**kwargs), hook)
    with pytest.raises(error, match="data"):
        op.execute({"ti": make_ti()})
    hook.create_execution.assert_not_called()
