"""Each migration mode on a real DAG run (``dag.test()``) against the Kestra simulator.

The DAG is the same in every test (extract -> count -> load); only the state file changes, as it would in
a real migration. ``count`` is the task being migrated; its Kestra flow computes the same result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from migration_flows import ALL_FLOWS, NAMESPACE

from airflow_provider_kestra.migration import migrate_to_kestra
from airflow_provider_kestra.migration.__main__ import main
from airflow_provider_kestra.migration.operators import KestraMigrationProxyOperator
from airflow_provider_kestra.migration.report import SHADOW_XCOM_KEY, KestraParityLedger
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_kestra.hooks.kestra import KestraHook

pytestmark = pytest.mark.integration

COUNT_INPUTS = """    inputs:
      orders: "{{ ti.xcom_pull(task_ids='extract')['orders'] | tojson }}"
      region: "{{ ti.xcom_pull(task_ids='extract')['region'] }}"
"""


def _task_decorator() -> Any:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import task
    else:
        from airflow.decorators import task
    return task


def count_dag(make_dag: Callable[..., Any], *, airflow_offset: int = 0, **default_args: Any) -> Any:
    """extract -> count -> load; ``airflow_offset`` makes the Airflow count wrong (a real mismatch)."""
    task = _task_decorator()
    with make_dag(**default_args) as dag:

        @task
        def extract() -> dict[str, Any]:
            return {"region": "emea", "orders": [{"id": 1}, {"id": 2}, {"id": 3}]}

        @task
        def count(batch: dict[str, Any]) -> dict[str, Any]:
            return {"count": len(batch["orders"]) + airflow_offset, "region": batch["region"].upper()}

        @task
        def load(counted: dict[str, Any]) -> str:
            return f"loaded {counted['count']} {counted['region']}"

        load(count(extract()))
    return dag


@pytest.fixture
def flows(kestra_hook: KestraHook) -> KestraHook:
    kestra_hook.deploy_flows(ALL_FLOWS)
    return kestra_hook


def _state(mode: str, flow_id: str = "count", extra: str = "") -> str:
    return f"""version: 1
defaults:
  namespace: {NAMESPACE}
tasks:
  count:
    mode: {mode}
    flow_id: {flow_id}
{COUNT_INPUTS}{extra}"""


def _ledger(dag_id: str, tmp_path: Path) -> list[dict[str, Any]]:
    return KestraParityLedger(tmp_path / "ledger").read(dag_id)


def test_airflow_mode_leaves_the_task_alone(flows, make_dag, run_dag, write_state, dag_id, tmp_path) -> None:
    dag = count_dag(make_dag)
    original = dag.task_dict["count"]
    plan = migrate_to_kestra(dag, state_file=write_state(_state("airflow")))

    assert dag.task_dict["count"] is original
    assert plan.tasks_in("airflow") == ["count", "extract", "load"]
    run = run_dag(dag)
    assert run.state == "success"
    assert run.xcom("load") == "loaded 3 EMEA"
    assert run.xcom("count", SHADOW_XCOM_KEY) is None
    assert (
        flows.search_executions(namespace=NAMESPACE, flow_id="count", labels={"airflow.dag_id": dag_id}) == []
    )
    assert _ledger(dag_id, tmp_path) == []


def test_shadow_match_keeps_the_airflow_result_and_records_a_match(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path
) -> None:
    dag = count_dag(make_dag)
    migrate_to_kestra(dag, state_file=write_state(_state("shadow")))

    run = run_dag(dag)

    assert run.state == "success"
    assert run.xcom("count") == {"count": 3, "region": "EMEA"}
    assert run.xcom("load") == "loaded 3 EMEA"
    record = run.xcom("count", SHADOW_XCOM_KEY)
    assert record["verdict"] == "match", record
    assert record["differences"] == []
    assert record["kestra_state"] == "SUCCESS"
    assert isinstance(record["airflow_seconds"], float)
    assert isinstance(record["kestra_seconds"], float)
    executions = flows.search_executions(
        namespace=NAMESPACE, flow_id="count", labels={"airflow.dag_id": dag_id, "airflow.migration": "shadow"}
    )
    assert [e["id"] for e in executions] == [record["execution_id"]]
    ledger = _ledger(dag_id, tmp_path)
    assert [(r["task_id"], r["verdict"], r["execution_id"]) for r in ledger] == [
        ("count", "match", record["execution_id"])
    ]
    assert "Kestra shadow of count (flow airflow.migration.tests.count" in run.output
    assert "MATCH" in run.output


def test_shadow_mismatch_is_logged_with_a_diff_and_does_not_fail_the_dag(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path, capfd
) -> None:
    dag = count_dag(make_dag, airflow_offset=1)
    migrate_to_kestra(dag, state_file=write_state(_state("shadow")))

    run = run_dag(dag)

    assert run.state == "success"
    assert run.xcom("load") == "loaded 4 EMEA"  # downstream sees Airflow's (wrong) result
    record = run.xcom("count", SHADOW_XCOM_KEY)
    assert record["verdict"] == "mismatch"
    assert record["differences"] == [{"path": "$.count", "airflow": "4", "kestra": "3"}]
    assert "MISMATCH" in run.output
    assert "$.count: airflow=4  kestra=3" in run.output
    assert [r["verdict"] for r in _ledger(dag_id, tmp_path)] == ["mismatch"]
    capfd.readouterr()
    assert main(["report", "--dag-id", dag_id]) == 0
    report = capfd.readouterr().out
    assert f"Latest mismatch of count: run {run.run_id}, Kestra execution {record['execution_id']}" in report
    assert "  $.count: airflow=4  kestra=3" in report
    assert main(["report", "--dag-id", dag_id, "--json"]) == 0
    summary = json.loads(capfd.readouterr().out)["tasks"][0]
    assert (summary["runs"], summary["verdicts"]["mismatch"], summary["ready_for_kestra_mode"]) == (
        1,
        1,
        False,
    )


def test_shadow_mismatch_fails_the_dag_when_the_state_file_says_so(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path
) -> None:
    dag = count_dag(make_dag, airflow_offset=1)
    migrate_to_kestra(dag, state_file=write_state(_state("shadow", extra="    on_mismatch: fail\n")))

    run = run_dag(dag)

    assert run.state == "failed"
    assert run.task_states["count"] == "failed"
    assert run.task_states["load"] == "upstream_failed"
    assert "on_mismatch: fail" in run.output
    assert [r["verdict"] for r in _ledger(dag_id, tmp_path)] == ["mismatch"]


def test_shadow_comparison_ignores_keys_named_in_the_state_file(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path
) -> None:
    dag = count_dag(make_dag, airflow_offset=1)
    migrate_to_kestra(
        dag, state_file=write_state(_state("shadow", extra="    compare: {ignore_keys: [count]}\n"))
    )

    run = run_dag(dag)

    assert run.xcom("count", SHADOW_XCOM_KEY)["verdict"] == "match"


def test_shadow_over_budget_gives_no_verdict_and_leaves_the_execution_running(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path
) -> None:
    dag = count_dag(make_dag)
    migrate_to_kestra(dag, state_file=write_state(_state("shadow", flow_id="slow", extra="    budget: 1\n")))

    run = run_dag(dag)

    assert run.state == "success"
    assert run.xcom("load") == "loaded 3 EMEA"
    record = run.xcom("count", SHADOW_XCOM_KEY)
    assert record["verdict"] == "no_verdict"
    execution_id = record["execution_id"]
    assert execution_id in record["message"]
    assert "/executions/" in record["execution_url"]
    assert record["execution_url"] in record["message"]
    try:
        assert flows.get_execution(execution_id)["state"]["current"] == "RUNNING"  # never killed on a guess
    finally:
        flows.kill_execution(execution_id)


@pytest.mark.parametrize(
    ("flow_id", "verdict"),
    [("failing", "kestra_failed"), ("does_not_exist", "error")],
    ids=["failed", "missing"],
)
def test_a_broken_shadow_run_is_recorded_but_never_fails_the_airflow_task(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path, flow_id: str, verdict: str
) -> None:
    dag = count_dag(make_dag)
    migrate_to_kestra(dag, state_file=write_state(_state("shadow", flow_id=flow_id)))

    run = run_dag(dag)

    assert run.state == "success"
    assert run.xcom("load") == "loaded 3 EMEA"
    assert run.xcom("count", SHADOW_XCOM_KEY)["verdict"] == verdict
    assert [r["verdict"] for r in _ledger(dag_id, tmp_path)] == [verdict]


def test_a_failed_airflow_task_records_where_its_shadow_run_is(
    flows, make_dag, run_dag, write_state, dag_id, tmp_path
) -> None:
    task = _task_decorator()
    with make_dag() as dag:

        @task
        def extract() -> dict[str, Any]:
            return {"region": "emea", "orders": [{"id": 1}]}

        @task
        def count(batch: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("warehouse unreachable")

        count(extract())
    migrate_to_kestra(dag, state_file=write_state(_state("shadow")))

    run = run_dag(dag)

    assert run.state == "failed"
    assert "warehouse unreachable" in run.output  # the task's own failure, not hidden
    (record,) = _ledger(dag_id, tmp_path)
    assert record["verdict"] == "airflow_failed"
    assert record["execution_id"] in record["execution_url"]
    assert record["kestra_state"] in ("CREATED", "RUNNING", "SUCCESS")
    assert "nothing to compare" in record["message"]
    execution = flows.get_execution(record["execution_id"])
    assert {"key": "airflow.migration", "value": "shadow"} in execution["labels"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_kestra_mode_replaces_the_task_and_downstream_reads_the_mapped_outputs(
    flows, make_dag, run_dag, write_state, dag_id, deferrable: bool
) -> None:
    dag = count_dag(make_dag, retries=2, pool="default_pool")
    extra = "    outputs: {map: {count: count, region: region}}\n"
    extra += f"    operator: {{deferrable: {json.dumps(deferrable)}, poll_interval: 0.5}}\n"
    migrate_to_kestra(dag, state_file=write_state(_state("kestra", extra=extra)))

    proxy = dag.task_dict["count"]
    assert isinstance(proxy, KestraMigrationProxyOperator)
    assert (proxy.retries, proxy.pool, proxy.deferrable) == (2, "default_pool", deferrable)
    assert proxy.upstream_task_ids == {"extract"}
    assert proxy.downstream_task_ids == {"load"}

    run = run_dag(dag)

    assert run.state == "success", run.task_states
    assert run.xcom("count") == {"count": 3, "region": "EMEA"}
    assert run.xcom("load") == "loaded 3 EMEA"
    executions = flows.search_executions(
        namespace=NAMESPACE, flow_id="count", labels={"airflow.dag_id": dag_id, "airflow.task_id": "count"}
    )
    assert len(executions) == 1
    assert run.xcom("count", "execution_id") == executions[0]["id"]
