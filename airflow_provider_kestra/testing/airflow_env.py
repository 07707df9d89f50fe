"""``prepare_airflow_env``: the environment ``dag.test()`` needs, set before Airflow is imported.

Kept apart from :mod:`.pytest_plugin` so that ``conftest.py`` can call it before pytest registers the plugin
(importing the plugin module first would stop pytest from rewriting its asserts). Imports no Airflow.
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

#: The AIRFLOW_HOME :func:`prepare_airflow_env` prepared, if it ran.
_PREPARED_HOME: list[Path] = []


def prepare_airflow_env(
    dags_folder: str | os.PathLike[str], *, home: str | os.PathLike[str] | None = None
) -> Path:
    """Point Airflow at a throw-away home and your DAG files; call it before anything imports Airflow.

    Sets ``AIRFLOW_HOME`` (a new temporary folder unless ``home`` is given), a SQLite metadata database in
    it, ``AIRFLOW__CORE__DAGS_FOLDER`` (Airflow 3's ``dag.test()`` serializes a DAG by parsing the DAG
    bundle, by default this folder, so the DAG under test must be in a file there) and
    ``AIRFLOW__CORE__LOAD_EXAMPLES=False``; on Airflow 2 also the ``SequentialExecutor``, the one that works
    with SQLite. Returns the home. Raises RuntimeError when Airflow is already imported, since it would
    keep the configuration it read then.
    """
    if "airflow" in sys.modules:
        raise RuntimeError(
            "prepare_airflow_env() must run before Airflow is imported (Airflow reads its configuration "
            "once): call it at the top of conftest.py, before any import of a DAG or of airflow"
        )
    home_path = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="airflow-tests-"))
    home_path.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home_path)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home_path / 'airflow.db'}"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(dags_folder).resolve())
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    if metadata.version("apache-airflow").startswith("2."):
        os.environ["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
    _PREPARED_HOME[:] = [home_path]
    return home_path


def prepared_airflow_home() -> Path | None:
    """The AIRFLOW_HOME :func:`prepare_airflow_env` prepared, or None when it did not run."""
    return _PREPARED_HOME[0] if _PREPARED_HOME else None
