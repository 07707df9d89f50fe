"""Triggerer fail-over must not kill (case 1 of issue 10).

Airflow 3.3.2: when a triggerer stops heartbeating for longer than ``triggerer_health_check_threshold``
(frozen: SIGSTOP, a long GC pause, a saturated host), the scheduler hands its triggers to another
triggerer. When the frozen one wakes up, its next ``update_triggers`` finds the trigger no longer assigned
to it and cancels it through ``cancel_triggers()``, with the same "user action" message a person's mark
failed / clear produces, and awaits the trigger's ``on_kill()``. The trigger tells the two apart by its task
instance's state (read through the triggerer's Task SDK channel): still ``deferred`` means reassigned, and
the execution runs on, followed by the trigger now running elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from kestra_reliability_ledger import task_labels
from kestra_reliability_recorder import KestraFaultCounter
from kestra_reliability_triggerer import (
    TaskInstanceStates,
    rebuild_trigger,
    run_until_event,
    stop_trigger_when,
)
from kestra_reliability_worker import KestraWorkerTry, build_operator, worker_context
from support.kestra_flows import GREETING_INPUTS, GREETING_OUTPUTS, SLOW_TASKS, greeting_tasks
from support.kestra_side import FLOW_NAMESPACE, state_of

if TYPE_CHECKING:
    from kestra_reliability_ledger import KestraExecutionLedger
    from kestra_reliability_recorder import KestraReliabilityRecorder
    from support.kestra_side import KestraTestSide

pytestmark = pytest.mark.integration

HOOK_PARAMS = {"retry_limit": 2, "retry_delay": 0.05}


def deferred_try(name: str, flow_id: str, **operator_kwargs: Any) -> KestraWorkerTry:
    return KestraWorkerTry(
        dag_id=f"reliability_{name}",
        run_id=f"manual__{name}",
        task_id="run",
        try_number=1,
        operator_kwargs={
            "namespace": FLOW_NAMESPACE,
            "flow_id": flow_id,
            "poll_interval": 0.2,
            "deferrable": True,
            "hook_params": HOOK_PARAMS,
            **operator_kwargs,
        },
    )


def test_a_trigger_taken_over_from_a_frozen_triggerer_never_kills(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """Triggerer A froze; B took the trigger over; A wakes and cancels its copy as a "user action" and calls
    on_kill while the task instance is still deferred. The execution runs on, B's trigger completes the
    task with the flow's output, and nothing is killed (retries=0: the first try is also the last)."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = kestra_side.deploy("greeting", greeting_tasks("PT2S"), GREETING_INPUTS + GREETING_OUTPUTS)
    task_try = deferred_try("failover", flow_id, inputs={"name": "reliability"})
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)
    failovers = KestraFaultCounter()
    with reliability.faults(failovers):
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        on_frozen_triggerer = deferred.value.trigger
        on_other_triggerer = rebuild_trigger(on_frozen_triggerer)  # what the scheduler reassigned
        execution_id = context["ti"].xcom["execution_id"]

        async def running() -> bool:
            return state_of(ledger.execution(execution_id)) == "RUNNING"

        still_deferred = TaskInstanceStates(
            on_frozen_triggerer, "deferred", dag_id=task_try.dag_id, run_id=task_try.run_id, task_id="run"
        )
        asyncio.run(
            stop_trigger_when(on_frozen_triggerer, running, user_action=True, ti_state=still_deferred)
        )
        failovers.hit()
        assert still_deferred.asked == 1, "on_kill did not ask what became of the task instance"
        assert state_of(ledger.execution(execution_id)) == "RUNNING", "a fail-over killed the execution"

        event = asyncio.run(run_until_event(on_other_triggerer))
        assert event is not None and event.payload["status"] == "success", event
        assert operator.execute_complete(context, event.payload) == {"greeting": "greeting-reliability"}
        ledger.account(reliability, task_labels(task_try.dag_id, task_try.run_id), expected=1)


@pytest.mark.parametrize(
    "ti_state", ["failed", "success", None], ids=["marked-failed", "marked-success", "cleared"]
)
def test_a_person_acting_on_the_deferred_task_kills(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    reliability: KestraReliabilityRecorder,
    ti_state: str | None,
) -> None:
    """The same cancel and on_kill, after a person marked the task failed or success, or cleared it: the
    execution is killed (cause 3 of the rule), by the trigger, although no worker holds the task."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = kestra_side.deploy("slow", SLOW_TASKS)
    task_try = deferred_try(f"person_{ti_state}", flow_id)
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)
    actions = KestraFaultCounter()
    with reliability.faults(actions):
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        execution_id = context["ti"].xcom["execution_id"]

        async def running() -> bool:
            return state_of(ledger.execution(execution_id)) == "RUNNING"

        acted = TaskInstanceStates(
            deferred.value.trigger, ti_state, dag_id=task_try.dag_id, run_id=task_try.run_id, task_id="run"
        )
        asyncio.run(stop_trigger_when(deferred.value.trigger, running, user_action=True, ti_state=acted))
        actions.hit()
        (execution,) = ledger.account(
            reliability, task_labels(task_try.dag_id, task_try.run_id), expected=1, killed=1
        )
        assert state_of(execution) == "KILLED"
