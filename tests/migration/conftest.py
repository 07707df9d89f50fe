"""Fixtures of the migration tests: real Airflow (``dag.test()``) against one Kestra simulator.

The DAG runner of the integration suite is reused as it is (``tests/integration``): it registers a DAG the
way the dag-processor would, runs it with ``dag.test()`` and reads states and XComs back.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from integration_dag_runner import DagTestRun, build_dag, run_dag_with_capture

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.testing import KestraSimulator

MIGRATION_PROFILE = "2.0"
EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.fixture(scope="session")
def migration_sim() -> Iterator[KestraSimulator]:
    """One simulator for the whole migration suite (Kestra 2.0 profile)."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version=MIGRATION_PROFILE) as sim:
        yield sim


@pytest.fixture
def kestra_hook(
    migration_sim: KestraSimulator, airflow_db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[KestraHook]:
    """``kestra_default`` points at the simulator; the shadow ledger goes to this test's tmp folder."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", migration_sim.connection_uri())
    monkeypatch.setenv("AIRFLOW__KESTRA__MIGRATION_LEDGER_FOLDER", str(tmp_path / "ledger"))
    if not AIRFLOW_V_3_0_PLUS:
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    migration_sim.faults.clear()
    hook = KestraHook(retry_limit=2, retry_delay=0.1)
    yield hook
    hook.close()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower()


@pytest.fixture
def dag_id(request: pytest.FixtureRequest) -> str:
    """A DAG id unique to this test."""
    return f"kestra_migr_{_safe(request.node.name)}"[:200]


@pytest.fixture
def make_dag(dag_id: str) -> Callable[..., Any]:
    """``make_dag(**default_args)``: an unscheduled DAG with this test's id."""

    def build(**default_args: Any) -> Any:
        return build_dag(dag_id, **default_args)

    return build


@pytest.fixture
def run_dag(capfd: pytest.CaptureFixture[str]) -> Callable[[Any], DagTestRun]:
    """Run a DAG with ``dag.test()``; the result has states, XComs and the captured task output."""

    def run(dag: Any) -> DagTestRun:
        return run_dag_with_capture(dag, capfd)

    return run


@pytest.fixture
def write_state(tmp_path: Path) -> Callable[[str], Path]:
    """Write a state file (YAML text) into the test's tmp folder and return its path."""

    def write(text: str, name: str = "dag.kestra-migration.yml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
