"""KestraExecutionSensor in ``dag.test()``: poke and deferrable, per Kestra profile."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_flows import FAILING_TASKS, SLOW_TASKS, sleep_tasks
from support.kestra_side import FLOW_NAMESPACE

from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor

if TYPE_CHECKING:
    from support.dag_runner import DagFactory, DagRunner, DagTestRun
    from support.kestra_side import KestraTestSide

pytestmark = pytest.mark.integration

MODES = pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])


def _run_sensor_on(
    make_dag: DagFactory,
    run_dag: DagRunner,
    execution_id: str,
    deferrable: bool,
    timeout: float = 60,
    **kwargs: Any,
) -> DagTestRun:
    """Run a DAG whose one task ``wait`` watches ``execution_id``, poking every half second."""
    with make_dag() as dag:
        KestraExecutionSensor(
            task_id="wait",
            execution_id=execution_id,
            deferrable=deferrable,
            poke_interval=0.5,
            timeout=timeout,
            **kwargs,
        )
    return run_dag(dag)


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_waits_for_an_execution_by_id(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, mode: str
) -> None:
    flow_id = kestra.deploy("nap", sleep_tasks("PT2S"))
    execution_id = kestra.start(flow_id)
    with make_dag() as dag:
        KestraExecutionSensor(
            task_id="wait",
            execution_id=execution_id,
            deferrable=mode == "deferrable",
            mode="reschedule" if mode == "reschedule" else "poke",
            poke_interval=1,
            timeout=60,
        )

    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    assert run.xcom("wait") == execution_id
    assert kestra.execution(execution_id)["state"]["current"] == "SUCCESS"
    assert execution_id in str(run.xcom("wait", "execution_url"))


@MODES
def test_waits_for_the_newest_execution_matching_flow_and_labels(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    flow_id = kestra.deploy("nap", sleep_tasks("PT2S"))
    other_team = kestra.start(flow_id, labels={"team": "other"})
    ours = kestra.start(flow_id, labels={"team": "ours"})
    with make_dag() as dag:
        KestraExecutionSensor(
            task_id="wait",
            namespace=FLOW_NAMESPACE,
            flow_id=flow_id,
            labels={"team": "ours"},
            started_after="2000-01-01T00:00:00Z",
            deferrable=deferrable,
            poke_interval=0.5,
            timeout=60,
        )

    run = run_dag(dag)

    assert run.state == "success", run.output[-3000:]
    assert run.xcom("wait") == ours
    assert ours != other_team


@MODES
def test_failed_execution_fails_the_sensor(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    flow_id = kestra.deploy("fails", FAILING_TASKS)
    execution_id = kestra.start(flow_id)
    run = _run_sensor_on(make_dag, run_dag, execution_id, deferrable)

    assert run.state == "failed"
    assert run.task_states == {"wait": "failed"}
    assert f"Kestra execution {execution_id}" in run.output
    assert "FAILED" in run.output


@MODES
def test_soft_fail_skips_on_failure(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    flow_id = kestra.deploy("fails", FAILING_TASKS)
    execution_id = kestra.start(flow_id)
    run = _run_sensor_on(make_dag, run_dag, execution_id, deferrable, soft_fail=True)

    assert run.task_states == {"wait": "skipped"}


@MODES
def test_sensor_timeout_fails_without_touching_the_execution(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    """The sensor only watches: when it gives up, the Kestra execution keeps running."""
    flow_id = kestra.deploy("slow", SLOW_TASKS)
    execution_id = kestra.start(flow_id)
    try:
        run = _run_sensor_on(make_dag, run_dag, execution_id, deferrable, timeout=2)
        assert run.state == "failed"
        assert run.task_states == {"wait": "failed"}
        assert kestra.execution(execution_id)["state"]["current"] == "RUNNING"
    finally:
        kestra.hook.kill_execution(execution_id)
