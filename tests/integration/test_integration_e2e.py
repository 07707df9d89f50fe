"""End to end with Airflow 3's real processes: scheduler, dag-processor, triggerer and api-server.

``dag.test()`` runs triggers inline; this test proves the Kestra trigger survives serialization into the
metadata DB, runs in the triggerer process, and resumes the task on a worker: a deferred
``KestraTriggerExecutionOperator`` and a deferred ``KestraExecutionSensor`` run side by side to success,
and a deferred operator waiting on a paused flow is approved by a parallel task.
"""

from __future__ import annotations

import textwrap
import time
from typing import TYPE_CHECKING

import pytest
from support.airflow_stack import AirflowStack
from support.kestra_flows import GREETING_INPUTS, GREETING_OUTPUTS, PAUSE_TASKS, greeting_tasks, sleep_tasks
from support.kestra_side import FLOW_NAMESPACE, KestraTestSide, state_history

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="the process harness drives Airflow 3's api-server"),
]

DAG_ID = "kestra_e2e_deferred"
RUN_ID = "e2e_run_1"
RUN_TIMEOUT_SECONDS = 240.0
# Both Kestra flows outlast the worker's hand-over to the triggerer (a few seconds), so each task really
# sits deferred in the triggerer before Kestra finishes.
RUN_FLOW_SLEEP = "PT12S"
WATCHED_FLOW_SLEEP = "PT15S"
PAUSE_FLOW_SLEEP = "PT8S"

DAG_FILE = """
from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_kestra.operators.kestra import (
    KestraResumeExecutionOperator,
    KestraTriggerExecutionOperator,
)
from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor

with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):
    start = KestraTriggerExecutionOperator(
        task_id="start", namespace={namespace!r}, flow_id={watched_flow!r}, wait_for_completion=False
    )
    run = KestraTriggerExecutionOperator(
        task_id="run",
        namespace={namespace!r},
        flow_id={run_flow!r},
        inputs={{"name": "e2e"}},
        deferrable=True,
        poll_interval=1,
    )
    watch = KestraExecutionSensor(
        task_id="watch",
        execution_id="{{{{ ti.xcom_pull(task_ids='start') }}}}",
        deferrable=True,
        poke_interval=1,
        timeout=180,
    )
    start >> watch

    # Approval from a parallel task: "held" waits (deferred) on a flow that pauses; "paused" notices the
    # pause and "approve" resumes it, while "held" is still deferred.
    held = KestraTriggerExecutionOperator(
        task_id="held", namespace={namespace!r}, flow_id={pause_flow!r}, deferrable=True, poll_interval=1
    )
    paused = KestraExecutionSensor(
        task_id="paused",
        namespace={namespace!r},
        flow_id={pause_flow!r},
        labels={{"airflow.dag_id": "{{{{ dag.dag_id }}}}", "airflow.run_id": "{{{{ run_id }}}}"}},
        success_states=["PAUSED"],
        poke_interval=1,
        timeout=180,
    )
    approve = KestraResumeExecutionOperator(
        task_id="approve", execution_id="{{{{ ti.xcom_pull(task_ids='paused') }}}}"
    )
    paused >> approve
"""


@pytest.fixture
def kestra_13(monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraTestSide]:
    """A Kestra 1.3 simulator of its own (the e2e run needs one profile, not both)."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as sim:
        monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
        side = KestraTestSide(sim, "e2e")
        yield side
        side.close()


def test_deferred_tasks_run_in_the_triggerer_and_a_parallel_task_approves(
    kestra_13: KestraTestSide, tmp_path: Path
) -> None:
    kestra = kestra_13
    run_flow = kestra.deploy("run", greeting_tasks(nap=RUN_FLOW_SLEEP), GREETING_INPUTS + GREETING_OUTPUTS)
    watched_flow = kestra.deploy("watched", sleep_tasks(WATCHED_FLOW_SLEEP))
    pause_flow = kestra.deploy("pause", sleep_tasks(PAUSE_FLOW_SLEEP) + PAUSE_TASKS)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(
        textwrap.dedent(
            DAG_FILE.format(
                dag_id=DAG_ID,
                namespace=FLOW_NAMESPACE,
                run_flow=run_flow,
                watched_flow=watched_flow,
                pause_flow=pause_flow,
            )
        )
    )
    home = tmp_path / "airflow_home"
    home.mkdir()

    with AirflowStack(
        home, dags, extra_env={"AIRFLOW_CONN_KESTRA_DEFAULT": kestra.sim.connection_uri()}
    ) as stack:
        stack.wait_for_dag(DAG_ID, timeout=120)
        stack.trigger(DAG_ID, RUN_ID)
        state = stack.wait_for_run(DAG_ID, RUN_ID, timeout=RUN_TIMEOUT_SECONDS)
        task_states = stack.task_states(DAG_ID, RUN_ID)
        run_log = stack.task_log(DAG_ID, RUN_ID, "run")
        deferred = ("run", "watch", "held")
        # The triggerer writes a trigger's log file asynchronously: give it a bounded moment to flush.
        flush_deadline = time.monotonic() + 30
        while time.monotonic() < flush_deadline and not all(
            "Trigger fired event" in "".join(p.read_text() for p in stack.trigger_logs(DAG_ID, RUN_ID, t))
            for t in deferred
        ):
            time.sleep(1)
        trigger_logs = {task: stack.trigger_logs(DAG_ID, RUN_ID, task) for task in deferred}
        run_result = stack.xcom(DAG_ID, RUN_ID, "run")
        watch_result = stack.xcom(DAG_ID, RUN_ID, "watch")
        started = stack.xcom(DAG_ID, RUN_ID, "start")
        held_id = stack.xcom(DAG_ID, RUN_ID, "held", "execution_id")
        approved_id = stack.xcom(DAG_ID, RUN_ID, "approve")
        diagnostics = stack.diagnostics()

    assert state == "success", f"run ended {state}, tasks {task_states}\n{run_log[-3000:]}\n{diagnostics}"
    assert set(task_states.values()) == {"success"}, task_states
    assert set(task_states) == {"start", "run", "watch", "held", "paused", "approve"}
    for task, logs in trigger_logs.items():
        assert logs, f"no triggerer log for {task}: its trigger never ran in the triggerer"
        assert "Trigger fired event" in "".join(p.read_text() for p in logs), task
    assert run_result == {"greeting": "greeting-e2e"}
    assert "Hello e2e from Kestra" in run_log, "Kestra's logs are missing from the Airflow task log"
    assert watch_result == started
    [run_execution] = kestra.executions_of(run_flow)
    [watched_execution] = kestra.executions_of(watched_flow)
    assert run_execution["state"]["current"] == "SUCCESS"
    assert watched_execution["id"] == started
    assert watched_execution["state"]["current"] == "SUCCESS"
    assert approved_id == held_id, "the parallel task resumed another execution"
    [pause_execution] = kestra.executions_of(pause_flow)
    assert pause_execution["id"] == held_id
    assert "PAUSED" in state_history(kestra.execution(held_id))
