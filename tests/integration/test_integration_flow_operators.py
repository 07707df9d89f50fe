"""Deploy, kill and resume operators in ``dag.test()``, chained the way DAGs use them, per Kestra profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from support.kestra_flows import GREETING_INPUTS, GREETING_OUTPUTS, GREETING_TASKS, PAUSE_TASKS, SLOW_TASKS
from support.kestra_side import FLOW_NAMESPACE, flow_source, state_history

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraKillExecutionOperator,
    KestraResumeExecutionOperator,
    KestraTriggerExecutionOperator,
)
from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor

if TYPE_CHECKING:
    from pathlib import Path

    from support.dag_runner import DagFactory, DagRunner
    from support.kestra_side import KestraTestSide

pytestmark = pytest.mark.integration

MODES = pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])


def _flow_source(flow_id: str) -> str:
    return flow_source(flow_id, GREETING_TASKS, GREETING_INPUTS + GREETING_OUTPUTS)


def test_deploy_is_idempotent_and_leaves_kestra_expressions_alone(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner
) -> None:
    flow_id = kestra.flow_id("deployed")
    source = _flow_source(flow_id)
    assert "{{ inputs.name }}" in source
    with make_dag() as dag:
        first = KestraDeployFlowOperator(task_id="deploy", source=source)
        again = KestraDeployFlowOperator(task_id="deploy_again", source=source)
        run_it = KestraTriggerExecutionOperator(
            task_id="run_it",
            namespace=FLOW_NAMESPACE,
            flow_id=flow_id,
            inputs={"name": "airflow"},
            poll_interval=0.5,
        )
        first >> again >> run_it

    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    [created] = run.xcom("deploy")
    [unchanged] = run.xcom("deploy_again")
    assert created == {"namespace": FLOW_NAMESPACE, "flow_id": flow_id, "revision": 1, "action": "created"}
    assert unchanged == {**created, "action": "unchanged"}
    stored = kestra.hook.get_flow(FLOW_NAMESPACE, flow_id)
    assert stored["revision"] == 1
    assert "Hello {{ inputs.name }} from Kestra" in str(stored["source"]), "Airflow rendered the flow source"
    # Kestra, not Airflow, rendered the expression at run time.
    assert run.xcom("run_it") == {"greeting": "greeting-airflow"}
    assert "Hello airflow from Kestra" in run.output


def test_deploy_a_folder_then_update_one_flow(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, tmp_path: Path
) -> None:
    first_id, second_id = kestra.flow_id("folder_a"), kestra.flow_id("folder_b")
    (tmp_path / "nested").mkdir()
    (tmp_path / "a.yml").write_text(_flow_source(first_id))
    (tmp_path / "nested" / "b.yaml").write_text(_flow_source(second_id))
    with make_dag("_1") as dag:
        KestraDeployFlowOperator(task_id="deploy", path=str(tmp_path), namespace=FLOW_NAMESPACE)
    first_run = run_dag(dag)
    (tmp_path / "a.yml").write_text(_flow_source(first_id).replace("Hello", "Bonjour"))
    with make_dag("_2") as dag:
        KestraDeployFlowOperator(task_id="deploy", path=str(tmp_path), namespace=FLOW_NAMESPACE)
    second_run = run_dag(dag)

    assert first_run.state == second_run.state == "success", second_run.output[-3000:]
    first_actions = {r["flow_id"]: (r["action"], r["revision"]) for r in first_run.xcom("deploy")}
    second_actions = {r["flow_id"]: (r["action"], r["revision"]) for r in second_run.xcom("deploy")}
    assert first_actions == {first_id: ("created", 1), second_id: ("created", 1)}
    assert second_actions == {first_id: ("updated", 2), second_id: ("unchanged", 1)}


def test_kill_operator_kills_a_running_execution(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner
) -> None:
    flow_id = kestra.deploy("slow", SLOW_TASKS)
    with make_dag() as dag:
        start = KestraTriggerExecutionOperator(
            task_id="start", namespace=FLOW_NAMESPACE, flow_id=flow_id, wait_for_completion=False
        )
        kill = KestraKillExecutionOperator(
            task_id="kill", execution_id="{{ ti.xcom_pull(task_ids='start') }}", poll_interval=0.5, timeout=30
        )
        start >> kill

    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    execution_id = run.xcom("start")
    assert run.xcom("start", "execution_id") == execution_id
    assert run.xcom("kill") == "KILLED"
    assert kestra.execution(execution_id)["state"]["current"] == "KILLED"


@MODES
def test_paused_execution_resumed_by_a_downstream_task(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    """Start, wait until Kestra pauses for approval, approve from Airflow, wait for the end."""
    flow_id = kestra.deploy("approval", PAUSE_TASKS)
    execution_id = "{{ ti.xcom_pull(task_ids='start') }}"
    with make_dag() as dag:
        start = KestraTriggerExecutionOperator(
            task_id="start", namespace=FLOW_NAMESPACE, flow_id=flow_id, wait_for_completion=False
        )
        paused = KestraExecutionSensor(
            task_id="paused",
            execution_id=execution_id,
            success_states=["PAUSED"],
            deferrable=deferrable,
            poke_interval=0.5,
            timeout=60,
        )
        approve = KestraResumeExecutionOperator(task_id="approve", execution_id=execution_id)
        finished = KestraExecutionSensor(
            task_id="finished",
            execution_id=execution_id,
            deferrable=deferrable,
            poke_interval=0.5,
            timeout=60,
        )
        start >> paused >> approve >> finished

    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    started = run.xcom("start")
    assert run.xcom("approve") == started
    assert run.xcom("finished") == started
    execution = kestra.execution(started)
    assert execution["state"]["current"] == "SUCCESS"
    assert "PAUSED" in state_history(execution)
    assert len(kestra.executions_of(flow_id)) == 1


def test_deploy_a_folder_is_one_bulk_write_and_a_lost_one_is_reported_unknown(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, tmp_path: Path
) -> None:
    """Issue 10 case 17: the connection drops on the bulk write; the task fails naming each flow's fate."""
    flow_ids = [kestra.flow_id(f"bulk_{n}") for n in range(3)]
    for flow_id in flow_ids:
        (tmp_path / f"{flow_id}.yml").write_text(_flow_source(flow_id))
    kestra.sim.requests.clear()
    kestra.sim.faults.drop(method="POST", path=r"/flows/bulk$", count=1)
    with make_dag("_lost") as dag:
        KestraDeployFlowOperator(
            task_id="deploy", path=str(tmp_path), namespace=FLOW_NAMESPACE, hook_params={"retry_limit": 0}
        )
    lost = run_dag(dag)
    with make_dag("_again") as dag:
        KestraDeployFlowOperator(task_id="deploy", path=str(tmp_path), namespace=FLOW_NAMESPACE)
    again = run_dag(dag)

    assert lost.state == "failed"
    for flow_id in flow_ids:
        assert (
            f"UNKNOWN (written, answer lost; check it in Kestra): {FLOW_NAMESPACE}.{flow_id}" in lost.output
        )
    assert "Not deployed: none." in lost.output
    assert again.state == "success", again.output[-3000:]
    assert {(r["action"], r["revision"]) for r in again.xcom("deploy")} == {("created", 1)}
    assert kestra.sim.requests.count("POST", r"/flows/bulk$") == 2
    assert kestra.sim.requests.count("POST", r"/flows$") == 0, "no flow was written on its own"
