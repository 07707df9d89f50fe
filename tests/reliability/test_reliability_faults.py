"""Transient faults while a DAG runs a Kestra flow: the task still succeeds with one execution per try.

Each test injects faults with the simulator (5xx and 429 with Retry-After, dropped connections, cut SSE
streams, a restart, a triggerer restart), runs real Airflow, and checks the task's outcome and the Kestra
executions its try left (exactly one, finished).
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import TYPE_CHECKING, Any

import pytest
from kestra_reliability_ledger import task_labels
from kestra_reliability_recorder import KestraFaultCounter
from kestra_reliability_triggerer import rebuild_trigger, run_until_event, stop_trigger_when
from kestra_reliability_worker import KestraWorkerTry, build_operator, worker_context
from support.kestra_flows import GREETING_INPUTS, GREETING_OUTPUTS, greeting_tasks
from support.kestra_side import FLOW_NAMESPACE

if TYPE_CHECKING:
    from collections.abc import Callable

    from kestra_reliability_ledger import KestraExecutionLedger
    from kestra_reliability_recorder import KestraReliabilityRecorder
    from support.dag_runner import DagTestRun
    from support.kestra_side import KestraTestSide

    from airflow_provider_kestra.testing import KestraSimFaultRule

pytestmark = pytest.mark.integration

FAST_RETRIES = {"retry_limit": 6, "retry_delay": 0.05}
"""Retries quick enough for a test, patient enough for a burst of a few faults."""
RESTART_RETRIES = {"retry_limit": 10, "retry_delay": 0.1}
"""Enough backoff (about 25 s worst case) to outlast a simulator that stays down for a second."""
EXECUTION_GET = r"/executions/[A-Za-z0-9]+$"
EXECUTION_FOLLOW = r"/executions/[A-Za-z0-9]+/follow$"
LOGS_GET = r"/logs/(search|[A-Za-z0-9]+)$"
"""Log reads: the search of the new lines (1.x, 2.x), or a whole log (0.22)."""
MODES = ("sync", "deferred")


def create_path(flow_id: str) -> str:
    """The create-execution route of one flow, as a fault rule path pattern."""
    return rf"/executions/{re.escape(FLOW_NAMESPACE)}/{re.escape(flow_id)}$"


def deploy_greeting(kestra_side: KestraTestSide, nap: str = "PT0.5S") -> str:
    return kestra_side.deploy("greeting", greeting_tasks(nap), GREETING_INPUTS + GREETING_OUTPUTS)


def greeting_dag(make_dag: Callable[..., Any], flow_id: str, mode: str, hook_params: dict[str, Any]) -> Any:
    """One task running the greeting flow with input ``name=reliability``."""
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    with make_dag() as dag:
        KestraTriggerExecutionOperator(
            task_id="run",
            namespace=FLOW_NAMESPACE,
            flow_id=flow_id,
            inputs={"name": "reliability"},
            poll_interval=0.2,
            deferrable=mode == "deferred",
            hook_params=hook_params,
        )
    return dag


def assert_greeted_once(
    ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder, run: DagTestRun
) -> None:
    """The checks every fault test ends with: success, the flow output in XCom, one finished execution."""
    assert run.state == "success", run.output[-3000:]
    assert run.xcom("run") == {"greeting": "greeting-reliability"}
    assert run.xcom("run", "execution_state") == "SUCCESS"
    ledger.account(reliability, task_labels(run.dag_id, run.run_id), expected=1)


@pytest.mark.parametrize("status", [503, 429])
def test_burst_during_create(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    status: int,
) -> None:
    flow_id = deploy_greeting(kestra_side)
    faults = kestra_side.sim.faults
    rule = (
        faults.throttle(retry_after=1, method="POST", path=create_path(flow_id), count=2)
        if status == 429
        else faults.fail(status, method="POST", path=create_path(flow_id), count=3)
    )
    with reliability.faults(rule):
        run = run_dag(greeting_dag(make_dag, flow_id, "sync", FAST_RETRIES))
        assert_greeted_once(ledger, reliability, run)


def burst(kestra_side: KestraTestSide, status: int, path: str, count: int) -> KestraSimFaultRule:
    """``count`` answers with ``status`` (a 429 carries ``Retry-After: 1``) to GET requests on ``path``."""
    faults = kestra_side.sim.faults
    if status == 429:
        return faults.throttle(retry_after=1, method="GET", path=path, count=count)
    return faults.fail(status, method="GET", path=path, count=count)


@pytest.mark.parametrize("status", [502, 429])
@pytest.mark.parametrize("mode", MODES)
def test_burst_during_wait(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    mode: str,
    status: int,
) -> None:
    """Status reads (and, in a worker slot, the follow stream) fail for a while mid-wait."""
    flow_id = deploy_greeting(kestra_side, nap="PT1S")
    # One rule per route: a request matching two rules would count two faults for one answer.
    rules = [burst(kestra_side, status, EXECUTION_GET, 3), burst(kestra_side, status, EXECUTION_FOLLOW, 2)]
    with reliability.faults(*rules):
        run = run_dag(greeting_dag(make_dag, flow_id, mode, FAST_RETRIES))
        assert_greeted_once(ledger, reliability, run)


@pytest.mark.parametrize(("mode", "status"), [("sync", 503), ("deferred", 429)])
def test_burst_during_log_streaming(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    mode: str,
    status: int,
) -> None:
    """Log reads fail for a while: the task succeeds and each Kestra log line still shows exactly once."""
    flow_id = deploy_greeting(kestra_side, nap="PT1S")
    with reliability.faults(burst(kestra_side, status, LOGS_GET, 3)):
        run = run_dag(greeting_dag(make_dag, flow_id, mode, FAST_RETRIES))
        assert_greeted_once(ledger, reliability, run)
        assert run.log_records_with("[kestra:hello] Hello reliability from Kestra") == 1, run.output[-3000:]


@pytest.mark.parametrize("mode", MODES)
def test_connections_dropped(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    mode: str,
) -> None:
    """The create POST is processed but its answer is lost, then status reads are dropped unanswered.

    The ambiguous create must be resolved by the idempotency label, not by starting a second execution.
    """
    flow_id = deploy_greeting(kestra_side, nap="PT1S")
    faults = kestra_side.sim.faults
    rules = [
        faults.drop(after_response=True, method="POST", path=create_path(flow_id), count=1),
        faults.drop(method="GET", path=EXECUTION_GET, count=2),
    ]
    with reliability.faults(*rules):
        run = run_dag(greeting_dag(make_dag, flow_id, mode, FAST_RETRIES))
        assert_greeted_once(ledger, reliability, run)
    assert rules[0].fired == 1, "the create POST was never answered by a dropped connection"


def test_sse_stream_cut_midway(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
) -> None:
    """The execution's follow stream is cut after two frames, twice: the wait carries on."""
    flow_id = deploy_greeting(kestra_side, nap="PT1S")
    rule = kestra_side.sim.faults.cut_streams(after_events=2, path=r"/follow$", count=2)
    with reliability.faults(rule):
        run = run_dag(greeting_dag(make_dag, flow_id, "sync", FAST_RETRIES))
        assert_greeted_once(ledger, reliability, run)


@pytest.mark.parametrize("mode", MODES)
def test_simulator_restarted_mid_wait(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    mode: str,
) -> None:
    """Kestra goes away for a second while the task waits, and comes back with its state."""
    flow_id = deploy_greeting(kestra_side, nap="PT2S")
    dag = greeting_dag(make_dag, flow_id, mode, RESTART_RETRIES)
    restarts = KestraFaultCounter()
    problems: list[BaseException] = []

    def restart_once_running() -> None:
        try:
            ledger.wait_for_running({"airflow.dag_id": dag.dag_id})
            kestra_side.sim.restart(downtime=1.0)
            restarts.hit()
        except BaseException as err:
            problems.append(err)

    restarter = threading.Thread(target=restart_once_running, name="kestra-sim-restarter")
    with reliability.faults(restarts):
        restarter.start()
        try:
            run = run_dag(dag)
        finally:
            restarter.join(90)
        assert not problems, problems
        assert_greeted_once(ledger, reliability, run)


def test_trigger_rebuilt_from_serialized_form(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    reliability: KestraReliabilityRecorder,
) -> None:
    """A triggerer restart mid-wait: the trigger is stopped (not killed), rebuilt from ``serialize()``
    after a JSON round trip, and run to its event, which completes the task with the flow's output."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = deploy_greeting(kestra_side, nap="PT2S")
    task_try = KestraWorkerTry(
        dag_id="reliability_triggerer_restart",
        run_id="manual__triggerer_restart",
        task_id="run",
        try_number=1,
        operator_kwargs={
            "namespace": FLOW_NAMESPACE,
            "flow_id": flow_id,
            "inputs": {"name": "reliability"},
            "poll_interval": 0.2,
            "deferrable": True,
            "hook_params": FAST_RETRIES,
        },
    )
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)
    labels = task_labels(task_try.dag_id, task_try.run_id)
    restarts = KestraFaultCounter()

    with reliability.faults(restarts):
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        trigger = deferred.value.trigger
        execution_id = context["ti"].xcom["execution_id"]

        async def running() -> bool:
            return ledger.execution(execution_id)["state"]["current"] == "RUNNING"

        asyncio.run(stop_trigger_when(trigger, running, user_action=False))
        restarts.hit()
        assert ledger.execution(execution_id)["state"]["current"] == "RUNNING", (
            "a triggerer restart killed it"
        )

        event = asyncio.run(run_until_event(rebuild_trigger(trigger)))
        assert event is not None and event.payload["status"] == "success", event
        assert operator.execute_complete(context, event.payload) == {"greeting": "greeting-reliability"}
        ledger.account(reliability, labels, expected=1)
