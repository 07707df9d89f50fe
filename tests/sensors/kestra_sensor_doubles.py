"""Test doubles for the sensor tests: the Airflow context and Kestra executions."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from unittest import mock

UI = "http://kestra.test:8080/ui/main/executions/company.team/hello/"
INTERVAL_START = datetime(2026, 11, 21, tzinfo=timezone.utc)


def sensor_context(**extra: Any) -> dict[str, Any]:
    """What the sensor reads from the Airflow context: the TI (for XCom) and the data interval."""
    return {"ti": mock.MagicMock(), "data_interval_start": INTERVAL_START, **extra}


def execution(execution_id: str = "ex1", state: str = "RUNNING") -> dict[str, Any]:
    return {"id": execution_id, "namespace": "company.team", "flowId": "hello", "state": {"current": state}}


def use_hook(sensor: Any, double: mock.MagicMock) -> Any:
    sensor.__dict__["hook"] = double
    return sensor
