"""Fixtures for the sensor unit tests: a Kestra hook double."""

from __future__ import annotations

from unittest import mock

import pytest
from kestra_sensor_doubles import UI


@pytest.fixture
def hook() -> mock.MagicMock:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    double = mock.create_autospec(KestraHook, instance=True)
    double.execution_ui_url.side_effect = lambda e: UI + (e if isinstance(e, str) else e["id"])
    double.search_executions.return_value = []
    return double
