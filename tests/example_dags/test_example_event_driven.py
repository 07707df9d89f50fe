"""The event-driven example (Airflow 3): its outlets producer runs and updates its Asset; its watcher
watches the flow the example ships.

Parsing is covered with the other examples in ``test_example_dags.py`` (whose fixtures are reused here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from test_example_dags import EXAMPLES, example_dags, simulator  # noqa: F401 - fixtures

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="AssetWatcher and Asset outlets are Airflow 3"),
]


@pytest.mark.parametrize("simulator", ["1.3"], indirect=True)
def test_outlets_producer_runs_and_updates_its_asset(
    example_dags: dict[str, Any],  # noqa: F811
    simulator: KestraSimulator,  # noqa: F811
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag_run = example_dags["example_kestra_outlets_producer"].test()
    assert dag_run.state == "success"
    with create_session() as session:
        sources = session.scalars(
            select(AssetEvent.source_run_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "kestra_transform_done")
        ).all()
    assert dag_run.run_id in sources


def test_the_watcher_watches_the_shipped_nightly_flow(example_dags: dict[str, Any]) -> None:  # noqa: F811
    dag = example_dags["example_kestra_event_driven"]
    assets = list(dag.timetable.asset_condition.objects)
    assert [a.name for a in assets] == ["kestra_nightly_succeeded"]
    trigger = assets[0].watchers[0].trigger
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("kestra_events.KestraExecutionEventTrigger")
    flow = yaml.safe_load(
        Path(EXAMPLES, "flows", kwargs["namespace"], f"{kwargs['flow_id']}.yml").read_text()
    )
    assert (flow["namespace"], flow["id"]) == (kwargs["namespace"], kwargs["flow_id"])
    assert kwargs["states"] == ["SUCCESS"]
