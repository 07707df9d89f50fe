"""Kestra 2.0 against the simulator, on both layouts of single-execution actions.

``KestraSimulator(kestra_version="2.0", action_routes=...)``: ``"actions"`` serves kill/restart/resume at
``/executions/{id}/actions/...`` (the published 2.0 API), ``"plain"`` at ``/executions/{id}/kill`` and so on
(some 2.x builds of Kestra's ExecutionController) and answers 404 "no route" for ``/actions/...``. Outputs
come from ``/outputs/executions/{id}`` and ``/outputs/tasks/{id}[/{taskRunId}]`` only (Kestra's
OutputController, kestra-io/kestra@159e1bf8); a 2.0 execution carries no ``outputs``
(ExecutionOutputService, kestra-io/kestra@913f82c2).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_flows import (
    FAILING_TASKS,
    GREETING_INPUTS,
    GREETING_OUTPUTS,
    GREETING_TASKS,
    PAUSE_TASKS,
    SLOW_TASKS,
    WRITE_FILE_OUTPUTS,
    WRITE_FILE_TASKS,
)
from support.kestra_side import FLOW_NAMESPACE, KestraTestSide, kestra_side_for, labels_of

from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from support.dag_runner import DagFactory, DagRunner

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["actions", "plain"])
def sim20(request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    """A Kestra 2.0 simulator serving single-execution actions in one layout."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="2.0", action_routes=request.param) as sim:  # type: ignore[call-arg]
        yield sim


@pytest.fixture
def kestra20(
    sim20: KestraSimulator, airflow_db: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[KestraTestSide]:
    """``sim20`` as the ``kestra_default`` connection, like the shared ``kestra_side`` fixture."""
    with kestra_side_for(sim20, request, monkeypatch) as side:
        yield side


def layout(kestra20: KestraTestSide) -> str:
    return str(kestra20.sim.action_routes)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------- outputs
def test_trigger_operator_returns_flow_and_task_outputs(
    kestra20: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, tmp_path: Path
) -> None:
    greet = kestra20.deploy("greet", GREETING_TASKS, GREETING_INPUTS + GREETING_OUTPUTS)
    report = kestra20.deploy("report", WRITE_FILE_TASKS, GREETING_INPUTS + WRITE_FILE_OUTPUTS)
    with make_dag() as dag:
        for task_id, flow_id, extra in (
            ("greet", greet, {"include_task_outputs": True}),
            ("report", report, {"output_files_dir": str(tmp_path / "files")}),
        ):
            KestraTriggerExecutionOperator(
                task_id=task_id,
                namespace=FLOW_NAMESPACE,
                flow_id=flow_id,
                inputs={"name": "two"},
                poll_interval=0.3,
                **extra,
            )
    run = run_dag(dag)
    assert run.state == "success", run.output[-3000:]
    assert run.xcom("greet") == {"greeting": "greeting-two"}
    assert run.xcom("greet", "task_outputs")["result"] == {"value": "greeting-two"}
    [local] = run.xcom("report", "output_files")
    assert Path(local).read_text() == "report for two"


def test_hook_reads_outputs_and_files_from_the_outputs_endpoints(
    kestra20: KestraTestSide, tmp_path: Path
) -> None:
    flow_id = kestra20.deploy("report", WRITE_FILE_TASKS, GREETING_INPUTS + WRITE_FILE_OUTPUTS)
    execution_id = kestra20.start(flow_id, name="hook")
    final = kestra20.hook.wait_for_execution(execution_id, poll_interval=0.2, timeout=30)
    assert final["state"]["current"] == "SUCCESS"
    outputs = kestra20.hook.get_outputs(final, include_task_outputs=True)
    assert str(outputs["outputs"]["report_file"]).startswith("kestra:///")
    assert str(outputs["task_outputs"]["report"]["uri"]).startswith("kestra:///")
    [path] = kestra20.hook.download_output_files(execution_id, tmp_path)
    assert path.read_text() == "report for hook"


# ----------------------------------------------------------------------------------------------- actions
def test_kill_on_either_layout(kestra20: KestraTestSide) -> None:
    execution_id = kestra20.start(kestra20.deploy("slow", SLOW_TASKS))
    kestra20.wait_for_state(execution_id, {"RUNNING"})
    kestra20.hook.kill_execution(execution_id)
    assert kestra20.wait_for_state(execution_id, {"KILLED"}) == "KILLED"
    assert kestra20.hook._action_layout == layout(kestra20)


def test_restart_on_either_layout(kestra20: KestraTestSide) -> None:
    execution_id = kestra20.start(kestra20.deploy("failing", FAILING_TASKS))
    assert kestra20.wait_for_state(execution_id, {"FAILED"}) == "FAILED"
    restarted = kestra20.hook.restart_execution(execution_id)
    assert restarted["id"] == execution_id
    assert kestra20.wait_for_state(execution_id, {"FAILED"}) == "FAILED"
    assert labels_of(kestra20.execution(execution_id))["system.restarted"] == "true"
    assert kestra20.hook._action_layout == layout(kestra20)


def test_resume_on_either_layout_with_both_hooks(kestra20: KestraTestSide) -> None:
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    flow_id = kestra20.deploy("pause", PAUSE_TASKS)
    first, second = kestra20.start(flow_id), kestra20.start(flow_id)
    for execution_id in (first, second):
        assert kestra20.wait_for_state(execution_id, {"PAUSED"}) == "PAUSED"
    kestra20.hook.resume_execution(first)

    async def resume_async() -> str:
        async with KestraAsyncHook(retry_limit=2, retry_delay=0.1) as hook:
            await hook.resume_execution(second)
            return hook._action_layout

    assert asyncio.run(resume_async()) == layout(kestra20)
    for execution_id in (first, second):
        assert kestra20.wait_for_state(execution_id, {"SUCCESS"}) == "SUCCESS"
