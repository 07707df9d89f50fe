"""Fixtures for the whole test run (``pytest_plugins`` of ``tests/conftest.py``).

* ``_forget_kestra_servers`` (autouse): empties the hooks' per-process caches (server info, connection
  settings) before each test.
* ``airflow_db``: the session's SQLite metadata DB, migrated once; yields AIRFLOW_HOME.
* ``kestra_conn``: ``AIRFLOW_CONN_KESTRA_DEFAULT`` pointing at the mocked test server; the URI comes from
  ``kestra_conn_uri`` (override it, e.g. with ``CONN_URI_V1``, to pin the API version).
* ``std_log``: ``std_log(SomeOperator)`` sends the class's ``self.log`` to a stdlib logger (for ``caplog``).
* ``kestra_sim``: one simulator per Kestra profile ("1.3", "2.0"), shared by the session; each test that
  uses it runs once per profile. A suite picks another simulator by overriding this fixture.
* ``kestra_side`` (alias ``kestra``): ``kestra_sim`` as the ``kestra_default`` connection, no fault rules;
  deploys flows and reads executions back (``KestraTestSide``).
* ``make_dag``: ``make_dag(suffix="", **default_args)``, a DAG whose id is unique to the test.
* ``run_dag``: runs a DAG with ``dag.test()`` and returns states, tries, XComs and the captured output.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.dag_runner import DagFactory, DagRunner, DagTestRun, build_dag, dag_id_for, run_dag_with_capture
from support.kestra_payloads import CONN_URI
from support.kestra_side import KestraTestSide, kestra_side_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_kestra.testing import KestraSimulator

KESTRA_PROFILES = ("1.3", "2.0")


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """Migrate the session's SQLite metadata DB once; yields AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    yield Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(autouse=True)
def _forget_kestra_servers() -> None:
    """Each test starts with no stored ``/api/v1/configs`` answer nor connection settings: the hooks keep
    them per process (server answers for ten minutes, the async hook's settings for 30 s), and tests mock
    different versions at the same URL and point ``kestra_default`` elsewhere."""
    server_info = sys.modules.get("airflow_provider_kestra.hooks.kestra_server_info")
    async_hook = sys.modules.get("airflow_provider_kestra.hooks.kestra_async")  # not imported for nothing
    if server_info is not None:
        server_info.SERVER_INFO_CACHE.clear()
    if async_hook is not None:
        async_hook.CONNECTION_SETTINGS.clear()


@pytest.fixture
def kestra_conn_uri() -> str:
    """The URI of ``kestra_conn``: the test server, API version detected from ``/api/v1/configs``."""
    return CONN_URI


@pytest.fixture
def kestra_conn(monkeypatch: pytest.MonkeyPatch, kestra_conn_uri: str) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", kestra_conn_uri)
    return kestra_conn_uri


@pytest.fixture
def std_log(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], None]:
    """Route a class's ``self.log`` to a stdlib logger so ``caplog`` sees it on Airflow 2 and 3."""

    def route(task_class: type) -> None:
        logger = logging.getLogger(f"test.{task_class.__name__}")
        monkeypatch.setattr(task_class, "log", property(lambda _self: logger))

    return route


@pytest.fixture(scope="session", params=KESTRA_PROFILES, ids=[f"kestra{p}" for p in KESTRA_PROFILES])
def kestra_sim(request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    """A running simulator of one Kestra profile, shared by every test of the session."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version=request.param) as sim:
        yield sim


@pytest.fixture
def kestra_side(
    kestra_sim: KestraSimulator,
    airflow_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[KestraTestSide]:
    """The simulator of this test as Airflow's ``kestra_default`` connection, without fault rules."""
    with kestra_side_for(kestra_sim, request, monkeypatch) as side:
        yield side


@pytest.fixture
def kestra(kestra_side: KestraTestSide) -> KestraTestSide:
    """The integration suite's name for ``kestra_side``."""
    return kestra_side


@pytest.fixture
def make_dag(request: pytest.FixtureRequest) -> DagFactory:
    """Factory of DAGs with an id unique to this test; use as ``with make_dag() as dag: ...``."""

    def build(suffix: str = "", **default_args: Any) -> Any:
        return build_dag(dag_id_for(request, suffix), **default_args)

    return build


@pytest.fixture
def run_dag(capfd: pytest.CaptureFixture[str]) -> DagRunner:
    """Run a DAG with ``dag.test()``; the result carries the tasks' output captured from stdout/stderr."""

    def run(dag: Any) -> DagTestRun:
        return run_dag_with_capture(dag, capfd)

    return run
