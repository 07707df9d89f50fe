"""Airflow stops a task while its Kestra execution runs: nothing is duplicated and nothing is left running.

* a worker dies (SIGKILL) after the execution was created, then the task is retried: the retry reattaches;
* an Airflow ``execution_timeout`` passes, in a worker slot and deferred: the execution is killed;
* a user kills the task, in a worker slot (SIGTERM -> ``on_kill``) and deferred (the trigger's ``on_kill``,
  Airflow 3.3): the execution is killed.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from kestra_reliability_ledger import task_labels
from kestra_reliability_recorder import KestraFaultCounter
from kestra_reliability_triggerer import TaskInstanceStates, run_until_event, stop_trigger_when
from kestra_reliability_worker import KestraWorkerProcess, KestraWorkerTry, build_operator, worker_context
from support.kestra_flows import FAILING_TASKS, GREETING_INPUTS, GREETING_OUTPUTS, SLOW_TASKS, greeting_tasks
from support.kestra_side import FLOW_NAMESPACE, state_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from kestra_reliability_ledger import KestraExecutionLedger
    from kestra_reliability_recorder import KestraReliabilityRecorder
    from support.dag_runner import DagTestRun
    from support.kestra_side import KestraTestSide

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = pytest.mark.integration

KESTRA_PROFILES = ("1.3", "2.0")
"""Kill and restart moved under ``/executions/{id}/actions/`` in 2.0: both generations are checked."""

HOOK_PARAMS = {"retry_limit": 3, "retry_delay": 0.05}
MODES = ("sync", "deferred")


@pytest.fixture(scope="module", params=KESTRA_PROFILES, ids=[f"kestra{p}" for p in KESTRA_PROFILES])
def reliability_sim(request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    """A simulator of each Kestra API generation (overrides the suite's 1.3 one)."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version=request.param, seed=6) as sim:
        yield sim


def worker_try(test: str, flow_id: str, try_number: int, **operator_kwargs: Any) -> KestraWorkerTry:
    return KestraWorkerTry(
        dag_id=f"reliability_{test}",
        run_id=f"manual__{test}",
        task_id="run",
        try_number=try_number,
        operator_kwargs={
            "namespace": FLOW_NAMESPACE,
            "flow_id": flow_id,
            "poll_interval": 0.2,
            "hook_params": HOOK_PARAMS,
            **operator_kwargs,
        },
    )


@pytest.mark.parametrize("mode", MODES)
def test_worker_dies_after_execution_created_then_task_retried(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    reliability: KestraReliabilityRecorder,
    mode: str,
) -> None:
    """Try 1's worker is SIGKILLed once the execution runs; try 2 waits for that execution and starts none.

    Sync, the worker dies in its wait. Deferrable, it sends nothing between the create and the deferral, so
    it is held after the create instead: the create's answer is lost (processed, connection dropped) and
    the label search that resolves it is slowed; the worker dies there, before it deferred."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = kestra_side.deploy("greeting", greeting_tasks("PT3S"), GREETING_INPUTS + GREETING_OUTPUTS)
    deferrable = mode == "deferred"
    first = worker_try(
        f"worker_dies_{mode}", flow_id, 1, inputs={"name": "reliability"}, retries=1, deferrable=deferrable
    )
    labels = task_labels(first.dag_id, first.run_id)
    deaths = KestraFaultCounter()
    faults = kestra_side.sim.faults
    create = rf"/executions/{re.escape(FLOW_NAMESPACE)}/{re.escape(flow_id)}$"
    held = (
        [
            faults.drop(after_response=True, method="POST", path=create, count=1),
            faults.latency(20.0, method="GET", path=r"/executions/search$", count=1),
        ]
        if deferrable
        else []
    )

    with reliability.faults(deaths):
        with KestraWorkerProcess(first) as worker:
            created = ledger.wait_for_running(labels)
            while held and not held[-1].fired:
                time.sleep(0.05)
            worker.signal(signal.SIGKILL)
            code, report, _ = worker.finish()
        assert code == -signal.SIGKILL and not report, "the worker was not killed mid-wait"
        deaths.hit()

        second = KestraWorkerTry(**{**first.__dict__, "try_number": 2})
        operator = build_operator(second)
        context = worker_context(second, operator)
        if deferrable:
            with pytest.raises(TaskDeferred) as deferred:
                operator.execute(context)
            event = asyncio.run(run_until_event(deferred.value.trigger))
            result = operator.execute_complete(context, event.payload)
        else:
            result = operator.execute(context)
        assert result == {"greeting": "greeting-reliability"}
        assert context["ti"].xcom["execution_id"] == created["id"], "the retry did not reattach"
        ledger.account(reliability, labels, expected=1)


@pytest.mark.parametrize("limit", ["execution_timeout", "timeout"])
@pytest.mark.parametrize("mode", MODES)
def test_timeout_kills_the_execution(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    mode: str,
    limit: str,
) -> None:
    """Airflow's ``execution_timeout`` (or the operator's own ``timeout``) passes while a two-minute flow
    runs: the task fails and the execution is KILLED."""
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    flow_id = kestra_side.deploy("slow", SLOW_TASKS)
    limit_kwargs: dict[str, Any] = {limit: timedelta(seconds=3)}
    with make_dag() as dag:
        KestraTriggerExecutionOperator(
            task_id="run",
            namespace=FLOW_NAMESPACE,
            flow_id=flow_id,
            poll_interval=0.2,
            deferrable=mode == "deferred",
            hook_params=HOOK_PARAMS,
            **limit_kwargs,
        )
    timeouts = KestraFaultCounter()
    with reliability.faults(timeouts):
        run = run_dag(dag)
        timeouts.hit()
        assert run.state == "failed" and run.task_states["run"] == "failed", run.output[-3000:]
        (execution,) = ledger.account(reliability, task_labels(run.dag_id, run.run_id), expected=1, killed=1)
        assert state_of(execution) == "KILLED"


@pytest.mark.parametrize("restart_on_retry", [False, True], ids=["new-execution", "restart"])
def test_each_retry_of_a_failing_flow_maps_to_one_execution(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    restart_on_retry: bool,
) -> None:
    """A flow that always fails, with one Airflow retry: try 2 starts its own execution (or restarts try 1's
    with ``restart_on_retry``), never more."""
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    flow_id = kestra_side.deploy("failing", FAILING_TASKS)
    with make_dag(retries=1) as dag:
        KestraTriggerExecutionOperator(
            task_id="run",
            namespace=FLOW_NAMESPACE,
            flow_id=flow_id,
            poll_interval=0.2,
            restart_on_retry=restart_on_retry,
            hook_params=HOOK_PARAMS,
        )
    run = run_dag(dag)
    assert run.state == "failed" and run.try_numbers == {"run": 2}, run.output[-3000:]
    assert "disk on fire" in run.output
    executions = ledger.account(
        reliability, task_labels(run.dag_id, run.run_id), expected=1 if restart_on_retry else 2
    )
    assert all(state_of(e) == "FAILED" for e in executions)


def test_user_kill_in_a_worker_slot(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """The task runner answers a kill (mark failed, SIGTERM) with ``on_kill``: the execution is KILLED."""
    flow_id = kestra_side.deploy("slow", SLOW_TASKS)
    task_try = worker_try("user_kill_sync", flow_id, 1)
    labels = task_labels(task_try.dag_id, task_try.run_id)
    kills = KestraFaultCounter()

    with reliability.faults(kills):
        with KestraWorkerProcess(task_try) as worker:
            ledger.wait_for_running(labels)
            worker.signal(signal.SIGTERM)
            code, report, output = worker.finish()
        kills.hit()
        assert code == 128 + signal.SIGTERM and report.get("error") == "killed by SIGTERM", output[-3000:]
        (execution,) = ledger.account(reliability, labels, expected=1, killed=1)
        assert state_of(execution) == "KILLED"


def test_user_kill_while_deferred(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """A user marks the deferred task failed: the triggerer cancels the trigger and awaits its ``on_kill``."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = kestra_side.deploy("slow", SLOW_TASKS)
    task_try = worker_try("user_kill_deferred", flow_id, 1, deferrable=True)
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)
    kills = KestraFaultCounter()

    with reliability.faults(kills):
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        execution_id = context["ti"].xcom["execution_id"]

        async def running() -> bool:
            return state_of(ledger.execution(execution_id)) == "RUNNING"

        marked_failed = TaskInstanceStates(
            deferred.value.trigger, "failed", dag_id=task_try.dag_id, run_id=task_try.run_id, task_id="run"
        )
        asyncio.run(
            stop_trigger_when(deferred.value.trigger, running, user_action=True, ti_state=marked_failed)
        )
        assert marked_failed.asked == 1
        kills.hit()
        labels = task_labels(task_try.dag_id, task_try.run_id)
        (execution,) = ledger.account(reliability, labels, expected=1, killed=1)
        assert state_of(execution) == "KILLED"
