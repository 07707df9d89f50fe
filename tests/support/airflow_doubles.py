"""Airflow-side doubles for the unit tests: a task instance, task contexts, a task state store, a hook.

Nothing here runs Airflow: operators, sensors and triggers get what they read from Airflow (the task
instance, the context, Airflow 3.3's ``task_state_store``) and a ``KestraHook`` with the real signatures.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from unittest import mock

from support.kestra_payloads import UI

INTERVAL_START = datetime(2026, 11, 21, tzinfo=timezone.utc)


def make_ti(*, try_number: int = 1, max_tries: int = 0, map_index: int = -1) -> mock.MagicMock:
    """A task instance double: ids, try bookkeeping, a start date, and recorded xcom_push calls."""
    return mock.MagicMock(
        dag_id="etl",
        run_id="manual__2026-11-22T10:00:00+00:00",
        task_id="run_flow",
        map_index=map_index,
        try_number=try_number,
        max_tries=max_tries,
        start_date=datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc),
    )


def pushed(ti: mock.MagicMock) -> dict[str, Any]:
    """XComs the task pushed, by key (last value wins)."""
    return {c.kwargs["key"]: c.kwargs["value"] for c in ti.xcom_push.call_args_list}


def sensor_context(**extra: Any) -> dict[str, Any]:
    """What the sensor reads from the Airflow context: the TI (for XCom) and the data interval."""
    return {"ti": mock.MagicMock(), "data_interval_start": INTERVAL_START, **extra}


class FakeTaskStateStore:
    """Airflow 3.3's ``task_state_store`` accessor, in memory."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value


def hook_double() -> mock.MagicMock:
    """A ``KestraHook`` double with the real signatures; unconfigured calls return MagicMocks.

    It links executions to ``UI``, finds no executions and reads no logs or outputs until told otherwise.
    """
    from airflow_provider_kestra.hooks.kestra import KestraHook

    double = mock.create_autospec(KestraHook, instance=True)
    double.execution_ui_url.side_effect = lambda e: UI + (e if isinstance(e, str) else e["id"])
    double.get_logs.return_value = ([], {"since": None, "seen": []})
    double.get_outputs.return_value = {"outputs": {}, "task_outputs": {}}
    double.search_executions.return_value = []
    return double


def use_hook(task: Any, double: mock.MagicMock) -> Any:
    """Make every client an operator or sensor builds (main, log follower, on_kill) the double."""
    task.__dict__["hook"] = double
    task.__dict__["_log_hook"] = double
    task._new_hook = lambda: double
    return task
