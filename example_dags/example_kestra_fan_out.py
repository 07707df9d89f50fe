"""Example 3 — fan-out: one Kestra execution per region, all waiting in the triggerer.

Dynamic task mapping creates one trigger task per input set. With ``deferrable=True`` each task hands the
wait to Airflow's triggerer instead of holding a worker slot, so a hundred regions cost a hundred cheap
async watches rather than a hundred busy workers.
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

FLOW = Path(__file__).parent / "flows" / "airflow.examples.fanout" / "process_region.yml"

with DAG(
    dag_id="example_kestra_fan_out",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=None,
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy = KestraDeployFlowOperator(task_id="deploy_flow", path=str(FLOW))

    @task
    def list_regions() -> list[dict[str, str]]:
        """The regions to process today; in practice read from a table or an API."""
        return [{"region": region} for region in ("emea", "amer", "apac")]

    process = KestraTriggerExecutionOperator.partial(
        task_id="process_region",
        namespace="airflow.examples.fanout",
        flow_id="process_region",
        deferrable=True,
        poll_interval=1.0,
    ).expand(inputs=list_regions())

    @task
    def summarize(outputs: list[dict[str, object]]) -> list[str]:
        """Collect the flow output of every mapped execution."""
        reports = sorted(str(output["report"]) for output in outputs)
        for report in reports:
            print(report)
        return reports

    deploy >> process
    summarize(process.output)
