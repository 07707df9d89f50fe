"""Cut-over: the whole-DAG Kestra flow (Subflow tasks, Dag task, Schedule trigger, params as inputs)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_provider_kestra.migration.__main__ import main
from airflow_provider_kestra.migration.cutover import (
    KestraCutoverError,
    build_cutover_flow,
    delta_to_cron,
    translate_schedule,
)
from airflow_provider_kestra.migration.state import load_state
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from airflow_provider_kestra.hooks.kestra import KestraHook

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_FLOWS = EXAMPLES / "flows" / "airflow.examples.migration.orders"


def _dag(schedule: Any = None, *, branch: bool = False, **dag_kwargs: Any) -> Any:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import DAG
        from airflow.sdk.bases.operator import BaseOperator
    else:
        from airflow import DAG
        from airflow.models.baseoperator import BaseOperator

    class _Noop(BaseOperator):
        def execute(self, context: Any) -> None:
            return None

    with DAG(
        "etl.daily", schedule=schedule, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), **dag_kwargs
    ) as dag:
        extract, load = _Noop(task_id="extract"), _Noop(task_id="load")
        if branch:
            extract >> [_Noop(task_id="clean"), _Noop(task_id="score")] >> load
        else:
            extract >> _Noop(task_id="clean") >> load
    return dag


STATE = """version: 1
defaults: {namespace: company.etl}
tasks:
  extract:
    mode: kestra
    flow_id: extract
    inputs: {day: "{{ ds }}", region: "{{ params.region }}", run: "{{ run_id }}"}
  clean:
    mode: kestra
    flow_id: clean
    outputs: {key: rows}
    inputs: {rows: "{{ ti.xcom_pull(task_ids='extract')['rows'] | tojson }}"}
  score:
    mode: kestra
    flow_id: score
    outputs: {map: {value: score_value}}
  load:
    mode: kestra
    flow_id: load
    inputs:
      rows: "{{ ti.xcom_pull(task_ids='clean') }}"
      label: "batch-{{ ds_nodash }}"
"""


def _state(tmp_path: Path, text: str = STATE) -> Any:
    path = tmp_path / "etl.kestra-migration.yml"
    path.write_text(text)
    return load_state(path)


def test_a_chain_becomes_a_list_of_subflows_with_translated_inputs(tmp_path: Path) -> None:
    dag = _dag("0 6 * * *", params={"region": "emea"})
    flow = build_cutover_flow(dag, _state(tmp_path))
    document = yaml.safe_load(flow.source)

    assert (document["id"], document["namespace"]) == ("etl_daily", "company.etl")
    assert [t["id"] for t in document["tasks"]] == ["extract", "clean", "load"]
    extract, clean, load = document["tasks"]
    assert extract == {
        "id": "extract",
        "type": "io.kestra.plugin.core.flow.Subflow",
        "namespace": "company.etl",
        "flowId": "extract",
        "inputs": {
            "day": "{{ (trigger.date ?? execution.startDate) | date('yyyy-MM-dd') }}",
            "region": "{{ inputs.region }}",
            "run": "{{ execution.id }}",
        },
        "wait": True,
        "transmitFailed": True,
    }
    assert clean["inputs"] == {"rows": "{{ outputs.extract.outputs.rows | toJson }}"}
    assert load["inputs"] == {
        "rows": "{{ outputs.clean.outputs.rows }}",
        "label": "batch-{{ (trigger.date ?? execution.startDate) | date('yyyyMMdd') }}",
    }
    assert document["inputs"] == [{"id": "region", "type": "STRING", "defaults": "emea", "required": False}]
    assert document["triggers"] == [
        {
            "id": "schedule",
            "type": "io.kestra.plugin.core.trigger.Schedule",
            "cron": "0 6 * * *",
            "timezone": "UTC",
            "disabled": True,
        }
    ]
    assert "pause the Airflow DAG first" in flow.source


def test_a_branching_dag_becomes_one_dag_task_with_depends_on(tmp_path: Path) -> None:
    flow = build_cutover_flow(
        _dag(branch=True, params={"region": "emea"}), _state(tmp_path), enable_trigger=True
    )
    (pipeline,) = yaml.safe_load(flow.source)["tasks"]
    assert pipeline["type"] == "io.kestra.plugin.core.flow.Dag"
    assert [(e["task"]["id"], e.get("dependsOn")) for e in pipeline["tasks"]] == [
        ("extract", None),
        ("clean", ["extract"]),
        ("score", ["extract"]),
        ("load", ["clean", "score"]),
    ]
    assert "triggers" not in yaml.safe_load(flow.source)  # schedule=None
    assert any("no schedule" in note for note in flow.notes)


def test_excluded_tasks_are_left_out_and_their_dependencies_bridged(tmp_path: Path) -> None:
    # extract >> [clean, score] >> load, with clean excluded: load now depends on extract and score.
    text = STATE.replace("  clean:\n    mode: kestra", "  clean:\n    mode: airflow")
    text = text.replace(
        "defaults: {namespace: company.etl}",
        "defaults: {namespace: company.etl}\ncutover: {exclude: [clean]}",
    )
    text = text.replace("rows: \"{{ ti.xcom_pull(task_ids='clean') }}\"", "rows: []")
    flow = build_cutover_flow(_dag(branch=True, params={"region": "emea"}), _state(tmp_path, text))
    (pipeline,) = yaml.safe_load(flow.source)["tasks"]
    assert [(e["task"]["id"], e.get("dependsOn")) for e in pipeline["tasks"]] == [
        ("extract", None),
        ("score", ["extract"]),
        ("load", ["extract", "score"]),
    ]


def test_an_excluded_task_must_exist(tmp_path: Path) -> None:
    from airflow_provider_kestra.migration import check_state_against_dag
    from airflow_provider_kestra.migration.state import KestraMigrationStateError

    state = _state(tmp_path, STATE.replace("tasks:", "cutover: {exclude: [deploy]}\ntasks:"))
    with pytest.raises(
        KestraMigrationStateError, match=r"cutover\.exclude: no task 'deploy' in DAG etl\.daily"
    ):
        check_state_against_dag(state, _dag(branch=True))


def test_cut_over_waits_until_every_task_is_in_kestra_mode(tmp_path: Path) -> None:
    state = _state(
        tmp_path, STATE.replace("mode: kestra\n    flow_id: clean", "mode: shadow\n    flow_id: clean")
    )
    with pytest.raises(KestraCutoverError, match=r"every task in kestra mode .* not yet: clean \(shadow\)"):
        build_cutover_flow(_dag(params={"region": "emea"}), state)


def test_untranslatable_inputs_name_the_task_and_the_way_out(tmp_path: Path) -> None:
    text = STATE.replace('"{{ run_id }}"', '"{{ macros.ds_add(ds, 1) }}"').replace(
        'label: "batch-{{ ds_nodash }}"', 'label: "{% if params.region %}x{% endif %}"'
    )
    with pytest.raises(KestraCutoverError) as caught:
        build_cutover_flow(_dag(params={"region": "emea"}), _state(tmp_path, text))
    message = str(caught.value)
    assert "task extract: input 'run': {{ macros.ds_add(ds, 1) }} has no known Kestra equivalent" in message
    assert "under tasks.extract.kestra_inputs.run" in message
    assert "task load: input 'label': Jinja statements/comments" in message


def test_kestra_inputs_replace_what_cannot_be_translated(tmp_path: Path) -> None:
    text = STATE.replace('"{{ run_id }}"', '"{{ macros.ds_add(ds, 1) }}"').replace(
        "    flow_id: extract\n",
        "    flow_id: extract\n    kestra_inputs: {run: \"{{ trigger.date | dateAdd(1, 'DAYS') }}\"}\n",
    )
    flow = build_cutover_flow(_dag(params={"region": "emea"}), _state(tmp_path, text))
    assert (
        yaml.safe_load(flow.source)["tasks"][0]["inputs"]["run"] == "{{ trigger.date | dateAdd(1, 'DAYS') }}"
    )


def test_schedules_that_translate(tmp_path: Path) -> None:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import CronDataIntervalTimetable, CronTriggerTimetable
    else:
        from airflow.timetables.interval import CronDataIntervalTimetable
        from airflow.timetables.trigger import CronTriggerTimetable

    def triggers(schedule: Any) -> tuple[list[dict[str, Any]], list[str]]:
        problems: list[str] = []
        result = translate_schedule(_dag(schedule), problems)
        assert problems == []
        return result

    paris, _ = triggers(CronTriggerTimetable("30 5 * * 1-5", timezone="Europe/Paris"))
    assert [(t["cron"], t["timezone"]) for t in paris] == [("30 5 * * 1-5", "Europe/Paris")]
    interval, notes = triggers(CronDataIntervalTimetable("0 0 * * *", timezone="UTC"))
    assert interval[0]["cron"] == "0 0 * * *"
    assert "data_interval_end" in notes[0]
    every_15, notes = triggers(timedelta(minutes=15))
    assert every_15[0]["cron"] == "*/15 * * * *"
    assert "Kestra fires on the clock" in notes[0]


@pytest.mark.parametrize(
    ("delta", "cron"),
    [
        (timedelta(minutes=1), "* * * * *"),
        (timedelta(minutes=20), "*/20 * * * *"),
        (timedelta(hours=1), "0 * * * *"),
        (timedelta(hours=6), "0 */6 * * *"),
        (timedelta(days=1), "0 0 * * *"),
        (timedelta(weeks=1), "0 0 * * 0"),
        (timedelta(minutes=7), None),
        (timedelta(hours=5), None),
        (timedelta(days=2), None),
        (timedelta(seconds=90), None),
    ],
)
def test_timedeltas_become_crons_only_when_exact(delta: timedelta, cron: str | None) -> None:
    assert delta_to_cron(delta) == cron


def _schedule_problem(schedule: Any) -> str:
    problems: list[str] = []
    triggers, _ = translate_schedule(_dag(schedule), problems)
    assert triggers == []
    assert len(problems) == 1
    return problems[0]


def test_schedules_that_do_not_translate_are_refused_with_the_reason() -> None:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import Asset, EventsTimetable

        asset: Any = Asset("s3://bucket/orders")
    else:
        from airflow.datasets import Dataset
        from airflow.timetables.events import EventsTimetable

        asset = Dataset("s3://bucket/orders")
    assert "asset/dataset schedule" in _schedule_problem([asset])
    assert "Flow trigger" in _schedule_problem([asset])
    assert "@once" in _schedule_problem("@once")
    assert "every 7:00:00 cannot be written as a cron" in _schedule_problem(timedelta(hours=7))
    events = EventsTimetable(event_dates=[datetime(2025, 3, 1, tzinfo=timezone.utc)])
    assert "custom timetable EventsTimetable cannot be translated" in _schedule_problem(events)
    assert "--without-schedule" in _schedule_problem("@once")


def test_without_schedule_generates_the_flow_and_says_what_was_dropped(tmp_path: Path) -> None:
    flow = build_cutover_flow(
        _dag("@once", params={"region": "emea"}), _state(tmp_path), without_schedule=True
    )
    assert "triggers" not in yaml.safe_load(flow.source)
    assert any("@once" in note and "without a trigger" in note for note in flow.notes)


def _example_in(tmp_path: Path, mode: str) -> Path:
    """A copy of the example DAG whose state file has every task in ``mode``."""
    dag_file = tmp_path / "example_kestra_migration.py"
    shutil.copy(EXAMPLES / "example_kestra_migration.py", dag_file)
    state = yaml.safe_load((EXAMPLES / "example_kestra_migration.kestra-migration.yml").read_text())
    for task_id, spec in state["tasks"].items():
        if task_id not in state["cutover"]["exclude"]:
            spec["mode"] = mode
    (tmp_path / "example_kestra_migration.kestra-migration.yml").write_text(yaml.safe_dump(state))
    return dag_file


def test_cutover_flow_passes_kestra_validation(
    kestra_hook: KestraHook, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example DAG, all in kestra mode, cut over with the CLI: Kestra validates and deploys the flow."""
    dag_file = _example_in(tmp_path, "kestra")
    kestra_hook.deploy_flows([p.read_text() for p in sorted(EXAMPLE_FLOWS.glob("*.yml"))])
    output = tmp_path / "cutover.yml"

    args = ["cutover", "--dag-file", str(dag_file), "--dag-id", "example_kestra_migration"]
    code = main([*args, "--output", str(output), "--deploy"])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "Kestra validated flow airflow.examples.migration.orders.example_kestra_migration" in err
    assert "airflow dags pause example_kestra_migration" in err
    deployed = kestra_hook.get_flow("airflow.examples.migration.orders", "example_kestra_migration")
    assert yaml.safe_load(deployed["source"]) == yaml.safe_load(output.read_text())
    document = yaml.safe_load(output.read_text())
    assert document["tasks"][0]["type"] == "io.kestra.plugin.core.flow.Dag"
    assert document["triggers"][0]["cron"] == "0 6 * * *"
    assert document["triggers"][0]["timezone"] == "Europe/Paris"


def test_the_cut_over_flow_runs_the_pipeline_in_kestra(kestra_hook: KestraHook, tmp_path: Path) -> None:
    """The generated flow, run in the simulator, gives the same result as the Airflow DAG did."""
    from airflow_provider_kestra.migration.__main__ import load_dags

    dag_file = _example_in(tmp_path, "kestra")
    dag = load_dags(dag_file)["example_kestra_migration"]
    flow = build_cutover_flow(dag, load_state(tmp_path / "example_kestra_migration.kestra-migration.yml"))
    kestra_hook.deploy_flows([p.read_text() for p in sorted(EXAMPLE_FLOWS.glob("*.yml"))] + [flow.source])

    started = kestra_hook.create_execution(flow.namespace, flow.flow_id, inputs={"region": "apac"})
    final = kestra_hook.wait_for_execution(started["id"], timeout=60, poll_interval=0.5)

    assert final["state"]["current"] == "SUCCESS"
    outputs = kestra_hook.get_outputs(final, include_task_outputs=True)["task_outputs"]
    assert outputs["publish"]["outputs"] == {"text": "orders from apac: 3 orders"}
    assert outputs["count_orders"]["outputs"] == {"count": 3, "region": "APAC"}


def test_cutover_cli_refuses_a_dag_still_in_shadow_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dag_file = _example_in(tmp_path, "shadow")
    code = main(["cutover", "--dag-file", str(dag_file), "--dag-id", "example_kestra_migration"])
    assert code == 1
    assert "not yet: extract_orders (shadow), count_orders (shadow)" in capsys.readouterr().err
