"""Unit tests of KestraExecutionSensor (hook double; poke, deferral and event mapping)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
from support.airflow_doubles import INTERVAL_START, sensor_context, use_hook
from support.kestra_payloads import UI, execution

from airflow_provider_kestra.exceptions import KestraError
from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor
from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import PokeReturnValue
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
else:
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
    from airflow.sensors.base import PokeReturnValue  # type: ignore[no-redef]


def by_id(**kwargs: Any) -> KestraExecutionSensor:
    return KestraExecutionSensor(task_id="wait", execution_id="ex1", **kwargs)


def by_flow(**kwargs: Any) -> KestraExecutionSensor:
    return KestraExecutionSensor(task_id="wait", namespace="company.team", flow_id="hello", **kwargs)


def pushed(context: dict[str, Any]) -> dict[str, Any]:
    return {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}


@pytest.mark.parametrize("state", ["CREATED", "RUNNING", "PAUSED", "KILLING", "SOMETHING_NEW"])
def test_not_finished_or_unknown_states_keep_waiting(hook: mock.MagicMock, state: Any) -> None:
    hook.get_execution.return_value = execution(state, execution_id="ex1")
    assert use_hook(by_id(), hook).poke(sensor_context()) is False


def test_success_returns_the_execution_id_and_publishes_the_link(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("SUCCESS", execution_id="ex1")
    context = sensor_context()
    result = use_hook(by_id(), hook).poke(context)
    assert isinstance(result, PokeReturnValue)
    assert result.is_done and result.xcom_value == "ex1"
    assert pushed(context)["execution_url"] == UI + "ex1"


@pytest.mark.parametrize("state", ["FAILED", "KILLED", "CANCELLED", "WARNING"])
def test_failure_states_fail(hook: mock.MagicMock, state: Any) -> None:
    hook.get_execution.return_value = execution(state, execution_id="ex1")
    with pytest.raises(KestraError, match=f"ended in {state}"):
        use_hook(by_id(), hook).poke(sensor_context())


def test_soft_fail_skips_on_failure(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("FAILED", execution_id="ex1")
    with pytest.raises(AirflowSkipException, match="ended in FAILED"):
        use_hook(by_id(soft_fail=True), hook).poke(sensor_context())


def test_narrow_failure_states_keep_waiting_on_other_terminal_states(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("KILLED", execution_id="ex1")
    assert use_hook(by_id(failure_states=["FAILED"]), hook).poke(sensor_context()) is False


def test_warning_accepted_when_in_success_states(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("WARNING", execution_id="ex1")
    result = use_hook(by_id(success_states=["SUCCESS", "WARNING"]), hook).poke(sensor_context())
    assert isinstance(result, PokeReturnValue) and result.xcom_value == "ex1"


def test_flow_mode_searches_the_newest_execution_since_the_data_interval(hook: mock.MagicMock) -> None:
    hook.search_executions.return_value = [execution("SUCCESS", execution_id="ex7")]
    result = use_hook(by_flow(labels={"env": "prod"}), hook).poke(sensor_context())
    assert isinstance(result, PokeReturnValue) and result.xcom_value == "ex7"
    hook.search_executions.assert_called_once_with(
        size=1,
        namespace="company.team",
        flow_id="hello",
        labels={"env": "prod"},
        started_after=INTERVAL_START.isoformat(),
    )


def test_flow_mode_falls_back_to_the_logical_date_then_uses_explicit_start(hook: mock.MagicMock) -> None:
    sensor = use_hook(by_flow(), hook)
    sensor.poke({"ti": None, "data_interval_start": None, "logical_date": INTERVAL_START})
    assert hook.search_executions.call_args.kwargs["started_after"] == INTERVAL_START.isoformat()
    sensor = use_hook(by_flow(started_after="2026-01-01T00:00:00Z"), hook)
    sensor.poke(sensor_context())
    assert hook.search_executions.call_args.kwargs["started_after"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_flow_mode_without_a_logical_date_starts_from_the_dag_run(hook: mock.MagicMock, mode: str) -> None:
    """Case 11: an Airflow 3 run triggered without a logical date has no data interval; an execution that
    ended before the DAG run existed must never match, so the search starts at ``dag_run.run_after``."""
    from types import SimpleNamespace

    created = datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc)
    context = {
        "ti": mock.MagicMock(),
        "data_interval_start": None,
        "logical_date": None,
        "dag_run": SimpleNamespace(run_after=created, start_date=created + timedelta(seconds=2)),
    }
    hook.search_executions.return_value = []
    sensor = use_hook(by_flow(deferrable=mode == "deferred"), hook)
    if mode == "poke":
        assert sensor.poke(context) is False
        assert hook.search_executions.call_args.kwargs["started_after"] == created.isoformat()
    else:
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(context)
        assert deferred.value.trigger.serialize()[1]["started_after"] == created.isoformat()


def test_flow_mode_without_matching_execution_keeps_waiting(hook: mock.MagicMock) -> None:
    assert use_hook(by_flow(), hook).poke(sensor_context()) is False


def test_poke_mode_runs_until_success(hook: mock.MagicMock) -> None:
    hook.get_execution.side_effect = [
        execution("RUNNING", execution_id="ex1"),
        execution("SUCCESS", execution_id="ex1"),
    ]
    sensor = use_hook(by_id(poke_interval=0.01, mode="poke"), hook)
    assert sensor.execute(sensor_context(task_reschedule_count=0)) == "ex1"


def test_deferrable_defers_to_the_shared_trigger_without_kill_rights(hook: mock.MagicMock) -> None:
    hook.search_executions.return_value = []
    sensor = use_hook(
        by_flow(deferrable=True, timeout=3600, poke_interval=9, labels={"env": "prod"}, hook_params={"a": 1}),
        hook,
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(sensor_context())
    assert deferred.value.timeout is None
    trigger = deferred.value.trigger
    assert isinstance(trigger, KestraExecutionTrigger)
    kwargs = trigger.serialize()[1]
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["namespace"] == "company.team" and kwargs["flow_id"] == "hello"
    assert kwargs["labels"] == {"env": "prod"}
    assert kwargs["started_after"] == INTERVAL_START.isoformat()
    assert kwargs["failure_states"] == [
        "CANCELLED",
        "FAILED",
        "KILLED",
        "RESUBMITTED",
        "RETRIED",
        "SKIPPED",
        "WARNING",
    ]
    assert kwargs["poll_interval"] == 9
    assert kwargs["hook_params"] == {"a": 1}
    assert before + 3600 <= kwargs["deadline"] <= time.time() + 3600


def test_deferrable_returns_at_once_when_already_done(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("SUCCESS", execution_id="ex1")
    assert use_hook(by_id(deferrable=True), hook).execute(sensor_context()) == "ex1"


def event(status: str) -> dict[str, Any]:
    return {"status": status, "execution_id": "ex1", "state": "X", "message": f"{status} happened"}


def test_execute_complete_success(hook: mock.MagicMock) -> None:
    context = sensor_context()
    assert use_hook(by_flow(deferrable=True), hook).execute_complete(context, event("success")) == "ex1"
    assert pushed(context)["execution_id"] == "ex1"


@pytest.mark.parametrize(
    ("status", "soft_fail", "expected"),
    [
        ("failed", False, KestraError),
        ("failed", True, AirflowSkipException),
        ("timeout", False, AirflowSensorTimeout),
        ("timeout", True, AirflowSkipException),
        ("error", False, KestraError),
        ("cancelled", False, KestraError),
    ],
)
def test_execute_complete_maps_every_status(
    hook: mock.MagicMock, status: Any, soft_fail: Any, expected: Any
) -> None:
    sensor = use_hook(by_id(deferrable=True, soft_fail=soft_fail), hook)
    with pytest.raises(expected):
        sensor.execute_complete(sensor_context(), event(status))


def test_execute_complete_without_event_fails(hook: mock.MagicMock) -> None:
    with pytest.raises(KestraError, match="unexpected event"):
        use_hook(by_id(), hook).execute_complete(sensor_context(), None)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({}, "either"),
        ({"execution_id": "e", "namespace": "n", "flow_id": "f"}, "either"),
        ({"namespace": "n"}, "go together"),
        ({"execution_id": "e", "labels": {"a": "b"}}, "only apply"),
        ({"execution_id": "e", "success_states": ["FAILED"], "failure_states": ["FAILED"]}, "overlap"),
        ({"execution_id": "e", "success_states": ["DONE"]}, "unknown success state"),
    ],
)
def test_argument_errors(kwargs: Any, problem: Any) -> None:
    with pytest.raises(ValueError, match=problem):
        KestraExecutionSensor(task_id="wait", **kwargs)
