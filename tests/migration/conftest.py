"""Fixtures of the migration tests: real Airflow (``dag.test()``) against one Kestra simulator.

``make_dag`` and ``run_dag`` are the shared fixtures of ``tests/support/fixtures.py`` (the DAG runner
registers a DAG the way the dag-processor would, runs it with ``dag.test()`` and reads states and XComs
back); ``kestra_hook`` is the hook of the shared Kestra side, wired to this suite's simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.dag_runner import dag_id_for
from support.kestra_side import kestra_side_for

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
    migration_sim: KestraSimulator,
    airflow_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[KestraHook]:
    """``kestra_default`` points at the simulator; the shadow ledger goes to this test's tmp folder."""
    monkeypatch.setenv("AIRFLOW__KESTRA__MIGRATION_LEDGER_FOLDER", str(tmp_path / "ledger"))
    with kestra_side_for(migration_sim, request, monkeypatch) as side:
        yield side.hook


@pytest.fixture
def dag_id(request: pytest.FixtureRequest) -> str:
    """The id of the DAG ``make_dag()`` builds for this test."""
    return dag_id_for(request)


@pytest.fixture
def write_state(tmp_path: Path) -> Callable[[str], Path]:
    """Write a state file (YAML text) into the test's tmp folder and return its path."""

    def write(text: str, name: str = "dag.kestra-migration.yml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
