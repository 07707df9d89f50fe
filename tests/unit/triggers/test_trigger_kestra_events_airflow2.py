"""On Airflow 2 the event trigger is refused at import with an error that names the Airflow 3 requirement.

The module itself still imports (the provider registers it, and Airflow 2's providers manager may load it),
so only asking for the class fails, and says why.
"""

from __future__ import annotations

import importlib

import pytest

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

pytestmark = pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="checks the Airflow 2 refusal")


def test_importing_the_trigger_says_airflow_3_is_needed() -> None:
    from airflow import __version__

    module = importlib.import_module("airflow_provider_kestra.triggers.kestra_events")
    with pytest.raises(ImportError, match=r"needs Airflow 3\.0 or later") as raised:
        from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger  # noqa: F401
    assert isinstance(raised.value, module.KestraAirflowVersionError)
    assert __version__ in str(raised.value)
    assert "KestraExecutionSensor" in str(raised.value)  # what to use instead


def test_other_names_still_fail_as_attributes() -> None:
    module = importlib.import_module("airflow_provider_kestra.triggers.kestra_events")
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
