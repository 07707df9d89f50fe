"""Fixtures for the operator unit tests: a Kestra connection, a hook double, stdlib logging."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from kestra_operator_doubles import BASE, CONN_URI


@pytest.fixture
def kestra_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", CONN_URI)
    return CONN_URI


@pytest.fixture
def hook() -> mock.MagicMock:
    """A KestraHook double with the real signatures; unconfigured calls return MagicMocks."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    double = mock.create_autospec(KestraHook, instance=True)
    double.execution_ui_url.side_effect = lambda e: (
        f"{BASE}/ui/main/executions/company.team/hello/" + (e if isinstance(e, str) else e["id"])
    )
    double.get_logs.return_value = ([], {"since": None, "seen": []})
    double.get_outputs.return_value = {"outputs": {}, "task_outputs": {}}
    double.search_executions.return_value = []
    return double


@pytest.fixture
def std_log(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Route an operator class's ``self.log`` to a stdlib logger so ``caplog`` sees it on Airflow 2 and 3."""
    import logging

    def route(operator_class: type) -> None:
        logger = logging.getLogger(f"test.{operator_class.__name__}")
        monkeypatch.setattr(operator_class, "log", property(lambda _self: logger))

    return route
