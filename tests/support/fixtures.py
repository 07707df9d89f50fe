"""Fixtures for the whole test run (``pytest_plugins`` of ``tests/conftest.py``).

* ``airflow_db``: the session's SQLite metadata DB, migrated once; yields AIRFLOW_HOME.
* ``kestra_conn``: ``AIRFLOW_CONN_KESTRA_DEFAULT`` pointing at the mocked test server; the URI comes from
  ``kestra_conn_uri`` (override it, e.g. with ``CONN_URI_V1``, to pin the API version).
* ``std_log``: ``std_log(SomeOperator)`` sends the class's ``self.log`` to a stdlib logger (for ``caplog``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.kestra_payloads import CONN_URI

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


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
