"""Fixtures of the integration suite: real Airflow (``dag.test()``) against the Kestra simulator.

* ``kestra_sim``: one simulator per Kestra profile ("1.3", "2.0"), shared by the whole session; every test
  that uses it runs once per profile.
* ``kestra``: the simulator of the current profile, with ``AIRFLOW_CONN_KESTRA_DEFAULT`` pointing at it and
  no fault rules; also deploys flows and reads executions back (``KestraTestSide``).
* ``make_dag``: builds a DAG whose id is unique to the test (so label searches never see another test).
* ``run_dag``: runs a DAG with ``dag.test()`` and returns states, tries, XComs and the captured task output.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from integration_dag_runner import DagFactory, DagRunner, DagTestRun, build_dag, run_dag_with_capture
from integration_kestra_side import KestraTestSide

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator

KESTRA_PROFILES = ("1.3", "2.0")


@pytest.fixture(scope="session", params=KESTRA_PROFILES, ids=[f"kestra{p}" for p in KESTRA_PROFILES])
def kestra_sim(request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    """A running simulator of one Kestra profile, shared by every test of the session."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version=request.param) as sim:
        yield sim


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower()


@pytest.fixture
def kestra(
    kestra_sim: KestraSimulator,
    airflow_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[KestraTestSide]:
    """The simulator of this test's profile, wired as Airflow's ``kestra_default`` connection."""
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", kestra_sim.connection_uri())
    if not AIRFLOW_V_3_0_PLUS:
        # Airflow 2's unit-test config selects LocalExecutor, which refuses SQLite as soon as a sensor's
        # dependency check loads the executor; dag.test() never uses the executor anyway.
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    kestra_sim.faults.clear()
    side = KestraTestSide(kestra_sim, _safe_name(request.node.name)[:80])
    yield side
    side.close()
    kestra_sim.faults.clear()


@pytest.fixture
def make_dag(request: pytest.FixtureRequest) -> DagFactory:
    """Factory of DAGs with an id unique to this test; use as ``with make_dag() as dag: ...``."""

    def build(suffix: str = "", **default_args: Any) -> Any:
        return build_dag(f"kestra_it_{_safe_name(request.node.name)}{suffix}"[:200], **default_args)

    return build


@pytest.fixture
def run_dag(capfd: pytest.CaptureFixture[str]) -> DagRunner:
    """Run a DAG with ``dag.test()``; the result carries the tasks' output captured from stdout/stderr."""

    def run(dag: Any) -> DagTestRun:
        return run_dag_with_capture(dag, capfd)

    return run
