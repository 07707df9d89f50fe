"""Example 5 — wait for a Kestra execution Airflow did not start, then approve it.

A partner's system starts the Kestra flow ``partner_feed`` through its webhook. The flow checks the feed
and pauses for an approval. This DAG waits, like an ``ExternalTaskSensor`` across orchestrators, for
today's execution of that flow to reach the pause, gives the approval (resume with inputs), and waits for
the execution to finish.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraResumeExecutionOperator,
)
from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

NAMESPACE = "airflow.examples.approval"
FLOW = Path(__file__).parent / "flows" / NAMESPACE / "partner_feed.yml"

with DAG(
    dag_id="example_kestra_cross_orchestrator",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule="@daily",
    catchup=False,
    params={"approver": "data-team"},
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy = KestraDeployFlowOperator(task_id="deploy_flow", path=str(FLOW))

    @task
    def partner_delivers_feed() -> str:
        """Stands for the partner, so the example runs on its own; in production this task does not exist.

        The partner's system POSTs to the flow's webhook
        (``/api/v1/<tenant>/executions/webhook/airflow.examples.approval/partner_feed/<key>``).
        """
        from airflow_provider_kestra.hooks.kestra import KestraHook

        return KestraHook().create_execution(NAMESPACE, "partner_feed")["id"]

    # Search mode: the newest execution of the flow that started in this run's data interval.
    wait_for_feed = KestraExecutionSensor(
        task_id="wait_for_feed",
        namespace=NAMESPACE,
        flow_id="partner_feed",
        # A run triggered without a logical date (Airflow 3) has no data interval: fall back to the time
        # the run was created, so only executions started for this run count.
        started_after="{{ (data_interval_start | default(dag_run.run_after)).isoformat() }}",
        success_states=["PAUSED"],
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )

    approve = KestraResumeExecutionOperator(
        task_id="approve",
        execution_id=wait_for_feed.output,
        inputs={"approved_by": "{{ params.approver }}"},
    )

    wait_for_publish = KestraExecutionSensor(
        task_id="wait_for_publish",
        execution_id=wait_for_feed.output,
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )

    deploy >> partner_delivers_feed() >> wait_for_feed >> approve >> wait_for_publish
