"""Example 4 — a scheduled DAG that tells Kestra which period to process.

Airflow keeps the schedule (and backfills); the Kestra flow gets the run's logical date and data interval
as inputs, so a backfill of last Tuesday builds last Tuesday's report. The ``report_day`` label makes the
execution easy to find in Kestra's UI, next to the ``airflow.*`` labels the operator always adds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraTriggerExecutionOperator,
)

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

FLOW = Path(__file__).parent / "flows" / "airflow.examples.scheduled" / "daily_report.yml"

with DAG(
    dag_id="example_kestra_scheduled",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule="@daily",
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy = KestraDeployFlowOperator(task_id="deploy_flow", path=str(FLOW))

    report = KestraTriggerExecutionOperator(
        task_id="daily_report",
        namespace="airflow.examples.scheduled",
        flow_id="daily_report",
        inputs={
            "day": "{{ ds }}",
            "window_start": "{{ data_interval_start.isoformat() }}",
            "window_end": "{{ data_interval_end.isoformat() }}",
        },
        labels={"report_day": "{{ ds }}"},
        timeout=600,
    )

    deploy >> report
