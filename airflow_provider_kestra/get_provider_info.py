"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

This module must import nothing from Airflow: the providers manager loads it while Airflow itself is
still starting up.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_kestra import __version__


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
            {"integration-name": "Kestra", "python-modules": ["airflow_provider_kestra.operators.kestra"]}
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
                # Airflow 3 connection form; KestraHook.get_connection_form_widgets/get_ui_field_behaviour
                # describe the same form for Airflow 2.11.
                "conn-fields": {
                    "token": {
                        "label": "API token (EE / Cloud)",
                        "description": "Sent as a Bearer token. Leave login/password empty when set.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "tenant": {
                        "label": "Tenant",
                        "description": "Kestra tenant id; OSS accepts only 'main'.",
                        "schema": {"type": ["string", "null"], "default": "main"},
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "true, false, or the path of a CA bundle.",
                        "schema": {"type": ["string", "null"], "default": "true"},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 30, "minimum": 1},
                    },
                    "ui_url": {
                        "label": "Public UI URL",
                        "description": "Base of Kestra UI links when it differs from the API URL.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "auto (detect with GET /api/v1/configs), or pin 0.22, 1 or 2.",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "auto",
                            "enum": ["auto", "0.22", "1", "2"],
                        },
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "extra"],
                    "relabeling": {
                        "host": "Kestra URL",
                        "login": "Username (basic auth)",
                        "password": "Password",
                    },
                    "placeholders": {
                        "host": "https://kestra.example.com or http://localhost:8080",
                        "port": "8080 (when not in the URL)",
                        "login": "admin@kestra.io (leave empty with an API token)",
                    },
                },
            }
        ],
        "extra-links": ["airflow_provider_kestra.links.kestra.KestraExecutionLink"],
    }
