"""pytest plugin: a ``kestra_simulator`` fixture (one fresh simulator per test) and what ``dag.test()`` needs.

Enable with ``pytest_plugins = ["airflow_provider_kestra.testing.pytest_plugin"]``. Simulator options come
from the ``kestra_simulator_options`` fixture (override it, or use indirect parametrization):

    @pytest.mark.parametrize("kestra_simulator", [{"kestra_version": "2.0"}], indirect=True)
    def test_x(kestra_simulator): ...

To run DAGs with ``dag.test()``, call ``prepare_airflow_env(dags_folder=...)`` (from
``airflow_provider_kestra.testing``) at the top of ``conftest.py`` and request the session fixture
``kestra_airflow_home`` (it migrates the metadata database once). Airflow reads its configuration once, when
it is first imported, so the environment has to be in place before any test module imports a DAG: a fixture
alone would come too late, hence the function. This module imports no Airflow (the simulator is
Airflow-free); only the fixture runs Airflow, as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kestra.testing.airflow_env import prepared_airflow_home

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_kestra.testing.simulator import KestraSimulator


@pytest.fixture(scope="session")
def kestra_airflow_home() -> Iterator[Path]:
    """The AIRFLOW_HOME of the session with its metadata database migrated (one ``airflow db migrate``).

    ``dag.test()`` stores its DAG run, task instances and XComs in that database. Needs
    ``prepare_airflow_env`` in ``conftest.py`` first.
    """
    home = prepared_airflow_home()
    if home is None:
        pytest.fail(
            "kestra_airflow_home needs prepare_airflow_env(dags_folder=...) at the top of conftest.py, "
            "before anything imports Airflow (see the provider's docs/testing.md)",
            pytrace=False,
        )
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"airflow db migrate failed ({result.returncode}):\n{result.stderr[-4000:]}", pytrace=False
        )
    yield home


@pytest.fixture
def kestra_simulator_options() -> dict[str, Any]:
    """Keyword arguments for :class:`KestraSimulator`; override to change the default profile."""
    return {}


@pytest.fixture
def kestra_simulator(
    request: pytest.FixtureRequest, kestra_simulator_options: dict[str, Any]
) -> Iterator[KestraSimulator]:
    """A running Kestra simulator, stopped after the test."""
    from airflow_provider_kestra.testing.simulator import KestraSimulator

    options = {**kestra_simulator_options, **getattr(request, "param", {})}
    with KestraSimulator(**options) as simulator:
        yield simulator
