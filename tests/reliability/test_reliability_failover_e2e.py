"""Triggerer fail-over with Airflow 3's real processes (case 1 of issue 10).

Two triggerers: the one running a deferred ``KestraTriggerExecutionOperator``'s trigger is frozen (SIGSTOP)
past ``triggerer_health_check_threshold``, the scheduler hands the trigger to the other one, then the frozen
triggerer is woken (SIGCONT). Airflow 3.3.2 then cancels its copy of the trigger with the "user action"
message and calls ``on_kill``; the task instance is still deferred, so the Kestra execution must go on, and
the task ends in success with the flow's output.
"""

from __future__ import annotations

import signal
import textwrap
import time
from typing import TYPE_CHECKING

import pytest
from support.airflow_stack import AirflowStack
from support.kestra_flows import GREETING_INPUTS, GREETING_OUTPUTS, greeting_tasks
from support.kestra_side import FLOW_NAMESPACE, KestraTestSide

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from kestra_reliability_recorder import KestraReliabilityRecorder

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAG_ID = "kestra_failover"
RUN_ID = "failover_run_1"
THRESHOLD_SECONDS = 6
DAG_FILE = """
from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

with DAG({dag_id!r}, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):
    KestraTriggerExecutionOperator(
        task_id="run",
        namespace={namespace!r},
        flow_id={flow_id!r},
        inputs={{"name": "failover"}},
        deferrable=True,
        poll_interval=1,
        retries=0,
    )
"""


@pytest.fixture
def kestra_13(monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraTestSide]:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as sim:
        monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
        side = KestraTestSide(sim, "failover")
        yield side
        side.close()


def wait_until(check: object, timeout: float, what: str, stack: AirflowStack) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout}s\n{stack.diagnostics()}")


def test_a_frozen_triggerer_waking_up_never_kills_the_execution(
    kestra_13: KestraTestSide, tmp_path: Path, reliability: KestraReliabilityRecorder
) -> None:
    from kestra_reliability_recorder import KestraFaultCounter

    kestra = kestra_13
    flow_id = kestra.deploy("greeting", greeting_tasks("PT45S"), GREETING_INPUTS + GREETING_OUTPUTS)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(
        textwrap.dedent(DAG_FILE.format(dag_id=DAG_ID, namespace=FLOW_NAMESPACE, flow_id=flow_id))
    )
    home = tmp_path / "airflow_home"
    home.mkdir()
    env = {
        "AIRFLOW_CONN_KESTRA_DEFAULT": kestra.sim.connection_uri(),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(THRESHOLD_SECONDS),
    }
    freezes = KestraFaultCounter()
    with reliability.faults(freezes), AirflowStack(home, dags, extra_env=env) as stack:
        stack.wait_for_dag(DAG_ID, timeout=120)
        stack.trigger(DAG_ID, RUN_ID)

        def assigned() -> object:
            rows = stack.query(
                "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
                "WHERE ti.dag_id = ? AND ti.run_id = ? AND t.triggerer_id IS NOT NULL",
                DAG_ID,
                RUN_ID,
            )
            return rows[0][0] if rows else None

        first_triggerer = wait_until(assigned, 120, "the trigger was never assigned", stack)
        [execution] = kestra.executions_of(flow_id)
        stack.start_extra("triggerer-b", "triggerer")
        time.sleep(5)  # let the second triggerer register its job
        stack.signal_process("triggerer", signal.SIGSTOP)
        freezes.hit()
        try:
            wait_until(
                lambda: assigned() not in (None, first_triggerer),
                90,
                "the scheduler never reassigned the frozen triggerer's trigger",
                stack,
            )
        finally:
            stack.signal_process("triggerer", signal.SIGCONT)
        time.sleep(8)  # the woken triggerer notices the trigger is gone and cancels its copy
        woken_log = stack.process_log("triggerer")
        state_after_wake = kestra.execution(execution["id"])["state"]["current"]
        final = stack.wait_for_run(DAG_ID, RUN_ID, timeout=180)
        trigger_log = "".join(p.read_text() for p in stack.trigger_logs(DAG_ID, RUN_ID, "run"))
        result = stack.xcom(DAG_ID, RUN_ID, "run")
        diagnostics = stack.diagnostics()

    assert state_after_wake in ("CREATED", "RUNNING", "SUCCESS"), (
        f"the woken triggerer's cancel killed the execution ({state_after_wake})\n{woken_log[-4000:]}"
    )
    assert "left running" in trigger_log + woken_log, (
        "the woken triggerer never called on_kill on its copy: the scenario did not exercise Airflow's "
        f"reassignment cancel\n{woken_log[-4000:]}"
    )
    assert final == "success", diagnostics
    assert result == {"greeting": "greeting-failover"}
    [execution] = kestra.executions_of(flow_id)
    assert execution["state"]["current"] == "SUCCESS"
    reliability.executions({1: 1}, 0, 0)
