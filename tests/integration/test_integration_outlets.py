"""Asset ``outlets`` on KestraTriggerExecutionOperator: Airflow updates the Asset when, and only when, the
Kestra execution succeeds (a failed execution fails the task, and a failed task emits no asset event).

Runs with ``dag.test()`` against the simulator and reads the asset events back from the metadata DB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_flows import FAILING_TASKS, GREETING_INPUTS, GREETING_OUTPUTS, GREETING_TASKS

from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from support.dag_runner import DagFactory, DagRunner
    from support.kestra_side import KestraTestSide

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Asset outlets with airflow.sdk.Asset are Airflow 3"),
]


def _asset_events(asset_name: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.source_dag_id, AssetEvent.source_run_id, AssetEvent.source_task_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == asset_name)
        ).all()
    return [{"dag_id": r[0], "run_id": r[1], "task_id": r[2]} for r in rows]


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_outlet_asset_event_on_success_only(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    from airflow.sdk import Asset

    good = kestra.deploy("greets", GREETING_TASKS, GREETING_INPUTS + GREETING_OUTPUTS)
    bad = kestra.deploy("fails", FAILING_TASKS)
    asset_name = f"{kestra.flow_prefix}_{'deferred' if deferrable else 'sync'}_done"
    done = Asset(name=asset_name, uri=f"kestra://airflow.integration/{asset_name}")

    with make_dag("_ok") as dag:
        KestraTriggerExecutionOperator(
            task_id="run", namespace="airflow.integration", flow_id=good, outlets=[done],
            deferrable=deferrable, poll_interval=0.5,
        )  # fmt: skip
    ok = run_dag(dag)
    assert ok.state == "success", ok.task_states
    assert _asset_events(asset_name) == [{"dag_id": ok.dag_id, "run_id": ok.run_id, "task_id": "run"}]

    with make_dag("_failed") as dag:
        KestraTriggerExecutionOperator(
            task_id="run", namespace="airflow.integration", flow_id=bad, outlets=[done],
            deferrable=deferrable, poll_interval=0.5,
        )  # fmt: skip
    failed = run_dag(dag)
    assert failed.state == "failed"
    assert failed.xcom("run", "execution_state") == "FAILED"
    assert len(_asset_events(asset_name)) == 1  # still only the successful run's event
