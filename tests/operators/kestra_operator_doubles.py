"""Test doubles for the operator tests: a task instance, Kestra executions, a task state store."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from unittest import mock

BASE = "http://kestra.test:8080"
API = f"{BASE}/api/v1/main"
CONN_URI = "kestra://admin%40kestra.io:s3cret-pass@kestra.test:8080?api_version=1"


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


def execution(
    execution_id: str = "ex1", state: str = "RUNNING", *, outputs: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A Kestra execution as the hook returns it (Kestra's JSON)."""
    body: dict[str, Any] = {
        "id": execution_id,
        "namespace": "company.team",
        "flowId": "hello",
        "state": {"current": state},
        "labels": [],
    }
    if outputs is not None:
        body["outputs"] = outputs
    body.update(extra)
    return body


class FakeTaskStateStore:
    """Airflow 3.3's ``task_state_store`` accessor, in memory."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value


def use_hook(operator: Any, double: mock.MagicMock) -> Any:
    """Make every client the operator builds (main, log follower, on_kill) the double."""
    operator.__dict__["hook"] = double
    operator.__dict__["_log_hook"] = double
    operator._new_hook = lambda: double
    return operator
