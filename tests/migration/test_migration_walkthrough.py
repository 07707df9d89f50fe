"""The example DAG walks through every stage against the simulator, changing only its state file.

airflow -> shadow (all four tasks match, the report says they are ready) -> kestra (every task is a proxy;
the DAG's result is unchanged) -> cut-over flow generated from the same files.
"""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_provider_kestra.migration.__main__ import main
from airflow_provider_kestra.migration.operators import KestraMigrationProxyOperator
from airflow_provider_kestra.migration.report import SHADOW_XCOM_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_kestra.hooks.kestra import KestraHook

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "example_kestra_migration"
TASKS = ["count_orders", "describe_batch", "extract_orders", "publish"]
RESULT = {"message": "orders from emea: 3 orders"}


def _stage(folder: Path, mode: str) -> Any:
    """Set every task of the example's state file to ``mode`` and parse the (unchanged) DAG file again."""
    state = yaml.safe_load((EXAMPLES / f"{DAG_ID}.kestra-migration.yml").read_text())
    for task_id in TASKS:
        state["tasks"][task_id]["mode"] = mode
        state["tasks"][task_id].setdefault("operator", {})["poll_interval"] = 0.5
    (folder / f"{DAG_ID}.kestra-migration.yml").write_text(yaml.safe_dump(state))
    return runpy.run_path(str(folder / f"{DAG_ID}.py"))["dag"]


def test_example_dag_walks_through_the_stages(
    kestra_hook: KestraHook,
    run_dag: Callable[[Any], Any],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(EXAMPLES / f"{DAG_ID}.py", folder / f"{DAG_ID}.py")
    flows = Path("flows") / "airflow.examples.migration.orders"
    shutil.copytree(EXAMPLES / flows, folder / flows)  # deployed by the DAG's first task
    dag_text = (folder / f"{DAG_ID}.py").read_text()

    # 1. Airflow only.
    dag = _stage(folder, "airflow")
    assert not any(isinstance(t, KestraMigrationProxyOperator) for t in dag.task_dict.values())
    assert dag.task_dict["extract_orders"].upstream_task_ids == {"deploy_flows"}
    run = run_dag(dag)
    assert run.state == "success"
    assert run.xcom("publish") == RESULT

    # 2. Shadow: Airflow's results are used, every Kestra flow agrees.
    dag = _stage(folder, "shadow")
    run = run_dag(dag)
    assert run.state == "success"
    assert run.xcom("publish") == RESULT
    assert {t: run.xcom(t, SHADOW_XCOM_KEY)["verdict"] for t in TASKS} == dict.fromkeys(TASKS, "match")
    capfd.readouterr()
    assert main(["report", "--dag-id", DAG_ID]) == 0
    report = capfd.readouterr().out
    rows = [line.split() for line in report.splitlines() if line.split() and line.split()[0] in TASKS]
    assert [(row[0], row[2], row[3], row[-1]) for row in rows] == [(t, "1", "1", "yes") for t in TASKS]

    # 3. Kestra: every task is its flow; downstream tasks read the same XComs, the result is unchanged.
    dag = _stage(folder, "kestra")
    assert all(isinstance(dag.task_dict[t], KestraMigrationProxyOperator) for t in TASKS)
    assert dag.task_dict["publish"].upstream_task_ids == {"count_orders", "describe_batch"}
    run = run_dag(dag)
    assert run.state == "success", run.task_states
    assert run.xcom("publish") == RESULT
    assert run.xcom("publish", "message") == RESULT["message"]  # multiple_outputs carried over
    assert run.xcom("describe_batch") == "orders from emea"
    assert run.xcom("count_orders") == {"count": 3, "region": "EMEA"}

    # 4. Cut-over: one flow for the whole DAG, generated from the same files.
    output = tmp_path / "cutover.yml"
    assert (
        main(
            [
                "cutover",
                "--dag-file",
                str(folder / f"{DAG_ID}.py"),
                "--dag-id",
                DAG_ID,
                "--output",
                str(output),
            ]
        )
        == 0
    )
    document = yaml.safe_load(output.read_text())
    entries = document["tasks"][0]["tasks"]
    assert [(e["task"]["flowId"], e.get("dependsOn")) for e in entries] == [
        ("extract_orders", None),
        ("count_orders", ["extract_orders"]),
        ("describe_batch", ["extract_orders"]),
        ("publish_orders", ["count_orders", "describe_batch"]),
    ]
    assert (folder / f"{DAG_ID}.py").read_text() == dag_text  # no stage touched the DAG file
