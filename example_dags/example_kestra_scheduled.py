"""Example 4 — a scheduled DAG that tells Kestra which period to process.

Airflow keeps the schedule (and backfills); the Kestra flow gets the run's data interval as inputs, so a
backfill of last Tuesday builds last Tuesday's report. The ``report_day`` label makes the execution easy
to find in Kestra's UI, next to the ``airflow.*`` labels the operator always adds.

The timetable is ``CronDataIntervalTimetable`` on purpose: on Airflow 3 a plain ``schedule="@daily"``
means ``CronTriggerTimetable``, whose runs have an empty data interval (start == end == the run time).
A run triggered by hand without a logical date (Airflow 3's default in the UI, ``airflow dags trigger``
and the REST API) has no data interval at all; ``report_window`` then picks the last full UTC day before
the run, which is the interval a scheduled run at that moment would have had.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraTriggerExecutionOperator,
)

try:
    from airflow.sdk import DAG, CronDataIntervalTimetable, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.timetables.interval import CronDataIntervalTimetable

FLOW = Path(__file__).parent / "flows" / "airflow.examples.scheduled" / "daily_report.yml"

with DAG(
    dag_id="example_kestra_scheduled",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy = KestraDeployFlowOperator(task_id="deploy_flow", path=str(FLOW))

    @task(multiple_outputs=True)
    def report_window(
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
        dag_run: Any = None,
    ) -> dict[str, str]:
        """The period of this run: its data interval, else the last full UTC day before it was triggered."""
        if data_interval_start is None or data_interval_end is None:
            # Triggered without a logical date (Airflow 3): no data interval in the context.
            data_interval_end = dag_run.run_after.astimezone(timezone.utc).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            data_interval_start = data_interval_end - timedelta(days=1)
        return {
            "day": data_interval_start.strftime("%Y-%m-%d"),
            "window_start": data_interval_start.isoformat(),
            "window_end": data_interval_end.isoformat(),
        }

    window = report_window()

    report = KestraTriggerExecutionOperator(
        task_id="daily_report",
        namespace="airflow.examples.scheduled",
        flow_id="daily_report",
        inputs=window,  # {"day", "window_start", "window_end"}: the flow's three inputs
        labels={"report_day": window["day"]},
        timeout=600,
    )

    deploy >> report
