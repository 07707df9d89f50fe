"""The package registers with Airflow through its entry point, on whichever Airflow line is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_kestra
from airflow_provider_kestra.connection_form import (
    KESTRA_CONN_FIELDS,
    KESTRA_HIDDEN_FIELDS,
    KESTRA_RELABELING,
    KESTRA_STANDARD_PLACEHOLDERS,
)
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
    heavy = (
        "requests",
        "httpx",
        "yaml",
        "airflow_provider_kestra.hooks",
        "airflow_provider_kestra.testing",
        # The trigger (and Airflow's trigger base) load only when a task defers.
        "airflow_provider_kestra.triggers",
        "airflow.triggers",
    )
    assert [m for m in added if m.split(".")[0] in heavy or m.startswith(heavy)] == []


def test_the_sensor_module_does_not_import_the_operators_module() -> None:
    """Operator and sensor share airflow_provider_kestra.bases, not each other's modules."""
    probe = (
        "import sys, json; import airflow_provider_kestra.sensors.kestra;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('airflow_provider_kestra.'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "airflow_provider_kestra.bases" in loaded
    assert "airflow_provider_kestra.operators.kestra" not in loaded


def _kestra_form_as_airflow_loads_it() -> tuple[dict[str, tuple[str, str, bool, Any]], dict[str, Any]]:
    """The ``kestra`` form as this Airflow line's providers manager loads it: per extra field (label, help
    text, secret, default), and the field behaviour. Airflow 3 reads the provider info's conn-fields;
    Airflow 2 calls KestraHook.get_connection_form_widgets / get_ui_field_behaviour."""
    import warnings

    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manager = ProvidersManager()
        widgets = manager.connection_form_widgets
        behaviour = manager.field_behaviours["kestra"]
    fields = {}
    for key, widget in widgets.items():
        if not key.startswith("extra__kestra__"):
            continue
        field = widget.field
        if isinstance(field, dict):  # Airflow 3: JSON schema, with the label as its title
            label, help_text, default = field["schema"]["title"], field["description"], field["value"]
        else:  # Airflow 2: a wtforms field
            label, help_text = str(field.args[0]), str(field.kwargs.get("description"))
            default = field.kwargs.get("default")
        fields[widget.field_name] = (label, help_text, widget.is_sensitive, default)
    return fields, behaviour


def test_airflow_shows_the_connection_form_of_the_one_table() -> None:
    """Every extra has a label and help text and no default (a saved default such as "main" makes
    Airflow warn about masking a too-short secret in every task log); placeholders show the defaults."""
    fields, behaviour = _kestra_form_as_airflow_loads_it()
    assert fields == {f.name: (f.label, f.description, f.secret, None) for f in KESTRA_CONN_FIELDS}
    assert all(f.label and f.description and f.placeholder for f in KESTRA_CONN_FIELDS)
    assert behaviour == {
        "hidden_fields": list(KESTRA_HIDDEN_FIELDS),
        "relabeling": KESTRA_RELABELING,
        "placeholders": {
            **KESTRA_STANDARD_PLACEHOLDERS,
            **{f"extra__kestra__{f.name}": f.placeholder for f in KESTRA_CONN_FIELDS},
        },
    }


def test_both_airflow_forms_list_the_same_fields_labels_and_help_text() -> None:
    """The Airflow 3 provider info and the Airflow 2 hook widgets, compared with each other directly."""
    pytest.importorskip("flask_appbuilder", reason="Airflow 2 widgets need Flask-AppBuilder (Airflow 2.x)")
    from wtforms import PasswordField

    from airflow_provider_kestra.hooks.kestra import KestraHook

    def is_password(field: Any) -> bool:
        return bool(field.field_class is PasswordField)

    [connection_type] = get_provider_info()["connection-types"]
    airflow3 = {
        name: (field["label"], field["description"], field["schema"].get("format") == "password")
        for name, field in connection_type["conn-fields"].items()
    }
    airflow2 = {
        name: (str(field.args[0]), str(field.kwargs["description"]), is_password(field))
        for name, field in KestraHook.get_connection_form_widgets().items()
    }
    assert list(airflow2) == list(airflow3)
    assert airflow2 == airflow3
    behaviour3 = connection_type["ui-field-behaviour"]
    assert KestraHook.get_ui_field_behaviour() == {key.replace("-", "_"): v for key, v in behaviour3.items()}
