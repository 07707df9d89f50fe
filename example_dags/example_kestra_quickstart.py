"""Example 1 — deploy the flows of a folder, run one with inputs, use its outputs in Airflow.

The deploy task is idempotent: a flow whose source did not change keeps its revision, so running the DAG
again deploys nothing new. The trigger task returns the flow outputs as its XCom value; the last task
reads them like any other upstream result.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraTriggerExecutionOperator,
)

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

FLOWS = Path(__file__).parent / "flows" / "airflow.examples.quickstart"

with DAG(
    dag_id="example_kestra_quickstart",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=None,
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy = KestraDeployFlowOperator(task_id="deploy_flows", path=str(FLOWS))

    greet = KestraTriggerExecutionOperator(
        task_id="greet",
        namespace="airflow.examples.quickstart",
        flow_id="greet",
        inputs={"name": "Airflow", "times": 3},
    )

    @task
    def print_greeting(outputs: dict[str, object]) -> str:
        """Use the Kestra flow outputs downstream."""
        greeting = str(outputs["greeting"])
        print(f"Kestra said: {greeting!r} ({outputs['times']} times)")
        return greeting

    deploy >> greet
    print_greeting(greet.output)
