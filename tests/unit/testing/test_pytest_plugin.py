"""The pytest story of docs/testing.md: ``prepare_airflow_env``, ``kestra_airflow_home`` and the example.

The documented example is run as written: its three files are read from the doc, written into an empty
folder and run with pytest in a subprocess (a clean interpreter and environment, as a user would), so the
doc cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "testing.md"
EXAMPLE_FILES = ("dags/my_dag.py", "tests/conftest.py", "tests/test_my_dag.py")


def clean_env() -> dict[str, str]:
    """This process's environment without the test session's Airflow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST_"))}


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=clean_env(), capture_output=True, text=True, check=False
    )


def run_pytest(cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def doc_files() -> dict[str, str]:
    """The example's files: each ```python block of the doc whose first line is ``# <path>``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    files = {}
    for block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# ") and first[2:].strip() in EXAMPLE_FILES:
            files[first[2:].strip()] = block
    return files


def test_the_doc_has_the_three_example_files() -> None:
    assert sorted(doc_files()) == sorted(EXAMPLE_FILES)


def test_prepare_airflow_env_sets_the_environment_without_importing_airflow(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from airflow_provider_kestra.testing import prepare_airflow_env\n"
        "home = prepare_airflow_env(dags_folder='dags')\n"
        "print(home == __import__('pathlib').Path(os.environ['AIRFLOW_HOME']))\n"
        "print(os.environ['AIRFLOW__CORE__DAGS_FOLDER'])\n"
        "print(os.environ['AIRFLOW__CORE__LOAD_EXAMPLES'])\n"
        "print(os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'] == f'sqlite:///{home}/airflow.db')\n"
        "print('airflow' in sys.modules)\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True",
        str((tmp_path / "dags").resolve()),
        "False",
        "True",
        "False",
    ]


def test_prepare_airflow_env_refuses_once_airflow_is_imported(tmp_path: Path) -> None:
    pytest.importorskip("airflow")
    code = (
        "import airflow\n"
        "from airflow_provider_kestra.testing import prepare_airflow_env\n"
        "prepare_airflow_env(dags_folder='dags')\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 1
    assert "RuntimeError: prepare_airflow_env() must run before Airflow is imported" in result.stderr


def test_kestra_airflow_home_without_prepare_fails_with_a_pointer_to_the_doc(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["airflow_provider_kestra.testing.pytest_plugin"]\n'
    )
    (tmp_path / "test_x.py").write_text("def test_x(kestra_airflow_home):\n    pass\n")
    result = run_pytest(tmp_path, timeout=120)
    assert result.returncode == 1, result.stdout
    assert "kestra_airflow_home needs prepare_airflow_env(dags_folder=...) at the top of conftest.py" in (
        result.stdout
    )


@pytest.mark.integration
def test_the_documented_example_passes_in_an_empty_folder(tmp_path: Path) -> None:
    pytest.importorskip("airflow")
    for name, text in doc_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    result = run_pytest(tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout[-2000:]
