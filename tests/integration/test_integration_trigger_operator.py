"""KestraTriggerExecutionOperator in ``dag.test()``: sync and deferrable, per Kestra profile."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_flows import (
    FAILING_TASKS,
    FILE_ECHO_EXTRA,
    FILE_ECHO_TASKS,
    GREETING_INPUTS,
    GREETING_OUTPUTS,
    GREETING_TASKS,
    PAUSE_TASKS,
    SLOW_TASKS,
    WRITE_FILE_OUTPUTS,
    WRITE_FILE_TASKS,
    greeting_tasks,
)
from support.kestra_side import AIRFLOW_LABEL_KEYS, FLOW_NAMESPACE, labels_of, state_history

from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from support.dag_runner import DagFactory, DagRunner, DagTestRun
    from support.kestra_side import KestraTestSide

pytestmark = pytest.mark.integration

MODES = pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
FAST = {"retry_limit": 1, "retry_delay": 0.1}
"""hook_params that keep injected faults from being retried for long."""


def _trigger(task_id: str, flow_id: str, deferrable: bool, **kwargs: Any) -> KestraTriggerExecutionOperator:
    return KestraTriggerExecutionOperator(
        task_id=task_id,
        namespace=FLOW_NAMESPACE,
        flow_id=flow_id,
        deferrable=deferrable,
        **{"poll_interval": 0.5, **kwargs},
    )


def _run_trigger(
    make_dag: DagFactory, run_dag: DagRunner, task_id: str, flow_id: str, deferrable: bool, **kwargs: Any
) -> DagTestRun:
    """Run a DAG whose one task is ``_trigger(task_id, flow_id, deferrable, **kwargs)``."""
    with make_dag() as dag:
        _trigger(task_id, flow_id, deferrable, **kwargs)
    return run_dag(dag)


def _airflow_labels(run: DagTestRun, task_id: str) -> dict[str, str]:
    return {
        "airflow.dag_id": run.dag_id,
        "airflow.run_id": run.run_id,
        "airflow.task_id": task_id,
        "airflow.map_index": "-1",
    }


@MODES
def test_success_pushes_outputs_and_streams_kestra_logs(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    flow_id = kestra.deploy("greet", GREETING_TASKS, GREETING_INPUTS + GREETING_OUTPUTS)
    with make_dag() as dag:
        _trigger(
            "greet",
            flow_id,
            deferrable,
            inputs={"name": "{{ ti.task_id }}-{{ dag.dag_id | length }}"},
            labels={"team": "data"},
            include_task_outputs=True,
        )
    expected_name = f"greet-{len(dag.dag_id)}"

    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    assert run.xcom("greet") == {"greeting": f"greeting-{expected_name}"}
    assert run.xcom("greet", "execution_state") == "SUCCESS"
    assert run.xcom("greet", "task_outputs")["result"] == {"value": f"greeting-{expected_name}"}
    execution_id = run.xcom("greet", "execution_id")
    assert execution_id in str(run.xcom("greet", "execution_url"))
    execution = kestra.execution(execution_id)
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["inputs"]["name"] == expected_name, "templated inputs are rendered by Airflow"
    labels = labels_of(execution)
    assert labels["team"] == "data"
    assert {key: labels[key] for key in AIRFLOW_LABEL_KEYS} == _airflow_labels(run, "greet")
    # The Kestra log line (rendered by Kestra) reaches the Airflow task log once, tagged with its task id.
    assert run.log_records_with(f"Hello {expected_name} from Kestra") == 1, run.output[-3000:]
    line = next(ln for ln in run.output.splitlines() if f"Hello {expected_name} from Kestra" in ln)
    assert "hello" in line.replace(f"Hello {expected_name}", "")
    assert len(kestra.executions_of(flow_id)) == 1


@MODES
def test_failed_execution_fails_the_task_with_kestra_reasons(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    flow_id = kestra.deploy("fails", FAILING_TASKS)
    run = _run_trigger(make_dag, run_dag, "run_failing", flow_id, deferrable)

    assert run.state == "failed"
    assert run.task_states == {"run_failing": "failed"}
    assert run.xcom("run_failing", "execution_state") == "FAILED"
    executions = kestra.executions_of(flow_id)
    assert len(executions) == 1
    assert executions[0]["state"]["current"] == "FAILED"
    # The failure message names the state, the failed Kestra task and Kestra's error line.
    assert f"Kestra execution {executions[0]['id']}" in run.output
    assert "ended in FAILED" in run.output
    assert "Failed Kestra tasks: boom" in run.output
    assert "kestra-side failure: disk on fire" in run.output


@MODES
def test_timeout_fails_the_task_and_kills_the_execution(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    flow_id = kestra.deploy("slow", SLOW_TASKS)
    run = _run_trigger(make_dag, run_dag, "run_slow", flow_id, deferrable, timeout=2)

    assert run.state == "failed"
    assert run.task_states == {"run_slow": "failed"}
    executions = kestra.executions_of(flow_id)
    assert len(executions) == 1
    final = kestra.wait_for_state(executions[0]["id"], {"KILLED"}, timeout=15)
    assert final == "KILLED", f"the timed-out execution was left {final}"
    assert "asked Kestra to kill it" in run.output


@MODES
def test_execution_timeout_kills_the_execution(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    """Airflow's own ``execution_timeout`` (not the operator's ``timeout``) also stops the Kestra side."""
    if deferrable and not AIRFLOW_V_3_0_PLUS:
        pytest.skip(
            "Airflow 2.11's dag.test() leaves ti.start_date unset and never times triggers out, so a "
            "deferred task has no execution_timeout deadline there (a real 2.11 worker sets both)"
        )
    flow_id = kestra.deploy("slow", SLOW_TASKS)
    with make_dag() as dag:
        _trigger("run_slow", flow_id, deferrable, execution_timeout=timedelta(seconds=3))

    if AIRFLOW_V_3_0_PLUS:
        run = run_dag(dag)
        assert run.state == "failed"
        assert run.task_states == {"run_slow": "failed"}
    else:
        # Airflow 2.11's dag.test() catches Exception only: AirflowTaskTimeout (a BaseException) escapes
        # its loop once the task is marked failed and on_kill has run.
        from airflow.exceptions import AirflowTaskTimeout

        with pytest.raises(AirflowTaskTimeout):
            run_dag(dag)
    executions = kestra.executions_of(flow_id)
    assert len(executions) == 1
    final = kestra.wait_for_state(executions[0]["id"], {"KILLED"}, timeout=15)
    assert final == "KILLED", f"the execution outlived the Airflow task: {final}"


@MODES
def test_retry_reattaches_to_the_execution_of_the_failed_try(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    # The flow outlasts try 1, so try 2 finds the execution still running and must wait for it.
    flow_id = kestra.deploy("reattach", greeting_tasks(nap="PT3S"), GREETING_INPUTS + GREETING_OUTPUTS)
    # Try 1 creates the execution, then is refused every read of it (403, as after a revoked credential:
    # a lasting error, unlike a 5xx that the wait outlasts), so it fails after the execution exists and
    # leaves it running. The retry callback lifts the fault before try 2 starts.
    kestra.sim.faults.fail(403, method="GET", path=r"/executions/(?!search)[^/]+(/follow)?$")

    def lift_faults(context: Any) -> None:
        kestra.sim.faults.clear()

    run = _run_trigger(
        make_dag,
        run_dag,
        "run_once",
        flow_id,
        deferrable,
        inputs={"name": "retry"},
        retries=1,
        hook_params=FAST,
        on_retry_callback=lift_faults,
    )

    assert run.state == "success", run.output[-3000:]
    assert run.try_numbers["run_once"] == 2, "the first try must have failed after creating the execution"
    executions = kestra.executions_of(flow_id, labels=_airflow_labels(run, "run_once"))
    assert len(executions) == 1, f"a retry started a duplicate: {[e['id'] for e in executions]}"
    assert len(kestra.executions_of(flow_id)) == 1
    assert labels_of(executions[0])["airflow.try_number"] == "1", "the execution was created by try 1"
    assert run.xcom("run_once", "execution_id") == executions[0]["id"]
    assert run.xcom("run_once") == {"greeting": "greeting-retry"}


@MODES
def test_waits_through_a_pause_until_resumed(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    """A paused execution is not finished: the task keeps waiting until someone resumes it."""
    flow_id = kestra.deploy("approve", PAUSE_TASKS)
    resumed: list[str] = []
    stop = threading.Event()

    def approve_when_paused() -> None:
        # Stands in for a person (or another system) approving while the Airflow task is waiting.
        while not stop.wait(0.2):
            for execution in kestra.executions_of(flow_id):
                if execution["state"]["current"] == "PAUSED":
                    kestra.hook.resume_execution(execution["id"])
                    resumed.append(execution["id"])
                    return

    with make_dag() as dag:
        _trigger("run_paused", flow_id, deferrable)
    approver = threading.Thread(target=approve_when_paused, daemon=True)
    approver.start()
    try:
        run = run_dag(dag)
    finally:
        stop.set()
        approver.join(5)

    assert run.state == "success", run.output[-3000:]
    assert len(resumed) == 1
    execution = kestra.execution(resumed[0])
    assert execution["state"]["current"] == "SUCCESS"
    assert "PAUSED" in state_history(execution)
    assert run.xcom("run_paused", "execution_id") == resumed[0]
    assert "approved, carrying on" in run.output


@MODES
def test_restart_on_retry_restarts_the_failed_execution(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    """With ``restart_on_retry`` the retry restarts the failed execution in Kestra instead of a new one."""
    flow_id = kestra.deploy("always_fails", FAILING_TASKS)
    run = _run_trigger(
        make_dag, run_dag, "run_failing", flow_id, deferrable, retries=1, restart_on_retry=True
    )

    assert run.state == "failed"
    assert run.try_numbers["run_failing"] == 2
    executions = kestra.executions_of(flow_id)
    assert len(executions) == 1, f"the retry started a new execution: {[e['id'] for e in executions]}"
    execution = kestra.execution(executions[0]["id"])
    history = state_history(execution)
    assert "RESTARTED" in history
    assert history[-1] == "FAILED"
    assert labels_of(execution)["system.restarted"] == "true"


@MODES
def test_output_files_are_downloaded(
    kestra: KestraTestSide,
    make_dag: DagFactory,
    run_dag: DagRunner,
    deferrable: bool,
    tmp_path: Path,
) -> None:
    flow_id = kestra.deploy("report", WRITE_FILE_TASKS, GREETING_INPUTS + WRITE_FILE_OUTPUTS)
    run = _run_trigger(
        make_dag,
        run_dag,
        "report",
        flow_id,
        deferrable,
        inputs={"name": "files"},
        output_files_dir=str(tmp_path / "{{ ti.task_id }}"),
    )

    assert run.state == "success", run.output[-3000:]
    [local] = run.xcom("report", "output_files")
    assert Path(local).parent == tmp_path / "report"
    assert Path(local).read_text() == "report for files"
    assert str(run.xcom("report")["report_file"]).startswith("kestra:///")


def test_file_input_uploaded_from_a_local_path(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, tmp_path: Path
) -> None:
    """A ``pathlib.Path`` input is uploaded as a FILE input; the flow hands it back as an output file."""
    flow_id = kestra.deploy("file_echo", FILE_ECHO_TASKS, FILE_ECHO_EXTRA)
    local = tmp_path / "upload.csv"
    local.write_bytes(b"id,value\n1,caf\xc3\xa9\n")
    run = _run_trigger(
        make_dag,
        run_dag,
        "echo",
        flow_id,
        deferrable=False,
        inputs={"document": local},
        output_files_dir=str(tmp_path / "downloaded"),
    )

    assert run.state == "success", run.output[-3000:]
    execution = kestra.execution(run.xcom("echo", "execution_id"))
    assert str(execution["inputs"]["document"]).startswith("kestra:///")
    [downloaded] = run.xcom("echo", "output_files")
    assert Path(downloaded).read_bytes() == local.read_bytes()


# Issue 12 goal 3: the log flow of bench/bench_requests_per_execution.py (Log 3 lines, Sleep, Log 2 lines),
# its Sleep cut to 2 s and poll_interval to 0.2 s so a timer would have read the log about ten times.
PACED_LOG_TASKS = """  - id: hello
    type: io.kestra.plugin.core.log.Log
    message:
      - "starting the job"
      - "reading the input"
      - "input has 3 rows"
  - id: work
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT2S
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message:
      - "wrote the output"
      - "done"
"""


@MODES
def test_a_run_reads_the_log_after_task_run_changes_only_and_sends_few_requests(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    """No log read while the execution is silent (the 2 s Sleep): one read paced after the first task
    runs, one at the end (deferred: the trigger fires without it and execute_complete makes it, from the
    event's cursor); deferring reads nothing. Counted
    from the simulator's journal without ``/configs`` (its per-process cache is another branch's part) and
    2.x's ``/outputs`` read (the task's result): create, follow, 2 log reads and, deferred, execute_complete's
    status read; the sync wait reads no status (its stream reports the end)."""
    flow_id = kestra.deploy("paced", PACED_LOG_TASKS)
    since = kestra.sim.requests.total
    with make_dag() as dag:
        _trigger("paced", flow_id, deferrable, poll_interval=0.2)
    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    for line in ("hello] starting the job", "hello] reading the input", "hello] input has 3 rows"):
        assert run.log_records_with(f"[kestra:{line}") == 1, run.output[-3000:]
    for line in ("bye] wrote the output", "bye] done"):
        assert run.log_records_with(f"[kestra:{line}") == 1, run.output[-3000:]
    execution_id = run.xcom("paced", "execution_id")
    sent = [
        entry
        for entry in kestra.sim.requests.filter(since=since)
        if not entry.path.endswith("/configs") and "/outputs/" not in entry.path
    ]
    log_reads = [
        entry
        for entry in sent
        if (entry.path.endswith("/logs/search") and f"={execution_id}" in entry.query)
        or entry.path.endswith(f"/logs/{execution_id}")
    ]
    assert 1 <= len(log_reads) <= 2, [f"{e.method} {e.path}" for e in sent]
    assert len(sent) <= (5 if deferrable else 4), [f"{e.method} {e.path}" for e in sent]
