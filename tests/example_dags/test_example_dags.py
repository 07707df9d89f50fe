"""Every example DAG parses cleanly and runs to success with ``dag.test()`` against the simulator.

The examples are what a new user copies first, so they run here exactly as shipped: same files, same flow
YAML, only the ``kestra_default`` connection pointed at a fresh simulator. Each run is also checked for the
result the example is about (outputs downstream, files, mapped results, inputs from the schedule, the
approval), so an example that "succeeds" without doing its job fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kestra.testing import KestraSimulator
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_DAG_IDS = [
    "example_kestra_quickstart",
    "example_kestra_migration_step",
    "example_kestra_fan_out",
    "example_kestra_scheduled",
    "example_kestra_cross_orchestrator",
    "example_kestra_migration",
    "example_kestra_lifecycle",
]
# AssetWatcher and Asset outlets are Airflow 3 features: on Airflow 2 this file fails to import, by design.
AIRFLOW_3_EXAMPLE_FILE = "example_kestra_event_driven.py"
AIRFLOW_3_EXAMPLE_DAG_IDS = (
    ["example_kestra_event_driven", "example_kestra_outlets_producer", "example_kestra_outlets_consumer"]
    if AIRFLOW_V_3_0_PLUS
    else []
)
PARSED_DAG_IDS = EXAMPLE_DAG_IDS + AIRFLOW_3_EXAMPLE_DAG_IDS
EXPECTED_IMPORT_ERRORS = [] if AIRFLOW_V_3_0_PLUS else [AIRFLOW_3_EXAMPLE_FILE]

pytestmark = pytest.mark.integration


def _dag_bag() -> Any:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(EXAMPLES))
    from airflow.models.dagbag import DagBag as DagBag2

    return DagBag2(dag_folder=str(EXAMPLES), include_examples=False)


@pytest.fixture(scope="module")
def example_dags(airflow_db: Path) -> Iterator[dict[str, Any]]:
    """The example DAGs, parsed once, from a DAG bundle Airflow 3's ``dag.test()`` can sync to the DB."""
    patch = pytest.MonkeyPatch()
    # Airflow 3 runs only DAGs it finds in a configured bundle; add one for example_dags/ next to the default.
    patch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {},
                },
                {
                    "name": "kestra-provider-examples",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(EXAMPLES)},
                },
            ]
        ),
    )
    if not AIRFLOW_V_3_0_PLUS:
        # Unit-test mode makes Airflow 2 default to LocalExecutor, which refuses SQLite as soon as a
        # sensor's dependencies are checked.
        patch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    bag = _dag_bag()
    assert sorted(Path(f).name for f in bag.import_errors) == EXPECTED_IMPORT_ERRORS
    yield bag.dags
    patch.undo()


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    """A fresh simulator of the requested Kestra version, set as the ``kestra_default`` connection."""
    with KestraSimulator(kestra_version=request.param) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
        # The webhook key example_kestra_lifecycle reads (the value its flow's trigger declares).
        monkeypatch.setenv("AIRFLOW_VAR_KESTRA_ORDER_SYNC_WEBHOOK_KEY", "order-sync-7c2e9b41")
        yield sim


def _kestra_execution(execution_id: str) -> dict[str, Any]:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    return dict(KestraHook().get_execution(execution_id))


def _check_quickstart(dag_run: Any, pull: Callable[..., Any]) -> None:
    assert pull("deploy_flows")[0]["flow_id"] == "greet"
    assert pull("greet") == {"greeting": "Hello, Airflow!", "times": 3}
    assert pull("greet", "execution_state") == "SUCCESS"
    assert pull("greet", "execution_url").endswith(
        "/airflow.examples.quickstart/greet/" + pull("greet", "execution_id")
    )
    assert pull("print_greeting") == "Hello, Airflow!"


def _check_migration_step(dag_run: Any, pull: Callable[..., Any]) -> None:
    files = [Path(f) for f in pull("transform_in_kestra", "output_files")]
    assert len(files) >= 1
    assert all(f.is_file() for f in files)
    assert pull("load") == 3
    shutil.rmtree(files[0].parent)  # the example downloads into /tmp/kestra-outputs/<dag>/<run>


def _check_fan_out(dag_run: Any, pull: Callable[..., Any]) -> None:
    mapped = [ti for ti in dag_run.get_task_instances() if ti.task_id == "process_region"]
    assert sorted(ti.map_index for ti in mapped) == [0, 1, 2]
    assert pull("summarize") == ["region amer processed", "region apac processed", "region emea processed"]


def _check_scheduled(dag_run: Any, pull: Callable[..., Any]) -> None:
    execution = _kestra_execution(pull("daily_report", "execution_id"))
    if dag_run.data_interval_start is not None:
        start, end = dag_run.data_interval_start, dag_run.data_interval_end
        # CronDataIntervalTimetable: a real one-day interval, also on Airflow 3.
        assert end - start == timedelta(days=1)
    else:
        # Triggered without a logical date (Airflow 3): the last full UTC day before the run.
        end = dag_run.run_after.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=1)
    day = start.strftime("%Y-%m-%d")
    assert str(execution["inputs"]["day"]) == day
    assert _instant(execution["inputs"]["window_start"]) == start
    assert _instant(execution["inputs"]["window_end"]) == end
    assert {"key": "report_day", "value": day} in execution["labels"]
    assert pull("daily_report")["summary"].startswith(f"report for {day} built by execution ")


def _instant(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _check_cross_orchestrator(dag_run: Any, pull: Callable[..., Any]) -> None:
    execution_id = pull("partner_delivers_feed")
    assert pull("wait_for_feed") == pull("approve") == pull("wait_for_publish") == execution_id
    execution = _kestra_execution(execution_id)
    assert execution["state"]["current"] == "SUCCESS"
    assert "PAUSED" in [h["state"] for h in execution["state"]["histories"]]


def _check_migration(dag_run: Any, pull: Callable[..., Any]) -> None:
    assert pull("publish") == {"message": "orders from emea: 3 orders"}
    assert pull("extract_orders", "execution_state") == "SUCCESS"
    for shadowed in ("count_orders", "describe_batch"):
        assert pull(shadowed, "kestra_shadow")["verdict"] == "match"


def _check_lifecycle(dag_run: Any, pull: Callable[..., Any]) -> None:
    original, restarted = pull("shop_sends_orders"), pull("restart_on_fix", "execution_id")
    assert restarted != original  # a restart on another revision is a new execution
    assert pull("restart_on_fix") == pull("read_outputs") == {"summary": "3 order(s) synced"}
    assert pull("report") == "3 order(s) synced"
    assert pull("delete_failed_original") is True
    assert _kestra_execution(restarted)["state"]["current"] == "SUCCESS"


CHECKS: dict[str, Callable[[Any, Callable[..., Any]], None]] = {
    "example_kestra_quickstart": _check_quickstart,
    "example_kestra_migration_step": _check_migration_step,
    "example_kestra_fan_out": _check_fan_out,
    "example_kestra_scheduled": _check_scheduled,
    "example_kestra_cross_orchestrator": _check_cross_orchestrator,
    "example_kestra_migration": _check_migration,
    "example_kestra_lifecycle": _check_lifecycle,
}


def test_example_dags_parse_without_errors(example_dags: dict[str, Any]) -> None:
    assert sorted(example_dags) == sorted(PARSED_DAG_IDS)
    for dag in example_dags.values():
        assert "example" in dag.tags


def test_example_dags_parse_without_loading_http_clients(airflow_db: Path) -> None:
    """The scheduler parses DAG files constantly: the examples must not pull in the hook or the simulator."""
    script = f"""
import sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag({str(EXAMPLES)!r})
errors = sorted(f.rsplit("/", 1)[-1] for f in bag.import_errors)
assert errors == {EXPECTED_IMPORT_ERRORS!r}, bag.import_errors
assert len(bag.dags) == {len(PARSED_DAG_IDS)}, sorted(bag.dags)
print(sorted(m for m in sys.modules if m.startswith("airflow_provider_kestra.")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    loaded = result.stdout.strip().splitlines()[-1]
    assert "airflow_provider_kestra.operators.kestra" in loaded
    assert "airflow_provider_kestra.hooks" not in loaded
    assert "airflow_provider_kestra.testing" not in loaded


@pytest.mark.parametrize("simulator", ["0.22", "1.3", "2.0"], indirect=True)
@pytest.mark.parametrize("dag_id", EXAMPLE_DAG_IDS)
def test_example_dag_runs_to_success(
    dag_id: str, example_dags: dict[str, Any], simulator: KestraSimulator
) -> None:
    dag_run = example_dags[dag_id].test()

    task_instances = dag_run.get_task_instances()
    states = {(ti.task_id, ti.map_index): ti.state for ti in task_instances}
    assert dag_run.state == "success", states
    assert set(states.values()) == {"success"}, states

    def pull(task_id: str, key: str = "return_value") -> Any:
        ti = next(ti for ti in task_instances if ti.task_id == task_id)
        return ti.xcom_pull(task_ids=task_id, key=key)

    CHECKS[dag_id](dag_run, pull)


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2 runs always have a logical date")
@pytest.mark.parametrize("simulator", ["1.3"], indirect=True)
@pytest.mark.parametrize("dag_id", EXAMPLE_DAG_IDS)
def test_example_dag_runs_without_logical_date(
    dag_id: str, example_dags: dict[str, Any], simulator: KestraSimulator
) -> None:
    """As when triggered from the UI, ``airflow dags trigger`` or the REST API without a logical date:
    no ``ds``, ``logical_date`` or ``data_interval_*`` in the template context."""
    dag_run = example_dags[dag_id].test(logical_date=None)

    assert dag_run.logical_date is None
    task_instances = dag_run.get_task_instances()
    states = {(ti.task_id, ti.map_index): ti.state for ti in task_instances}
    assert dag_run.state == "success", states

    def pull(task_id: str, key: str = "return_value") -> Any:
        ti = next(ti for ti in task_instances if ti.task_id == task_id)
        return ti.xcom_pull(task_ids=task_id, key=key)

    CHECKS[dag_id](dag_run, pull)
