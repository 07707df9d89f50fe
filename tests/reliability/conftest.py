"""Fixtures of the reliability suite, and the one summary line it prints at the end of the pytest run.

Tests run real Airflow (``dag.test()``, or an operator in a killable child process) against a Kestra
simulator with fault injection. They report what they observed to the ``reliability`` recorder;
``pytest_terminal_summary`` prints the session's totals.

The integration suite's helpers (DAG registration and ``dag.test()`` with captured output, the Kestra
side's flow deployment, flow bodies) are reused from ``tests/integration``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from kestra_reliability_ledger import KestraExecutionLedger
from kestra_reliability_recorder import KestraReliabilityRecorder, KestraReliabilityTally

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_3_PLUS

if not AIRFLOW_V_3_3_PLUS:
    # The suite exercises Airflow 3.3 behaviour (dag.test() through the Task SDK, trigger on_kill).
    collect_ignore_glob = ["test_*.py"]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from _pytest.terminal import TerminalReporter
    from integration_dag_runner import DagTestRun
    from integration_kestra_side import KestraTestSide

    from airflow_provider_kestra.testing import KestraSimulator

_TALLY_KEY = pytest.StashKey[KestraReliabilityTally]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TALLY_KEY] = KestraReliabilityTally()


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    tally = config.stash.get(_TALLY_KEY, None)
    if tally is not None and tally.tests_reporting:
        terminalreporter.write_line(tally.summary_line())


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> KestraReliabilityRecorder:
    """The recorder every reliability test reports its observations to."""
    return KestraReliabilityRecorder(request.config.stash[_TALLY_KEY])


def unique_name(request: pytest.FixtureRequest) -> str:
    """The current test's name reduced to ``[a-z0-9_]`` (DAG and flow ids unique to the test)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name).strip("_").lower()[:80]


@pytest.fixture(scope="module")
def reliability_sim() -> Iterator[KestraSimulator]:
    """One Kestra 1.3 simulator per test module (seeded: fault rates are repeatable)."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3", seed=6) as sim:
        yield sim


@pytest.fixture
def kestra_side(
    reliability_sim: KestraSimulator,
    airflow_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[KestraTestSide]:
    """The simulator as Airflow's ``kestra_default`` connection, without fault rules before and after."""
    from integration_kestra_side import KestraTestSide

    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", reliability_sim.connection_uri())
    reliability_sim.faults.clear()
    yield KestraTestSide(reliability_sim, f"rel_{unique_name(request)}")
    reliability_sim.faults.clear()


@pytest.fixture
def ledger(reliability_sim: KestraSimulator) -> KestraExecutionLedger:
    """Executions of the module's simulator, read from its store."""
    return KestraExecutionLedger(reliability_sim)


@pytest.fixture
def make_dag(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``make_dag(suffix="", **default_args)``: a DAG with an id unique to the test, no retries by default."""
    from integration_dag_runner import build_dag

    def build(suffix: str = "", **default_args: Any) -> Any:
        return build_dag(f"reliability_{unique_name(request)}{suffix}", **default_args)

    return build


@pytest.fixture
def run_dag(capfd: pytest.CaptureFixture[str]) -> Callable[[Any], DagTestRun]:
    """Run a DAG with ``dag.test()``; the result carries states, tries, XComs and the captured task output."""
    from integration_dag_runner import run_dag_with_capture

    def run(dag: Any) -> DagTestRun:
        return run_dag_with_capture(dag, capfd)

    return run
