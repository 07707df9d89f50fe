"""A fan-out of deferrable Kestra tasks in a distributed Airflow, then the same with a triggerer and a
worker SIGKILLed mid-run (issue 10: never kill or lose a healthy Kestra execution).

The DAG maps ``KestraTriggerExecutionOperator`` (deferrable) over ``FAN_OUT`` inputs of a Sleep flow and
runs three sync ones (``retries=2``) on a longer Sleep flow, against the Kestra simulator, on
``AirflowDistributedStack`` (CeleryExecutor, Redis, PostgreSQL, 2 workers, 2 triggerers). The judge is
the simulator's execution search by the ``airflow.*`` labels the operator sets, read over plain HTTP (not
the provider's hook, which is under test): exactly one Kestra execution per task instance, finished.

Run with ``bash scripts/run-distributed.sh`` (sets ``KESTRA_DISTRIBUTED=1`` and the Celery virtualenv).
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from kestra_distributed_stack import AirflowDistributedStack

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(
        os.environ.get("KESTRA_DISTRIBUTED") != "1",
        reason="distributed end-to-end run: bash scripts/run-distributed.sh (KESTRA_DISTRIBUTED=1)",
    ),
]

DAG_ID = "kestra_distributed_fanout"
NAMESPACE = "airflow.distributed"
FAN_FLOW = "fan_sleep"
SYNC_FLOW = "sync_sleep"
FAN_OUT = int(os.environ.get("KESTRA_DISTRIBUTED_FAN_OUT", "50"))
SYNC_TASKS = ("sync_0", "sync_1", "sync_2")
FAN_SLEEP = "PT15S"
"""Long enough that the fan-out's triggers are still waiting in the triggerers when one is killed."""
SYNC_SLEEP = "PT40S"
"""Long enough that the sync tasks are still waiting on a worker when it is killed, and that their retry
(20 s to notice the dead worker, 3 s retry delay) reattaches to a running execution."""
RUN_TIMEOUT = float(os.environ.get("KESTRA_DISTRIBUTED_RUN_TIMEOUT", "900"))

DAG_FILE = """
from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

with DAG(
    {dag_id!r},
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    max_active_tasks=256,
    max_active_runs=1,
    default_args={{"retries": 2, "retry_delay": datetime.timedelta(seconds=3)}},
):
    KestraTriggerExecutionOperator.partial(
        task_id="fan", namespace={namespace!r}, flow_id={fan_flow!r}, deferrable=True, poll_interval=2
    ).expand(inputs=[{{"n": i}} for i in range({fan_out})])
    for i in range(3):
        KestraTriggerExecutionOperator(
            task_id=f"sync_{{i}}",
            namespace={namespace!r},
            flow_id={sync_flow!r},
            inputs={{"n": i}},
            deferrable=False,
            poll_interval=1,
            retries=2,
        )
"""


def flow_source(flow_id: str, duration: str) -> str:
    return textwrap.dedent(
        f"""\
        id: {flow_id}
        namespace: {NAMESPACE}
        inputs:
          - id: n
            type: INT
        tasks:
          - id: started
            type: io.kestra.plugin.core.log.Log
            message: "task {{{{ inputs.n }}}} sleeping {duration}"
          - id: nap
            type: io.kestra.plugin.core.flow.Sleep
            duration: {duration}
        """
    )


@pytest.fixture(scope="module")
def sim() -> Iterator[KestraSimulator]:
    import httpx

    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as simulator:
        with httpx.Client(base_url=simulator.url, auth=(simulator.username, simulator.password)) as client:
            for flow_id, duration in ((FAN_FLOW, FAN_SLEEP), (SYNC_FLOW, SYNC_SLEEP)):
                answer = client.post(
                    "/api/v1/main/flows",
                    content=flow_source(flow_id, duration),
                    headers={"Content-Type": "application/x-yaml"},
                )
                assert answer.status_code == 200, answer.text
        yield simulator


@pytest.fixture(scope="module")
def stack(
    sim: KestraSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowDistributedStack]:
    from kestra_distributed_stack import AirflowDistributedStack, missing_system_tools

    missing = missing_system_tools()
    if missing:
        pytest.fail(f"missing {missing}: run bash scripts/run-distributed.sh (it installs them)")
    try:
        import airflow.providers.celery  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as err:
        pytest.fail(f"{err}: run with .venv/af33-celery (bash scripts/run-distributed.sh)")
    root = tmp_path_factory.mktemp("distributed")
    dags, home = root / "dags", root / "airflow_home"
    dags.mkdir()
    home.mkdir()
    (dags / f"{DAG_ID}.py").write_text(
        DAG_FILE.format(
            dag_id=DAG_ID, namespace=NAMESPACE, fan_flow=FAN_FLOW, sync_flow=SYNC_FLOW, fan_out=FAN_OUT
        )
    )
    with AirflowDistributedStack(
        home, dags, extra_env={"AIRFLOW_CONN_KESTRA_DEFAULT": sim.connection_uri()}
    ) as running:
        print(f"\n[distributed] stack up: {running.describe()} (home {home})")
        running.wait_for_dag(DAG_ID, timeout=180)
        yield running


def kestra_executions(sim: KestraSimulator, run_id: str) -> list[dict[str, Any]]:
    """Every execution the run's tasks started, from the simulator's search API (not the hook)."""
    import httpx

    params = [
        ("filters[namespace][EQUALS]", NAMESPACE),
        ("filters[labels][EQUALS][airflow.dag_id]", DAG_ID),
        ("filters[labels][EQUALS][airflow.run_id]", run_id),
        ("size", "1000"),
    ]
    answer = httpx.get(
        f"{sim.url}/api/v1/main/executions/search",
        params=params,
        auth=(sim.username, sim.password),
        timeout=30,
    )
    answer.raise_for_status()
    return list(answer.json()["results"])


def labels_of(execution: dict[str, Any]) -> dict[str, str]:
    return {str(item["key"]): str(item["value"]) for item in execution.get("labels") or []}


def task_key(execution: dict[str, Any]) -> tuple[str, int]:
    labels = labels_of(execution)
    return labels["airflow.task_id"], int(labels.get("airflow.map_index", "-1"))


def settled_executions(sim: KestraSimulator, run_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The run's executions once none is running any more (or as they are after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = kestra_executions(sim, run_id)
        running = [e for e in found if e["state"]["current"] not in ("SUCCESS", "FAILED", "KILLED")]
        if not running or time.monotonic() > deadline:
            return found
        time.sleep(1)


def expected_tasks() -> set[tuple[str, int]]:
    return {("fan", i) for i in range(FAN_OUT)} | {(task, -1) for task in SYNC_TASKS}


def assert_exactly_once(
    stack: AirflowDistributedStack, sim: KestraSimulator, run_id: str, state: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """The run succeeded, every task too, and each task instance has exactly one finished execution."""
    tis = stack.task_instances(DAG_ID, run_id)
    by_task = {(ti["task_id"], ti["map_index"]): ti for ti in tis}
    not_green = {key: ti["state"] for key, ti in by_task.items() if ti["state"] != "success"}
    assert state == "success" and not not_green, (
        f"run {run_id} ended {state}; not green: {not_green}\n{stack.diagnostics()}"
    )
    assert set(by_task) == expected_tasks()
    executions = settled_executions(sim, run_id)
    per_task = Counter(task_key(e) for e in executions)
    duplicated = {key: n for key, n in per_task.items() if n != 1}
    missing = expected_tasks() - set(per_task)
    assert not duplicated and not missing, f"duplicated {duplicated}, missing {sorted(missing)}"
    states = Counter(e["state"]["current"] for e in executions)
    assert states == {"SUCCESS": len(expected_tasks())}, states
    return executions, by_task


def test_fan_out_runs_each_task_exactly_once(stack: AirflowDistributedStack, sim: KestraSimulator) -> None:
    run_id = "distributed_run_1"
    started = time.monotonic()
    stack.trigger(DAG_ID, run_id)
    state = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    took = time.monotonic() - started
    _, by_task = assert_exactly_once(stack, sim, run_id, state)
    workers = Counter(ti["hostname"] for ti in by_task.values())
    triggerers = stack.trigger_job_hosts(DAG_ID, run_id)
    print(
        f"\n[distributed] run 1: {len(by_task)} tasks green in {took:.0f}s, one Kestra execution each; "
        f"tasks per worker {dict(workers)}; triggerers used {sorted(triggerers)}"
    )
    assert set(workers) <= {"worker-1", "worker-2"}, workers
    assert triggerers, "no trigger log: the deferrable tasks never ran in a triggerer"


def test_killed_triggerer_and_worker_lose_nothing(
    stack: AirflowDistributedStack, sim: KestraSimulator
) -> None:
    """SIGKILL the worker running a sync task and the triggerer holding the most triggers, mid-run: the
    run still succeeds with exactly one Kestra execution per task; the killed sync task's retry reattaches
    to its execution (which carries the first try's number)."""
    run_id = "distributed_run_2"
    started = time.monotonic()
    stack.trigger(DAG_ID, run_id)

    # Wait for the moment to strike: a sync task waiting on a worker while its Kestra execution runs, and
    # a triggerer holding several of the fan-out's triggers.
    victim_task, victim_worker, victim_triggerer = None, None, None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and victim_worker is None:
        stack.raise_if_a_process_died()
        tis = {ti["task_id"]: ti for ti in stack.task_instances(DAG_ID, run_id) if ti["map_index"] == -1}
        running = {
            task_key(e)[0]
            for e in kestra_executions(sim, run_id)
            if e["state"]["current"] == "RUNNING" and task_key(e)[1] == -1
        }
        held = stack.triggers_per_triggerer()
        for task in SYNC_TASKS:
            ti = tis.get(task)
            if (
                ti
                and ti["state"] == "running"
                and ti["hostname"] in ("worker-1", "worker-2")
                and task in running
            ):
                busiest = max(held.items(), key=lambda item: item[1], default=(None, 0))
                if busiest[1] >= 3:
                    victim_task, victim_worker, victim_triggerer = task, ti["hostname"], busiest[0]
                    break
        time.sleep(1)
    assert victim_worker and victim_triggerer, f"never found a moment to kill: {stack.diagnostics()}"
    held_before = stack.triggers_per_triggerer()
    stack.kill(victim_worker, signal.SIGKILL)
    stack.kill(victim_triggerer, signal.SIGKILL)
    killed_at = time.monotonic() - started
    print(
        f"\n[distributed] run 2: at {killed_at:.0f}s SIGKILLed {victim_worker} (running {victim_task}) and "
        f"{victim_triggerer} (triggers held: {held_before})"
    )

    state = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    took = time.monotonic() - started
    executions, by_task = assert_exactly_once(stack, sim, run_id, state)
    retried = {key: ti["try_number"] for key, ti in by_task.items() if ti["try_number"] > 1}
    victim = by_task[(victim_task, -1)]
    [victim_execution] = [e for e in executions if task_key(e) == (victim_task, -1)]
    assert victim["try_number"] >= 2, f"{victim_task} was not retried after its worker died: {victim}"
    assert labels_of(victim_execution)["airflow.try_number"] == "1", (
        f"{victim_task}'s retry started a new execution instead of reattaching: {labels_of(victim_execution)}"
    )
    assert "Reattaching to Kestra execution" in stack.task_log(DAG_ID, run_id, victim_task) or (
        "already ended in SUCCESS" in stack.task_log(DAG_ID, run_id, victim_task)
    )
    moved = sorted(
        task for task, hosts in stack.trigger_hosts_per_task(DAG_ID, run_id).items() if len(hosts) > 1
    )
    print(
        f"[distributed] run 2: {len(by_task)} tasks green in {took:.0f}s, one Kestra execution each; "
        f"retried {retried}; {len(moved)} trigger(s) moved from {victim_triggerer} to the other triggerer"
    )
    assert moved, f"no trigger of {victim_triggerer} was taken over by the other triggerer"
