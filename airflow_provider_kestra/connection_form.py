"""The ``kestra`` connection form, described once for both Airflow lines.

Airflow 3 reads the form from the provider info (``conn-fields`` and ``ui-field-behaviour`` in
:mod:`airflow_provider_kestra.get_provider_info`); Airflow 2.11 asks the hook class
(``KestraHook.get_connection_form_widgets`` / ``get_ui_field_behaviour``). Both are rendered from the
table below, so the two forms cannot drift apart again.

No field has a default value, on purpose: a default is saved into the connection's extra, and Airflow then
warns "Skipping masking for a secret as it's too short" for short values such as ``main`` or ``true`` in
every task log. The defaults are applied by :mod:`airflow_provider_kestra.utils.connection` when a field
is empty, and the form shows them as placeholders and in the help text instead.

This module imports nothing from Airflow: the providers manager loads ``get_provider_info`` while Airflow
itself is still starting up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class KestraConnField:
    """One extra field of the connection form (stored in the connection's extra under ``name``).

    :param name: Key in the extra, and in :mod:`~airflow_provider_kestra.utils.connection`.
    :param label: Field label in the form.
    :param description: Help text under the field: what it is, and what an empty field means.
    :param placeholder: Example shown in the empty field (never saved).
    :param secret: A password field, masked in the form and in logs.
    :param json_type: Value type for the Airflow 3 form (``string`` or ``number``).
    """

    name: str
    label: str
    description: str
    placeholder: str
    secret: bool = False
    json_type: Literal["string", "number"] = "string"


KESTRA_CONN_FIELDS: tuple[KestraConnField, ...] = (
    KestraConnField(
        name="token",
        label="API token (EE / Cloud)",
        description=(
            "Kestra API token (Enterprise Edition, Kestra Cloud), sent as a Bearer token. Leave Username "
            "and Password empty when you set it: a connection with both is refused."
        ),
        placeholder="API token; leave Username and Password empty when set",
        secret=True,
    ),
    KestraConnField(
        name="tenant",
        label="Tenant",
        description="Kestra tenant id. Empty means main, the only tenant of Kestra OSS.",
        placeholder="main",
    ),
    KestraConnField(
        name="verify",
        label="Verify TLS",
        description=(
            "Check the server's TLS certificate: true, false, or the path of a CA bundle file on the "
            "workers and the triggerer. Empty means true."
        ),
        placeholder="true",
    ),
    KestraConnField(
        name="timeout",
        label="Request timeout (seconds)",
        description="Seconds one HTTP request to Kestra may take. Empty means 30.",
        placeholder="30",
        json_type="number",
    ),
    KestraConnField(
        name="ui_url",
        label="Public UI URL",
        description=(
            "Base URL of the Kestra UI for the task's 'Kestra execution' link, when it differs from the "
            "Kestra URL above (for example behind a proxy). Empty means the Kestra URL."
        ),
        placeholder="https://kestra.example.com",
    ),
    KestraConnField(
        name="api_version",
        label="API version",
        description=(
            "Kestra REST API generation: auto detects it once with GET /api/v1/configs; 0.22, 1 or 2 "
            "pins it and skips the detection. Empty means auto."
        ),
        placeholder="auto",
    ),
)
"""The extra fields, in form order."""

KESTRA_HIDDEN_FIELDS: tuple[str, ...] = ("schema", "extra")
"""Standard fields the form hides: the scheme goes in the Kestra URL, and the extras have their own fields."""

KESTRA_RELABELING: dict[str, str] = {
    "host": "Kestra URL",
    "login": "Username (basic auth)",
    "password": "Password",
}
"""Labels of the standard fields the ``kestra`` connection uses."""

KESTRA_STANDARD_PLACEHOLDERS: dict[str, str] = {
    "host": "https://kestra.example.com or http://localhost:8080",
    "port": "8080 (when not in the URL)",
    "login": "admin@kestra.io (leave empty with an API token)",
}
"""Placeholders of the standard fields (they have no help text in either Airflow form)."""


def conn_fields() -> dict[str, dict[str, Any]]:
    """The Airflow 3 ``conn-fields`` of the provider info: label, help text and JSON schema per extra."""
    fields: dict[str, dict[str, Any]] = {}
    for field in KESTRA_CONN_FIELDS:
        schema: dict[str, Any] = {"type": [field.json_type, "null"]}
        if field.secret:
            schema["format"] = "password"
        fields[field.name] = {"label": field.label, "description": field.description, "schema": schema}
    return fields


def ui_field_behaviour() -> dict[str, Any]:
    """Hidden fields, labels and placeholders, as ``KestraHook.get_ui_field_behaviour`` returns them."""
    return {
        "hidden_fields": list(KESTRA_HIDDEN_FIELDS),
        "relabeling": dict(KESTRA_RELABELING),
        "placeholders": {
            **KESTRA_STANDARD_PLACEHOLDERS,
            **{field.name: field.placeholder for field in KESTRA_CONN_FIELDS},
        },
    }


def provider_ui_field_behaviour() -> dict[str, Any]:
    """:func:`ui_field_behaviour` under the provider info's kebab-case keys (Airflow 3)."""
    return {key.replace("_", "-"): value for key, value in ui_field_behaviour().items()}
