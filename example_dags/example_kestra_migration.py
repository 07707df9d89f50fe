"""Example 6 — migrating a DAG to Kestra one task at a time, driven by a state file.

The DAG below is a plain Airflow DAG. The last line, ``migrate_to_kestra(dag)``, reads
``example_kestra_migration.kestra-migration.yml`` next to this file and, for each task it names, leaves it
in Airflow, shadows it (Airflow's result is used; the Kestra flow runs too and the results are compared)
or replaces it by its Kestra flow (downstream tasks read the same XCom). Moving a task to the next stage is
an edit of the YAML file, never of this file. See docs/migration.md.

The Kestra flows are in ``flows/airflow.examples.migration.orders/``; the first task deploys them (it stays
an Airflow task and is left out of the cut-over flow: ``cutover.exclude`` in the state file).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_provider_kestra.migration import migrate_to_kestra
from airflow_provider_kestra.operators.kestra import KestraDeployFlowOperator

try:
    from airflow.sdk import DAG, CronTriggerTimetable, Param, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models.param import Param
    from airflow.timetables.trigger import CronTriggerTimetable

FLOWS = Path(__file__).parent / "flows" / "airflow.examples.migration.orders"

with DAG(
    dag_id="example_kestra_migration",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=CronTriggerTimetable("0 6 * * *", timezone="Europe/Paris"),
    catchup=False,
    params={"region": Param("emea", type="string", description="Sales region to process")},
    tags=["example", "kestra", "migration"],
    doc_md=__doc__,
) as dag:

    @task
    def extract_orders(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Stands for a database read."""
        region = (params or {})["region"]
        orders = [{"id": "o-1", "amount": 12.5}, {"id": "o-2", "amount": 30.0}, {"id": "o-3", "amount": 7.25}]
        return {"region": region, "orders": orders}

    @task
    def count_orders(batch: dict[str, Any]) -> dict[str, Any]:
        return {"count": len(batch["orders"]), "region": batch["region"].upper()}

    @task
    def describe_batch(batch: dict[str, Any]) -> str:
        return f"orders from {batch['region']}"

    @task(multiple_outputs=True)
    def publish(counted: dict[str, Any], description: str) -> dict[str, str]:
        message = f"{description}: {counted['count']} orders"
        print(message)
        return {"message": message}

    deploy = KestraDeployFlowOperator(task_id="deploy_flows", path=str(FLOWS))
    batch = extract_orders()
    deploy >> batch
    publish(count_orders(batch), describe_batch(batch))

migrate_to_kestra(dag)
