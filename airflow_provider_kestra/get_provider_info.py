"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

This module must import nothing from Airflow: the providers manager loads it while Airflow itself is
still starting up.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_kestra import __version__
from airflow_provider_kestra.connection_form import conn_fields, provider_ui_field_behaviour


def get_provider_info() -> dict[str, Any]:
    """Describe the package, its connection type and its classes to Airflow."""
    return {
        "package-name": "airflow-provider-kestra",
        "name": "Kestra",
        "description": "Deploy Kestra flows and trigger, watch, kill and resume Kestra executions.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Kestra",
                "external-doc-url": "https://kestra.io/docs/api-reference",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Kestra", "python-modules": ["airflow_provider_kestra.hooks.kestra"]}],
        "operators": [
            {
                "integration-name": "Kestra",
                "python-modules": [
                    "airflow_provider_kestra.operators.kestra",
                    "airflow_provider_kestra.operators.kestra_lifecycle",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Kestra", "python-modules": ["airflow_provider_kestra.sensors.kestra"]}
        ],
        "triggers": [
            {
                "integration-name": "Kestra",
                "python-modules": [
                    "airflow_provider_kestra.triggers.kestra",
                    "airflow_provider_kestra.triggers.kestra_events",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": "kestra",
                "hook-class-name": "airflow_provider_kestra.hooks.kestra.KestraHook",
                "hook-name": "Kestra",
                # The Airflow 3 connection form; KestraHook renders the same table for Airflow 2.11.
                "conn-fields": conn_fields(),
                "ui-field-behaviour": provider_ui_field_behaviour(),
            }
        ],
        "extra-links": ["airflow_provider_kestra.links.kestra.KestraExecutionLink"],
    }
