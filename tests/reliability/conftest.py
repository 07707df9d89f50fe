"""Fixtures of the reliability suite, and the one summary line it prints at the end of the pytest run.

Tests run real Airflow (``dag.test()``, or an operator in a killable child process) against a Kestra
simulator with fault injection. They report what they observed to the ``reliability`` recorder;
``pytest_terminal_summary`` prints the session's totals.

``kestra_side``, ``make_dag`` and ``run_dag`` are the shared fixtures of ``tests/support/fixtures.py``; this
suite only chooses its simulator: ``reliability_sim`` (a module may override it) stands in for ``kestra_sim``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kestra_reliability_ledger import KestraExecutionLedger
from kestra_reliability_recorder import KestraReliabilityRecorder, KestraReliabilityTally

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_3_PLUS

if not AIRFLOW_V_3_3_PLUS:
    # The suite exercises Airflow 3.3 behaviour (dag.test() through the Task SDK, trigger on_kill).
    collect_ignore_glob = ["test_*.py"]

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _pytest.terminal import TerminalReporter

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


@pytest.fixture(scope="module")
def reliability_sim() -> Iterator[KestraSimulator]:
    """One Kestra 1.3 simulator per test module (seeded: fault rates are repeatable)."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3", seed=6) as sim:
        yield sim


@pytest.fixture
def kestra_sim(reliability_sim: KestraSimulator) -> KestraSimulator:
    """The shared ``kestra_side`` fixture talks to this module's simulator."""
    return reliability_sim


@pytest.fixture
def ledger(reliability_sim: KestraSimulator) -> KestraExecutionLedger:
    """Executions of the module's simulator, read from its store."""
    return KestraExecutionLedger(reliability_sim)
