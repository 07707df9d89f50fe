"""Example 2 — a migration step: Airflow extracts, a Kestra flow transforms, Airflow loads.

The transform used to be an Airflow task; it now runs in Kestra. The extract result travels to Kestra as a
JSON flow input, and the file the flow writes to Kestra's internal storage comes back to Airflow through
``output_files_dir`` (the trigger task downloads every ``kestra:///`` file of the flow outputs there and
pushes their local paths to the XCom ``output_files``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraTriggerExecutionOperator,
)

try:
    from airflow.sdk import DAG, XComArg, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models.xcom_arg import XComArg

FLOW = Path(__file__).parent / "flows" / "airflow.examples.migration" / "transform_orders.yml"

with DAG(
    dag_id="example_kestra_migration_step",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=None,
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy = KestraDeployFlowOperator(task_id="deploy_transform", path=str(FLOW))

    @task
    def extract() -> list[dict[str, object]]:
        """Stands for the existing Airflow extract (an API or database read)."""
        return [
            {"order_id": 1, "amount": 12.5},
            {"order_id": 2, "amount": 30.0},
            {"order_id": 3, "amount": 7.25},
        ]

    transform = KestraTriggerExecutionOperator(
        task_id="transform_in_kestra",
        namespace="airflow.examples.migration",
        flow_id="transform_orders",
        inputs={"orders": extract(), "currency": "EUR"},
        # One folder per DAG run, so runs never overwrite each other's files. With several workers, use a
        # folder every worker sees (a shared volume): `load` may run on another machine than this task.
        output_files_dir="/tmp/kestra-outputs/{{ dag.dag_id }}/{{ run_id }}",
    )

    @task
    def load(outputs: dict[str, object], files: list[str]) -> int:
        """Stands for the existing Airflow load: read the Kestra result and write it to the warehouse."""
        orders = json.loads(Path(files[0]).read_text())
        total = sum(order["amount"] for order in orders)
        print(f"Loading {len(orders)} orders ({total} {outputs['currency']}) from {outputs['batch_uri']}")
        return len(orders)

    deploy >> transform
    load(transform.output, XComArg(transform, key="output_files"))
