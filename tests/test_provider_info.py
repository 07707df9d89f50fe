"""The package registers with Airflow through its entry point, on whichever Airflow line is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import airflow_provider_kestra
from airflow_provider_kestra.get_provider_info import get_provider_info


def _airflow_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    # Unit-test mode logs a notice line before the JSON document; keep only the document.
    return next(line for line in result.stdout.splitlines() if line.startswith(("[{", "[]")))


def test_entry_point_points_at_get_provider_info() -> None:
    entry_points = metadata.entry_points(group="apache_airflow_provider")
    targets = {ep.value for ep in entry_points if ep.dist and ep.dist.name == "airflow-provider-kestra"}
    assert targets == {"airflow_provider_kestra.get_provider_info:get_provider_info"}


def test_every_class_named_in_provider_info_imports() -> None:
    import importlib

    info = get_provider_info()
    modules = [
        m
        for key in ("hooks", "operators", "sensors", "triggers")
        for e in info[key]
        for m in e["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    class_paths = [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]
    for path in class_paths:
        module_name, _, class_name = path.rpartition(".")
        assert hasattr(importlib.import_module(module_name), class_name), path


def test_airflow_lists_the_provider_and_its_hook() -> None:
    providers = json.loads(_airflow_cli("providers", "list", "--output", "json"))
    ours = [p for p in providers if p["package_name"] == "airflow-provider-kestra"]
    assert ours and ours[0]["version"] == airflow_provider_kestra.__version__

    hooks = json.loads(_airflow_cli("providers", "hooks", "--output", "json"))
    kestra = [h for h in hooks if h["connection_type"] == "kestra"]
    assert kestra and kestra[0]["class"] == "airflow_provider_kestra.hooks.kestra.KestraHook"


def test_package_ships_py_typed() -> None:
    assert (Path(airflow_provider_kestra.__file__).parent / "py.typed").is_file()


def test_dag_parse_imports_stay_light() -> None:
    """Importing the operator and sensor modules pulls in nothing heavy beyond what Airflow's SDK loads."""
    probe = (
        "import sys; from airflow_provider_kestra.version_compat import BaseOperator;"
        "before=set(sys.modules);"
        "import airflow_provider_kestra.operators.kestra, airflow_provider_kestra.sensors.kestra;"
        "import json; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    added = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = ("requests", "httpx", "yaml", "airflow_provider_kestra.hooks", "airflow_provider_kestra.testing")
    assert [m for m in added if m.split(".")[0] in heavy or m.startswith(heavy)] == []
