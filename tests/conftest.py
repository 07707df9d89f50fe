"""Session-wide test setup: a throw-away AIRFLOW_HOME with a SQLite metadata DB, and the shared fixtures.

The environment is set at import time, before any test module imports Airflow, so every test in the run
sees the same temporary home and no test touches a real Airflow installation. The fixtures every suite
shares live in ``tests/support/fixtures.py`` (``airflow_db``, ``kestra_conn``, ``kestra_side``, ``make_dag``,
``run_dag``...), registered here once for the whole run.
"""

from __future__ import annotations

import os
import tempfile
from importlib import metadata
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="kestra-provider-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_HOME / 'airflow.db'}")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_HOME / "dags"))
if metadata.version("apache-airflow").startswith("2."):
    # Airflow 2's unit-test config picks LocalExecutor, which refuses SQLite as soon as a sensor in
    # reschedule mode (or anything else) loads the executor.
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")

pytest_plugins = ["airflow_provider_kestra.testing.pytest_plugin", "support.fixtures"]
