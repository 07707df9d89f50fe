"""State-file errors are caught at DAG-parse time, with a message naming the file and the task."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kestra.migration import migrate_to_kestra, resolve_state_path
from airflow_provider_kestra.migration.state import (
    KestraMigrationStateError,
    KestraOutputMapping,
    load_state,
)
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def _dag(dag_id: str = "state_checks") -> Any:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import DAG
        from airflow.sdk.bases.operator import BaseOperator
    else:
        from airflow import DAG
        from airflow.models.baseoperator import BaseOperator

    class _Noop(BaseOperator):
        def execute(self, context: Any) -> int:
            return 1

    with DAG(dag_id, schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)) as dag:
        _Noop(task_id="extract") >> _Noop(task_id="load")
    return dag


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "etl.kestra-migration.yml"
    path.write_text(text)
    dag = _dag()
    before = dict(dag.task_dict)
    with pytest.raises(KestraMigrationStateError) as caught:
        migrate_to_kestra(dag, state_file=path)
    assert dag.task_dict == before  # nothing half-applied
    message = str(caught.value)
    assert str(path) in message
    return message


def test_unknown_task_id_is_named_with_the_file(tmp_path: Path) -> None:
    message = _error(tmp_path, "tasks:\n  transfrom: {mode: airflow}\n")
    assert "task 'transfrom': no such task in DAG state_checks (tasks: extract, load)" in message


def test_shadow_or_kestra_mode_without_a_flow_is_refused(tmp_path: Path) -> None:
    message = _error(
        tmp_path, "tasks:\n  extract: {mode: kestra, namespace: company.team}\n  load: {mode: shadow}\n"
    )
    assert (
        "task 'extract': mode kestra needs the Kestra flow that replaces the task; missing flow_id" in message
    )
    assert (
        "task 'load': mode shadow needs the Kestra flow that replaces the task; missing namespace and flow_id"
        in (message)
    )
    assert "2 problem(s)" in message


def test_bad_jinja_template_is_caught_at_parse_time(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "tasks:\n  load:\n    mode: shadow\n    namespace: company.team\n    flow_id: load\n"
        "    inputs: {day: '{{ ds }', rows: ['{{ ti.xcom_pull(task_ids=\"extract\") }}']}\n",
    )
    assert "task 'load': input 'day': bad Jinja template '{{ ds }'" in message
    assert "rows" not in message


def test_bad_mode_lists_the_modes(tmp_path: Path) -> None:
    message = _error(tmp_path, "tasks:\n  load: {mode: kestraa, namespace: a, flow_id: b}\n")
    assert "task 'load': mode must be one of airflow, shadow, kestra; got 'kestraa'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks: [extract]\n", "tasks: must be a mapping"),
        ("taks: {}\n", "top level: unknown key(s) ['taks']"),
        (
            "tasks:\n  load: {mode: shadow, namespace: a, flow_id: b, budget: -1}\n",
            "budget must be a non-negative",
        ),
        ("tasks:\n  load: {mode: shadow, namespace: a, flow_id: b, on_mismatch: explode}\n", "on_mismatch"),
        ("tasks:\n  load: {mode: kestra, namespace: a, flow_id: b, outputs: {keys: x}}\n", "outputs must be"),
        (
            "tasks:\n  load: {mode: kestra, namespace: a, flow_id: b, operator: {retries: 3}}\n",
            "operator.retries",
        ),
        (
            "tasks:\n  load: {mode: kestra, namespace: a, flow_id: b, operator: {timeout: yes}}\n",
            "operator.timeout",
        ),
        ("dag_id: other\ntasks: {}\n", "dag_id is 'other' but the file was applied to DAG 'state_checks'"),
        ("tasks: {load: [\n", "is not valid YAML"),
    ],
)
def test_other_mistakes_are_explained(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_a_missing_state_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(
        KestraMigrationStateError, match=r"(?s)etl\.kestra-migration\.yml: 1 problem.*does not exist"
    ):
        migrate_to_kestra(_dag(), state_file=tmp_path / "etl.kestra-migration.yml")


def test_state_file_sits_next_to_the_dag_file_or_in_the_configured_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = _dag("etl")
    dag.fileloc = str(tmp_path / "dags" / "etl_pipeline.py")
    monkeypatch.delenv("AIRFLOW__KESTRA__MIGRATION_STATE_FOLDER", raising=False)
    assert resolve_state_path(dag) == tmp_path / "dags" / "etl_pipeline.kestra-migration.yml"
    monkeypatch.setenv("AIRFLOW__KESTRA__MIGRATION_STATE_FOLDER", str(tmp_path / "states"))
    assert resolve_state_path(dag) == tmp_path / "states" / "etl.kestra-migration.yml"


def test_defaults_apply_and_shorthand_modes_parse(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        "defaults: {namespace: company.team, budget: 5, on_mismatch: fail, operator: {deferrable: true}}\n"
        "tasks:\n  extract: airflow\n"
        "  load: {mode: kestra, flow_id: load, outputs: {map: {rows: row_count}}}\n"
    )
    state = load_state(path)
    load = state.tasks["load"]
    assert (load.namespace, load.budget, load.on_mismatch, load.operator_args) == (
        "company.team",
        5.0,
        "fail",
        {"deferrable": True},
    )
    assert load.outputs == KestraOutputMapping(kind="map", mapping=(("rows", "row_count"),))
    assert state.mode_of("extract") == "airflow"
    assert state.mode_of("not_named") == "airflow"


def test_output_mapping_shapes() -> None:
    outputs = {"total": 3, "rows": [1, 2]}
    assert KestraOutputMapping().apply(outputs) == outputs
    assert KestraOutputMapping(kind="key", key="total").apply(outputs) == 3
    assert KestraOutputMapping(kind="map", mapping=(("n", "total"),)).apply(outputs) == {"n": 3}
    with pytest.raises(KeyError, match=r"\['missing'\] not found; the flow returned \['rows', 'total'\]"):
        KestraOutputMapping(kind="key", key="missing").apply(outputs)


def test_applying_twice_changes_nothing_more(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        "tasks:\n  extract: {mode: kestra, namespace: a, flow_id: b}\n"
        "  load: {mode: shadow, namespace: a, flow_id: c}\n"
    )
    dag = _dag()
    migrate_to_kestra(dag, state_file=path)
    proxy, hook = dag.task_dict["extract"], dag.task_dict["load"]._pre_execute_hook
    migrate_to_kestra(dag, state_file=path)
    assert dag.task_dict["extract"] is proxy
    assert dag.task_dict["load"]._pre_execute_hook == hook
    assert dag.task_dict["load"].upstream_task_ids == {"extract"}


def test_mapped_tasks_can_only_stay_in_airflow_mode(tmp_path: Path) -> None:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import DAG, task
    else:
        from airflow import DAG
        from airflow.decorators import task

    with DAG("mapped", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)) as dag:

        @task
        def square(x: int) -> int:
            return x * x

        square.expand(x=[1, 2])
    path = tmp_path / "s.yml"
    path.write_text("tasks:\n  square: {mode: kestra, namespace: a, flow_id: b}\n")
    with pytest.raises(KestraMigrationStateError, match="mode kestra is not supported for mapped tasks"):
        migrate_to_kestra(dag, state_file=path)


def test_parsing_a_migrated_dag_calls_and_imports_no_http_client(tmp_path: Path) -> None:
    """The example DAG (one task in each mode) parsed in a fresh interpreter: no HTTP library, no hook."""
    script = f"""
import sys, runpy
import airflow.sdk  # Airflow's own imports are not the provider's
before = set(sys.modules)
import socket
def refuse(*args, **kwargs):
    raise AssertionError("network access at parse time")
socket.socket.connect = refuse
dag = runpy.run_path({str(EXAMPLES / "example_kestra_migration.py")!r})["dag"]
new = set(sys.modules) - before
print(sorted(m for m in new if m.split(".")[0] in ("requests", "httpx", "urllib3")
             or m.startswith("airflow_provider_kestra.hooks")))
print(type(dag.task_dict["extract_orders"]).__name__)
"""
    if not AIRFLOW_V_3_0_PLUS:
        script = script.replace("import airflow.sdk", "import airflow.models")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-2:] == ["[]", "KestraMigrationProxyOperator"]
