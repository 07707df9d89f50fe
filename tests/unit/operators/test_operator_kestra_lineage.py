"""OpenLineage facets of KestraTriggerExecutionOperator, with apache-airflow-providers-openlineage installed.

The Kestra execution is a child run of the Airflow task: the operator's ``OperatorLineage`` carries a
``kestra_execution`` run facet, and START + COMPLETE/FAIL events are emitted for the execution with a
``parent`` facet naming the task run the provider itself computes. Executions run in the simulator; the
emitted events are captured at the provider's adapter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator

pytest.importorskip("airflow.providers.openlineage")

FLOW = """id: etl
namespace: company.team
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ inputs.fail }}"
"""


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraSimulator]:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="2.0") as simulator:
        monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", simulator.connection_uri())
        hook = KestraHook()
        hook.upsert_flow(FLOW)
        hook.close()
        yield simulator


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every event sent through the OpenLineage provider's adapter."""
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

    events: list[Any] = []
    monkeypatch.setattr(OpenLineageAdapter, "emit", lambda self, event: events.append(event))
    return events


def run_execution(fail: bool) -> str:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    hook = KestraHook()
    try:
        execution_id = str(hook.create_execution("company.team", "etl", inputs={"fail": fail})["id"])
        hook.wait_for_execution(execution_id, timeout=20, poll_interval=0.05)
        return execution_id
    finally:
        hook.close()


def task_instance(execution_id: str | None = None) -> Any:
    """What the provider's macros read from a task instance (and the XCom the operator pushed); Airflow 2
    reads the logical date from the task instance itself."""
    logical_date = datetime(2026, 1, 1, tzinfo=timezone.utc)
    dag_run = SimpleNamespace(conf={}, clear_number=0, logical_date=logical_date, run_after=None)
    return SimpleNamespace(
        logical_date=logical_date,
        dag_id="nightly_dag",
        task_id="run_etl",
        try_number=1,
        map_index=-1,
        dag_run=dag_run,
        get_template_context=lambda: {"dag_run": dag_run},
        xcom_pull=lambda task_ids, key: execution_id if key == "execution_id" else None,
    )


def operator() -> KestraTriggerExecutionOperator:
    return KestraTriggerExecutionOperator(task_id="run_etl", namespace="company.team", flow_id="etl")


def test_success_gives_a_child_run_with_the_task_as_parent(sim: KestraSimulator, emitted: list[Any]) -> None:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.providers.openlineage.plugins import macros

    execution_id = run_execution(fail=False)
    op = operator()
    op._execution_id = execution_id
    ti = task_instance()

    lineage = op.get_openlineage_facets_on_complete(ti)

    assert isinstance(lineage, OperatorLineage)
    facet = lineage.run_facets["kestra_execution"]
    url = f"{sim.url}/ui/main/executions/company.team/etl/{execution_id}"
    assert (facet.executionId, facet.namespace, facet.flowId, facet.revision, facet.state, facet.url) == (
        execution_id, "company.team", "etl", 1, "SUCCESS", url,
    )  # fmt: skip
    assert [e.eventType.value for e in emitted] == ["START", "COMPLETE"]
    child = emitted[-1]
    assert child.job.namespace == f"kestra://127.0.0.1:{sim.port}"
    assert child.job.name == "company.team.etl"
    assert uuid.UUID(child.run.runId)  # OpenLineage run ids are UUIDs...
    assert child.run.runId == emitted[0].run.runId  # ...the same for both events of the execution
    assert child.run.facets["kestra_execution"].executionId == execution_id
    parent = child.run.facets["parent"]
    assert parent.run.runId == macros.lineage_run_id(ti)
    assert parent.job.name == "nightly_dag.run_etl"
    assert parent.job.namespace == macros.lineage_job_namespace()
    assert parent.root.job.name == "nightly_dag"
    assert sim.password not in json.dumps([str(e) for e in emitted])


def test_failed_execution_is_a_failed_child_run(sim: KestraSimulator, emitted: list[Any]) -> None:
    execution_id = run_execution(fail=True)
    op = operator()  # a fresh operator object (another worker): the id comes from XCom

    lineage = op.get_openlineage_facets_on_failure(task_instance(execution_id))

    assert lineage.run_facets["kestra_execution"].state == "FAILED"
    assert [e.eventType.value for e in emitted] == ["START", "FAIL"]


def test_no_execution_no_lineage_and_kestra_errors_never_fail_the_task(
    sim: KestraSimulator, emitted: list[Any]
) -> None:
    assert operator().get_openlineage_facets_on_complete(task_instance(None)).run_facets == {}
    sim.faults.fail(500, path="executions/")
    op = operator()
    op.hook_params = {"retry_limit": 0}
    op._execution_id = "doesNotMatter"
    assert op.get_openlineage_facets_on_complete(task_instance()).run_facets == {}
    assert emitted == []


def test_parent_labels_for_kestra() -> None:
    from airflow.providers.openlineage.plugins import macros

    from airflow_provider_kestra.utils.lineage import openlineage_parent_labels

    ti = task_instance()
    labels = openlineage_parent_labels(ti)
    assert labels == {"airflow.openlineage.parent_id": macros.lineage_parent_id(ti)}
    _namespace, job, run_id = labels["airflow.openlineage.parent_id"].split("/")
    assert job == "nightly_dag.run_etl" and uuid.UUID(run_id)


def test_importing_the_operator_does_not_load_openlineage() -> None:
    probe = (
        "import sys; from airflow_provider_kestra.version_compat import BaseOperator;"
        "before = set(sys.modules);"
        "import airflow_provider_kestra.operators.kestra; import json;"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before if 'openlineage' in m)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
