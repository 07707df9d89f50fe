"""The rule of issue 10 on the wait path: a Kestra execution ends for Airflow only when Kestra reports an
outcome, the task's deadline passes, or a person acts on the task. Anything else means keep watching.

* an answer that is not Kestra's (a proxy's HTML 200, a malformed SSE frame) mid-wait, on the first and
  last try (``retries=0``), sync and deferred: the task still succeeds, nothing is killed (case 0);
* the trigger's ``error`` event on the last try: the task defers again and the execution goes on (case 0);
* a credential revoked mid-wait: the try fails and leaves the execution running, the next try reattaches
  and finishes it (case 0);
* the deferred deadline: the trigger kills the execution itself, even if the task never resumes (case 8);
* a task cleared while deferred on Airflow 2.11 (its trigger has no kill hook there): the first try after
  the clear kills the cleared try's execution before it starts its own (case 12);
* a run id that comes back (a deleted DAG run created again): never adopts the old run's execution (10);
* a retry that reuses a finished execution relays that execution's Kestra log lines (case 22).

Each test feeds the ``reliability`` recorder, including the "killed without cause" counter.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from kestra_reliability_ledger import task_labels
from kestra_reliability_recorder import KestraFaultCounter
from kestra_reliability_triggerer import run_until_event, stop_trigger_when
from kestra_reliability_worker import KestraWorkerTry, build_operator, worker_context
from support.kestra_fault_proxy import KestraFaultProxy
from support.kestra_flows import GREETING_INPUTS, GREETING_OUTPUTS, SLOW_TASKS, greeting_tasks
from support.kestra_side import FLOW_NAMESPACE, state_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from kestra_reliability_ledger import KestraExecutionLedger
    from kestra_reliability_recorder import KestraReliabilityRecorder
    from support.dag_runner import DagTestRun
    from support.kestra_side import KestraTestSide

pytestmark = pytest.mark.integration

HOOK_PARAMS = {"retry_limit": 2, "retry_delay": 0.05}
EXECUTION_GET = r"/executions/[A-Za-z0-9]+$"
FOLLOW = r"/executions/[A-Za-z0-9]+/follow$"
MODES = ("sync", "deferred")


@pytest.fixture
def proxy(kestra_side: KestraTestSide, monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraFaultProxy]:
    """A fault proxy between Airflow and the simulator; ``kestra_default`` points at it."""
    with KestraFaultProxy(kestra_side.sim.url) as fault_proxy:
        monkeypatch.setenv(
            "AIRFLOW_CONN_KESTRA_DEFAULT", fault_proxy.connection_uri(kestra_side.sim.connection_uri())
        )
        yield fault_proxy


def deploy_greeting(kestra_side: KestraTestSide, nap: str = "PT2S") -> str:
    return kestra_side.deploy("greeting", greeting_tasks(nap), GREETING_INPUTS + GREETING_OUTPUTS)


def one_try(name: str, flow_id: str, try_number: int = 1, **operator_kwargs: Any) -> KestraWorkerTry:
    return KestraWorkerTry(
        dag_id=f"reliability_{name}",
        run_id=f"manual__{name}",
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


@pytest.mark.parametrize("fault", ["html_200", "malformed_sse_frame"])
@pytest.mark.parametrize("mode", MODES)
def test_a_non_kestra_answer_mid_wait_never_kills_on_the_last_try(
    proxy: KestraFaultProxy,
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    mode: str,
    fault: str,
) -> None:
    """The probe's case: one HTML 200 (a proxy's login page) or one malformed SSE frame, with retries=0,
    used to end in an ``error`` event and a kill of the healthy execution. Now the wait goes on."""
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    flow_id = deploy_greeting(kestra_side)
    rule = (
        proxy.html_200(r"/executions/[A-Za-z0-9]+(/follow)?$", method="GET", count=2)
        if fault == "html_200"
        else proxy.sse_inject(FOLLOW, frame=b'event: message\ndata: {"id": "half\n\n', count=2)
    )
    with make_dag(retries=0) as dag:
        KestraTriggerExecutionOperator(
            task_id="run",
            namespace=FLOW_NAMESPACE,
            flow_id=flow_id,
            inputs={"name": "reliability"},
            poll_interval=0.2,
            deferrable=mode == "deferred",
            hook_params=HOOK_PARAMS,
        )
    with reliability.faults(rule):
        run = run_dag(dag)
        assert run.state == "success", run.output[-3000:]
        assert run.xcom("run") == {"greeting": "greeting-reliability"}
        ledger.account(reliability, task_labels(run.dag_id, run.run_id), expected=1)


def test_an_error_event_on_the_last_try_defers_again_and_never_kills(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """Whatever made the trigger fire ``error``, the task reads the execution, sees it RUNNING, and defers
    again (retries=0: the old code killed it here); the new trigger sees it to its end."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = deploy_greeting(kestra_side)
    task_try = one_try("error_event", flow_id, inputs={"name": "reliability"}, deferrable=True)
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)
    errors = KestraFaultCounter()
    with reliability.faults(errors):
        with pytest.raises(TaskDeferred):
            operator.execute(context)
        execution_id = context["ti"].xcom["execution_id"]
        error_event = {
            "status": "error",
            "execution_id": execution_id,
            "state": None,
            "message": "Could not follow the Kestra execution: the event stream sent a malformed frame",
            "log_cursor": None,
        }
        errors.hit()
        with pytest.raises(TaskDeferred) as again:
            operator.execute_complete(context, error_event)
        assert state_of(ledger.execution(execution_id)) in ("CREATED", "RUNNING")
        event = asyncio.run(run_until_event(again.value.trigger))
        result = operator.execute_complete(context, event.payload)
        assert result == {"greeting": "greeting-reliability"}
        ledger.account(reliability, task_labels(task_try.dag_id, task_try.run_id), expected=1)


@pytest.mark.parametrize("mode", MODES)
def test_a_revoked_credential_leaves_the_execution_running_and_the_next_try_reattaches(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    reliability: KestraReliabilityRecorder,
    capfd: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    """Mid-wait the credential stops working (401): the try fails without killing and logs the execution's
    id and URL; with the credential back, the next try reattaches to the same execution."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = deploy_greeting(kestra_side, nap="PT3S")
    deferrable = mode == "deferred"
    first = one_try(
        f"revoked_{mode}", flow_id, inputs={"name": "reliability"}, retries=1, deferrable=deferrable
    )
    operator = build_operator(first)
    context = worker_context(first, operator)
    faults = kestra_side.sim.faults
    revoked = KestraFaultCounter()
    with reliability.faults(revoked):
        if deferrable:
            with pytest.raises(TaskDeferred) as deferred:
                operator.execute(context)
            faults.fail(401, method="GET", path=r"/executions/[A-Za-z0-9]+(/follow)?$")
            event = asyncio.run(run_until_event(deferred.value.trigger))
            assert event.payload["status"] == "error", event.payload
            with pytest.raises(Exception, match="Lost track"):
                operator.execute_complete(context, event.payload)
        else:
            faults.fail(401, method="GET", path=r"/executions/[A-Za-z0-9]+(/follow)?$")
            with pytest.raises(Exception, match="401"):
                operator.execute(context)
        revoked.hit()
        execution_id = context["ti"].xcom["execution_id"]
        assert state_of(ledger.execution(execution_id)) in ("CREATED", "RUNNING"), "killed without cause"
        log = capfd.readouterr()
        assert f"Stopped watching Kestra execution {execution_id}" in log.out + log.err
        assert "left running, not killed" in log.out + log.err
        faults.clear()

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
        assert context["ti"].xcom["execution_id"] == execution_id, "the next try did not reattach"
        ledger.account(reliability, task_labels(first.dag_id, first.run_id), expected=1)


def test_the_trigger_kills_at_the_deadline_even_if_the_task_never_resumes(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """Case 8: ``execution_timeout`` while deferred. Airflow 2.11 cancels the task at the limit without
    resuming it; a scheduler may resume it late. The trigger knows the id and kills at its own deadline."""
    from datetime import timedelta

    from airflow.sdk.exceptions import TaskDeferred

    flow_id = kestra_side.deploy("slow", SLOW_TASKS)
    task_try = one_try("deadline", flow_id, deferrable=True)
    operator = build_operator(task_try)
    operator.execution_timeout = timedelta(seconds=3)
    context = worker_context(task_try, operator)
    deadlines = KestraFaultCounter()
    with reliability.faults(deadlines):
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        event = asyncio.run(run_until_event(deferred.value.trigger))
        deadlines.hit()
        assert event.payload["status"] == "timeout"
        execution_id = context["ti"].xcom["execution_id"]
        # The task is never resumed here: the kill came from the trigger alone.
        (execution,) = ledger.account(
            reliability, task_labels(task_try.dag_id, task_try.run_id), expected=1, killed=1
        )
        assert execution["id"] == execution_id and state_of(execution) == "KILLED"


def test_clearing_a_deferred_task_without_a_trigger_kill_hook_never_leaves_two_running(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """Case 12 (Airflow 2.11): clearing a deferred task stops its trigger without ``on_kill``. The first try
    after the clear finds the cleared try's execution, kills it (a person asked for a new run), then starts
    its own."""
    from airflow.sdk.exceptions import TaskDeferred

    flow_id = kestra_side.deploy("slow", SLOW_TASKS)
    first = one_try("clear_deferred", flow_id, deferrable=True)
    operator = build_operator(first)
    context = worker_context(first, operator)
    clears = KestraFaultCounter()
    with reliability.faults(clears):
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context)
        cleared_id = context["ti"].xcom["execution_id"]

        async def running() -> bool:
            return state_of(ledger.execution(cleared_id)) == "RUNNING"

        asyncio.run(stop_trigger_when(deferred.value.trigger, running, user_action=False))  # no on_kill
        clears.hit()

        # Airflow after a clear: try_number 2, max_tries = 1 + retries, so try 2 opens a new run of the task.
        second = KestraWorkerTry(**{**first.__dict__, "try_number": 2})
        operator = build_operator(second)
        context = worker_context(second, operator)
        context["ti"].max_tries = 1
        with pytest.raises(TaskDeferred):
            operator.execute(context)
        new_id = context["ti"].xcom["execution_id"]
        assert new_id != cleared_id
        deadline = time.monotonic() + 10
        while state_of(ledger.execution(cleared_id)) != "KILLED" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state_of(ledger.execution(cleared_id)) == "KILLED"
        assert state_of(ledger.execution(new_id)) in ("CREATED", "RUNNING")
        ledger.account(reliability, task_labels(first.dag_id, first.run_id), expected=2, killed=1, running=1)


def test_a_run_id_that_comes_back_never_adopts_the_old_runs_execution(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """Case 10: a DAG run deleted and triggered again with the same ``--run-id``: its retry must not take
    the old run's finished execution (nor its outputs)."""
    flow_id = deploy_greeting(kestra_side, nap="PT0.2S")
    first = one_try("run_id_back", flow_id, inputs={"name": "old"}, retries=1)
    operator = build_operator(first)
    context = worker_context(first, operator)
    context["dag_run"] = SimpleNamespace(run_after="2026-11-30T10:00:00+00:00", start_date=None)
    assert operator.execute(context) == {"greeting": "greeting-old"}
    old_id = context["ti"].xcom["execution_id"]

    again = KestraWorkerTry(
        **{
            **first.__dict__,
            "try_number": 2,
            "operator_kwargs": {**first.operator_kwargs, "inputs": {"name": "new"}},
        }
    )
    operator = build_operator(again)
    context = worker_context(again, operator)
    context["dag_run"] = SimpleNamespace(run_after="2026-11-30T11:00:00+00:00", start_date=None)
    assert operator.execute(context) == {"greeting": "greeting-new"}
    assert context["ti"].xcom["execution_id"] != old_id
    ledger.account(reliability, task_labels(first.dag_id, first.run_id), expected=2)


def test_a_retry_that_reuses_a_finished_execution_relays_its_log_lines(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    reliability: KestraReliabilityRecorder,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Case 22: try 1 did not wait (its worker died right after the start); try 2 finds the execution
    finished and shows its Kestra log lines before returning its outputs."""
    flow_id = deploy_greeting(kestra_side, nap="PT0.2S")
    first = one_try(
        "reuse_logs", flow_id, inputs={"name": "reliability"}, retries=1, wait_for_completion=False
    )
    operator = build_operator(first)
    execution_id = operator.execute(worker_context(first, operator))
    deadline = time.monotonic() + 30
    while state_of(ledger.execution(execution_id)) != "SUCCESS" and time.monotonic() < deadline:
        time.sleep(0.05)
    capfd.readouterr()

    second = KestraWorkerTry(
        **{
            **first.__dict__,
            "try_number": 2,
            "operator_kwargs": {**first.operator_kwargs, "wait_for_completion": True},
        }
    )
    operator = build_operator(second)
    context = worker_context(second, operator)
    assert operator.execute(context) == {"greeting": "greeting-reliability"}
    output = capfd.readouterr()
    assert (output.out + output.err).count("Hello reliability from Kestra") == 1
    ledger.account(reliability, task_labels(first.dag_id, first.run_id), expected=1)
