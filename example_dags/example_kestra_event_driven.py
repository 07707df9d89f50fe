"""Example 6 — run when Kestra's nightly flow succeeds (event-driven scheduling, Airflow 3 only).

Kestra schedules its own ``nightly`` flow; Airflow does not start it. An ``AssetWatcher`` with a
``KestraExecutionEventTrigger`` watches Kestra from Airflow's triggerer, and each successful execution of
``nightly`` becomes one asset event, so ``example_kestra_event_driven`` runs once per execution. Its task
reads the execution (id, state, dates, labels, UI link and flow outputs) from
``triggering_asset_events``.

The second part is the other direction: ``example_kestra_outlets_producer`` runs the ``transform`` flow with
``outlets=[transform_done]``. When the Kestra execution succeeds (and only then: a failed execution fails
the task, and a failed task emits no asset event), Airflow updates the asset and
``example_kestra_outlets_consumer`` runs.

Deploy the flows once with ``example_kestra_outlets_producer`` (its first task), or with ``kestra flow
namespace update``. See docs/events.md for the guarantees (exactly once, look-back window).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_kestra.operators.kestra import (
    KestraDeployFlowOperator,
    KestraTriggerExecutionOperator,
)
from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger

NAMESPACE = "airflow.examples.events"
FLOWS = Path(__file__).parent / "flows" / NAMESPACE

# One event per successful execution of airflow.examples.events.nightly.
nightly_succeeded = Asset(
    name="kestra_nightly_succeeded",
    uri=f"kestra://{NAMESPACE}/nightly",
    watchers=[
        AssetWatcher(
            name="kestra_nightly_watcher",
            trigger=KestraExecutionEventTrigger(namespace=NAMESPACE, flow_id="nightly", poll_interval=30),
        )
    ],
)

with DAG(
    dag_id="example_kestra_event_driven",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=[nightly_succeeded],
    catchup=False,
    tags=["example", "kestra"],
    doc_md=__doc__,
):

    @task
    def report_nightly(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Print each Kestra execution that triggered this run and return what downstream tasks need."""
        executions = []
        for event in triggering_asset_events[nightly_succeeded]:
            execution = event.extra["payload"]
            outputs = execution["outputs"] or {}
            print(
                f"Kestra execution {execution['execution_id']} of {execution['namespace']}."
                f"{execution['flow_id']} ended in {execution['state']} at {execution['end_date']}: "
                f"{outputs.get('rows')} rows for {outputs.get('day')} ({execution['url']})"
            )
            if execution["outputs_truncated"]:
                print("The flow outputs were too large to travel with the event; read them from Kestra.")
            row = {"execution_id": execution["execution_id"], "day": outputs.get("day")}
            executions.append({**row, "rows": outputs.get("rows")})
        return executions

    report_nightly()


# The other direction: a task that runs a Kestra flow updates an Asset when the execution succeeds.
transform_done = Asset(name="kestra_transform_done", uri=f"kestra://{NAMESPACE}/transform")

with DAG(
    dag_id="example_kestra_outlets_producer",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=None,
    catchup=False,
    tags=["example", "kestra"],
):
    deploy = KestraDeployFlowOperator(task_id="deploy_flows", path=str(FLOWS), namespace=NAMESPACE)
    transform = KestraTriggerExecutionOperator(
        task_id="transform",
        namespace=NAMESPACE,
        flow_id="transform",
        outlets=[transform_done],
    )
    deploy >> transform

with DAG(
    dag_id="example_kestra_outlets_consumer",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    schedule=[transform_done],
    catchup=False,
    tags=["example", "kestra"],
):

    @task
    def load_after_transform(triggering_asset_events: Any = None) -> int:
        """Runs once per successful ``transform`` task; the asset event names the producing run."""
        events = list(triggering_asset_events[transform_done])
        for event in events:
            print(f"transform done by {event.source_dag_id}/{event.source_run_id}")
        return len(events)

    load_after_transform()
