"""Example 6 — the rest of an execution's life: fire a webhook, restart a failure on the fixed revision,
read the outputs, clean up.

The web shop starts the Kestra flow ``order_sync`` through its webhook (here a task fires it, with the key
read from the Airflow Variable ``kestra_order_sync_webhook_key``: the key never appears in the DAG, the
task log or XCom). Revision 1 of the flow has a bug and the execution fails. The DAG deploys the fix
(revision 2), restarts the failed execution on it (Kestra makes a new execution that reruns only the failed
task), reads that execution's outputs the way you would for any execution Airflow did not start, and
deletes the failed original with its logs and files.

Set the Variable first, e.g. ``AIRFLOW_VAR_KESTRA_ORDER_SYNC_WEBHOOK_KEY=order-sync-7c2e9b41``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from airflow_provider_kestra.operators.kestra import KestraDeployFlowOperator
from airflow_provider_kestra.operators.kestra_lifecycle import (
    KestraDeleteExecutionOperator,
    KestraGetOutputsOperator,
    KestraRestartExecutionOperator,
    KestraWebhookTriggerOperator,
)
from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

NAMESPACE = "airflow.examples.lifecycle"
FLOW = Path(__file__).parent / "flows" / NAMESPACE / "order_sync.yml"
FIXED_SYNC = """  - id: sync
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.orders }} order(s) synced"
"""
BUGGY_SYNC = """  - id: sync
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "orders API rejected the batch (fixed in the next revision)"
"""
"""Revision 1's ``sync`` task, as it was deployed before the fix (so the example can fail on its own)."""

with DAG(
    dag_id="example_kestra_lifecycle",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=None,
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):
    deploy_buggy = KestraDeployFlowOperator(
        task_id="deploy_buggy_revision",
        source=FLOW.read_text(encoding="utf-8").replace(FIXED_SYNC, BUGGY_SYNC),
    )

    # The shop's side: POST /api/v1/<tenant>/executions/webhook/airflow.examples.lifecycle/order_sync/<key>.
    shop_sends_orders = KestraWebhookTriggerOperator(
        task_id="shop_sends_orders",
        namespace=NAMESPACE,
        flow_id="order_sync",
        webhook_key_variable="kestra_order_sync_webhook_key",
        body={"orders": 3},
    )

    wait_for_failure = KestraExecutionSensor(
        task_id="wait_for_failure",
        execution_id=shop_sends_orders.output,
        success_states=["FAILED"],
        deferrable=True,
        poke_interval=2,
        timeout=600,
    )

    deploy_fix = KestraDeployFlowOperator(task_id="deploy_fix", path=str(FLOW))

    restart = KestraRestartExecutionOperator(
        task_id="restart_on_fix",
        execution_id=shop_sends_orders.output,
        revision="{{ ti.xcom_pull(task_ids='deploy_fix')[0]['revision'] }}",
        deferrable=True,
        poll_interval=2,
    )

    outputs = KestraGetOutputsOperator(
        task_id="read_outputs",
        execution_id="{{ ti.xcom_pull(task_ids='restart_on_fix', key='execution_id') }}",
        include_task_outputs=True,
    )

    cleanup = KestraDeleteExecutionOperator(
        task_id="delete_failed_original", execution_id=shop_sends_orders.output
    )

    @task
    def report(flow_outputs: dict) -> str:
        print(flow_outputs["summary"])
        return str(flow_outputs["summary"])

    deploy_buggy >> shop_sends_orders >> wait_for_failure >> deploy_fix >> restart >> outputs
    outputs >> cleanup
    report(outputs.output)
