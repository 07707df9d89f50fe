"""Unit tests of KestraExecutionTrigger: serialization round trips and one event per outcome (respx)."""

from __future__ import annotations

import importlib
import json
import logging
import time
from typing import Any

import httpx
import pytest
import respx
from support.kestra_payloads import API, BASE, CONN_URI_V1, PASSWORD, execution, iso, task_run

from airflow_provider_kestra.triggers.kestra import LOG_CURSOR_XCOM_KEY, KestraExecutionTrigger
from airflow_provider_kestra.utils.logs import search_since
from airflow_provider_kestra.utils.models import KestraTriggerEvent


@pytest.fixture
def kestra_conn_uri() -> str:
    """Pinned to API version 1: the mocked server answers no ``/api/v1/configs``."""
    return CONN_URI_V1


@pytest.fixture(autouse=True)
def _connection(kestra_conn: str) -> None:
    """Every test talks to the mocked server through ``kestra_default``."""


@pytest.fixture
def trigger_log(std_log: Any) -> None:
    """Send the trigger's ``self.log`` to a stdlib logger so ``caplog`` sees it on Airflow 2 and 3."""
    std_log(KestraExecutionTrigger)


@pytest.fixture
def kestra() -> Any:
    """Kestra without a usable event stream (``/follow`` answers 404), so the trigger polls; tests of the
    stream path mock ``/follow`` again."""
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/executions/ex1/follow").mock(return_value=httpx.Response(404))
        router.get(f"{API}/executions/ex5/follow").mock(return_value=httpx.Response(404))
        yield router


def sse(*frames: tuple[str, dict[str, Any]]) -> httpx.Response:
    body = "".join(f"id: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in frames)
    return httpx.Response(200, content=body.encode(), headers={"Content-Type": "text/event-stream"})


def log_page(*lines: dict[str, Any]) -> httpx.Response:
    """Kestra's answer to a log search holding ``lines`` (given oldest first; Kestra lists newest first)."""
    return httpx.Response(200, json={"results": list(lines)[::-1], "total": len(lines)})


def make_trigger(**kwargs: Any) -> KestraExecutionTrigger:
    kwargs.setdefault("kestra_conn_id", "kestra_default")
    kwargs.setdefault("execution_id", "ex1")
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("hook_params", {"retry_limit": 0})
    return KestraExecutionTrigger(**kwargs)


async def events_of(trigger: KestraExecutionTrigger) -> list[dict[str, Any]]:
    events = [event.payload async for event in trigger.run()]
    await trigger.cleanup()
    return events


# ----------------------------------------------------------------------------- serialization


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kestra_conn_id": "kestra_default", "execution_id": "ex1"},
        {
            "kestra_conn_id": "other",
            "execution_id": "ex1",
            "success_states": ["SUCCESS", "WARNING"],
            "poll_interval": 2.5,
            "deadline": 1_900_000_000.5,
            "hook_params": {"retry_limit": 2, "request_timeout": 10.0},
            "stream_logs": True,
            "log_level": "DEBUG",
            "log_cursor": {"since": "2026-11-22T10:00:00.123456789Z", "seen": ["ab", "cd"]},
            "cancel_on_kill": True,
        },
        {
            "kestra_conn_id": "kestra_default",
            "namespace": "company.team",
            "flow_id": "hello",
            "labels": {"env": "prod"},
            "started_after": "2026-11-21T00:00:00+00:00",
            "failure_states": ["FAILED"],
        },
    ],
)
def test_serialize_round_trip(kwargs: Any) -> None:
    classpath, serialized = KestraExecutionTrigger(**kwargs).serialize()
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name) is KestraExecutionTrigger
    assert json.loads(json.dumps(serialized)) == serialized  # JSON-safe for the trigger table
    rebuilt = KestraExecutionTrigger(**serialized)
    assert rebuilt.serialize() == (classpath, serialized)
    for key, value in kwargs.items():
        assert serialized[key] == value


def test_serialized_trigger_holds_no_credentials() -> None:
    _, serialized = make_trigger(stream_logs=True, cancel_on_kill=True).serialize()
    assert PASSWORD not in json.dumps(serialized)
    assert "kestra_conn_id" in serialized


def test_trigger_needs_an_execution_or_a_flow() -> None:
    with pytest.raises(ValueError, match="execution_id, or namespace and flow_id"):
        KestraExecutionTrigger(kestra_conn_id="k", namespace="company.team")


# ----------------------------------------------------------------------------- events


async def test_success_yields_exactly_one_event(kestra: respx.MockRouter) -> None:
    route = kestra.get(f"{API}/executions/ex1").mock(
        side_effect=[
            httpx.Response(200, json=execution("RUNNING", execution_id="ex1")),
            httpx.Response(200, json=execution("SUCCESS", execution_id="ex1")),
        ]
    )
    events = await events_of(make_trigger())
    assert events == [
        {
            "status": "success",
            "execution_id": "ex1",
            "state": "SUCCESS",
            "message": "Kestra execution ex1 is SUCCESS",
            "log_cursor": None,
        }
    ]
    assert route.call_count == 2
    assert route.calls[0].request.headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize("state", ["FAILED", "KILLED", "CANCELLED", "WARNING"])
async def test_other_terminal_states_yield_failed(kestra: respx.MockRouter, state: Any) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution(state, execution_id="ex1"))
    )
    [event] = await events_of(make_trigger())
    assert event["status"] == "failed" and event["state"] == state


async def test_warning_is_success_when_listed(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("WARNING", execution_id="ex1"))
    )
    [event] = await events_of(make_trigger(success_states=["SUCCESS", "WARNING"]))
    assert event["status"] == "success"


@pytest.mark.parametrize("state", ["RUNNING", "PAUSED", "SOMETHING_NEW"])
async def test_deadline_in_the_past_yields_timeout_with_the_current_state(
    kestra: respx.MockRouter, state: Any
) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution(state, execution_id="ex1"))
    )
    [event] = await events_of(make_trigger(deadline=time.time() - 1))
    assert event["status"] == "timeout" and event["state"] == state
    assert "still" in event["message"]


async def test_states_outside_the_failure_set_keep_waiting(kestra: respx.MockRouter) -> None:
    route = kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("KILLED", execution_id="ex1"))
    )
    [event] = await events_of(make_trigger(failure_states=["FAILED"], deadline=time.time() + 0.2))
    assert event["status"] == "timeout"
    assert route.call_count >= 2


async def test_kestra_errors_yield_one_error_event_without_secrets(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1").mock(return_value=httpx.Response(401))
    [event] = await events_of(make_trigger())
    assert event["status"] == "error"
    assert event["execution_id"] == "ex1" and event["state"] is None
    assert "401" in event["message"]
    assert PASSWORD not in event["message"]


async def test_unreachable_kestra_is_waited_out_until_the_deadline(kestra: respx.MockRouter) -> None:
    """Case 0: an outage is no reason to stop watching: the trigger keeps trying until its deadline."""
    route = kestra.get(f"{API}/executions/ex1").mock(side_effect=httpx.ConnectError("refused"))
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(side_effect=httpx.ConnectError("refused"))
    [event] = await events_of(make_trigger(deadline=time.time() + 0.5, cancel_on_kill=True))
    assert event["status"] == "timeout"
    assert route.call_count >= 2 and kill.call_count >= 1  # the deadline kill was tried (case 8)


@pytest.mark.parametrize(
    "fault",
    [
        httpx.Response(200, text="<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"}),
        httpx.Response(
            200, text='{"id": "ex1", "state": {"curr', headers={"Content-Type": "application/json"}
        ),
        httpx.Response(502, text="bad gateway"),
    ],
    ids=["html-200", "truncated-json", "502"],
)
async def test_a_fault_in_an_answer_never_ends_the_watch(kestra: respx.MockRouter, fault: Any) -> None:
    """Case 0: an answer that is not Kestra's (a proxy's login page, a cut body) is waited out: the trigger
    goes on and reports the real outcome, it never fires ``error`` (which used to kill the execution)."""
    kestra.get(f"{API}/executions/ex1").mock(
        side_effect=[fault, fault, httpx.Response(200, json=execution("SUCCESS", execution_id="ex1"))]
    )
    [event] = await events_of(make_trigger())
    assert event["status"] == "success"


async def test_a_killed_flag_never_fires_for_a_lasting_error(kestra: respx.MockRouter) -> None:
    """A revoked credential ends the watch with ``error``: the trigger never kills on it."""
    kestra.get(f"{API}/executions/ex1").mock(return_value=httpx.Response(403))
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    [event] = await events_of(make_trigger(cancel_on_kill=True))
    assert event["status"] == "error"
    assert kill.call_count == 0


async def test_the_owner_kills_the_execution_at_its_deadline(kestra: respx.MockRouter) -> None:
    """Case 8: the trigger knows the execution; at the deadline it kills it itself, so a task resumed late
    (or never: Airflow 2.11 cancels it at execution_timeout) cannot leave it running. A sensor's trigger
    (not the owner) never kills."""
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("RUNNING", execution_id="ex1"))
    )
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    [event] = await events_of(make_trigger(deadline=time.time() + 0.2, cancel_on_kill=True))
    assert event["status"] == "timeout" and event["state"] == "RUNNING"
    assert event["message"].endswith("asked Kestra to kill it")
    assert kill.call_count == 1
    [event] = await events_of(make_trigger(deadline=time.time() + 0.2, cancel_on_kill=False))
    assert event["status"] == "timeout" and kill.call_count == 1


async def test_missing_connection_yields_an_error_event(kestra: respx.MockRouter) -> None:
    [event] = await events_of(make_trigger(kestra_conn_id="does_not_exist"))
    assert event["status"] == "error"
    assert "does_not_exist" in event["message"]


async def test_logs_are_relayed_once_and_the_cursor_travels_in_the_event(
    kestra: respx.MockRouter, caplog: pytest.LogCaptureFixture, trigger_log: None
) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        side_effect=[httpx.Response(200, json=execution("RUNNING", execution_id="ex1"))] * 3
        + [httpx.Response(200, json=execution("SUCCESS", execution_id="ex1"))]
    )
    line = {
        "taskId": "extract",
        "level": "WARN",
        "message": "reading rows",
        "timestamp": "2026-11-22T10:00:01.5Z",
        "executionId": "ex1",
    }
    logs = kestra.get(f"{API}/logs/search").mock(return_value=log_page(line))
    with caplog.at_level("INFO"):
        [event] = await events_of(make_trigger(stream_logs=True, log_level="WARN"))
    assert caplog.text.count("[kestra:extract] reading rows") == 1
    assert event["log_cursor"] and event["log_cursor"]["since"]
    assert logs.calls[0].request.url.params["filters[level][EQUALS]"] == "WARN"
    assert logs.calls[0].request.url.params["filters[executionId][EQUALS]"] == "ex1"
    assert logs.call_count >= 2  # relayed while waiting, and once more at the end


async def test_log_cursor_from_the_operator_is_honoured(
    kestra: respx.MockRouter, caplog: pytest.LogCaptureFixture, trigger_log: None
) -> None:
    import asyncio

    running, done = execution("RUNNING", execution_id="ex1"), execution("SUCCESS", execution_id="ex1")
    # Running until a second read starts, so the first (a paced one: the outcome fires without a read)
    # has printed its lines.
    kestra.get(f"{API}/executions/ex1").mock(
        side_effect=lambda request: httpx.Response(200, json=done if search.call_count >= 2 else running)
    )
    line = {
        "taskId": "t",
        "level": "INFO",
        "message": "already shown",
        "timestamp": "2026-11-22T10:00:01Z",
        "executionId": "ex1",
    }
    from support.log_helpers import new_log_entries

    _, cursor = new_log_entries([line], None)
    fresh = {**line, "message": "new line", "timestamp": "2026-11-22T10:00:02Z"}
    search = kestra.get(f"{API}/logs/search").mock(return_value=log_page(line, fresh))
    with caplog.at_level("INFO"):
        await asyncio.wait_for(events_of(make_trigger(stream_logs=True, log_cursor=cursor)), 60)
    assert "already shown" not in caplog.text
    assert "[kestra:t] new line" in caplog.text
    assert search.calls[0].request.url.params["filters[startDate][GREATER_THAN_OR_EQUAL_TO]"] == (
        search_since(cursor["since"])
    )


async def test_a_trigger_stored_by_the_previous_release_runs_and_fires_the_same_event(
    kestra: respx.MockRouter,
) -> None:
    """A task deferred before an upgrade: the triggerer rebuilds the trigger from the kwargs the previous
    release serialized (``failure_states`` None), and the worker gets the five keys it always got."""
    stored_before_upgrade = {
        "kestra_conn_id": "kestra_default",
        "execution_id": "ex1",
        "namespace": None,
        "flow_id": None,
        "labels": {},
        "started_after": None,
        "success_states": ["SUCCESS"],
        "failure_states": None,
        "poll_interval": 0.01,
        "deadline": None,
        "hook_params": {"retry_limit": 0},
        "stream_logs": False,
        "log_level": "INFO",
        "log_cursor": None,
        "cancel_on_kill": True,
    }
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("KILLED", execution_id="ex1"))
    )
    [event] = await events_of(KestraExecutionTrigger(**stored_before_upgrade))
    assert event == {
        "status": "failed",
        "execution_id": "ex1",
        "state": "KILLED",
        "message": "Kestra execution ex1 ended in KILLED",
        "log_cursor": None,
    }
    assert set(event) == KestraTriggerEvent.__required_keys__


# ----------------------------------------------------------------------------- kill and cleanup


class FakeTriggerComms:
    """The triggerer's Task SDK channel, answering ``GetTaskStates`` with one task instance's state."""

    def __init__(self, state: str | None, *, present: bool = True, fail: bool = False) -> None:
        self.state, self.present, self.fail = state, present, fail
        self.asked: list[Any] = []

    async def asend(self, msg: Any) -> Any:
        from types import SimpleNamespace

        self.asked.append(msg)
        if self.fail:
            raise ConnectionError("supervisor gone")
        states = {"run_flow": self.state} if self.present else {}
        return SimpleNamespace(task_states={"manual__1": states})


@pytest.fixture
def ti_state(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``ti_state(trigger, state)``: give the trigger a task instance and the triggerer's channel (AF 3.3)."""
    from types import SimpleNamespace

    from airflow_provider_kestra.version_compat import AIRFLOW_V_3_3_PLUS

    if not AIRFLOW_V_3_3_PLUS:
        pytest.skip("Airflow calls a trigger's on_kill from 3.3 on")
    from airflow.sdk.execution_time import task_runner

    def give(trigger: KestraExecutionTrigger, state: str | None, **options: Any) -> FakeTriggerComms:
        comms = FakeTriggerComms(state, **options)
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
        trigger.task_instance = SimpleNamespace(
            dag_id="etl", run_id="manual__1", task_id="run_flow", map_index=-1
        )
        return comms

    return give


@pytest.mark.parametrize("state", ["failed", "success", "up_for_retry", None])
async def test_on_kill_kills_when_a_person_acted_on_the_task(
    kestra: respx.MockRouter, ti_state: Any, state: str | None
) -> None:
    """Marked failed / success, set up for retry, or cleared (no state): cause 3 of the rule, a kill."""
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=True)
    comms = ti_state(trigger, state)
    await trigger.on_kill()
    await trigger.cleanup()
    assert kill.call_count == 1
    (asked,) = [msg for msg in comms.asked if type(msg).__name__ == "GetTaskStates"]
    assert asked.dag_id == "etl" and asked.task_ids == ["run_flow"] and asked.run_ids == ["manual__1"]


async def test_on_kill_kills_a_task_instance_gone_from_the_run(
    kestra: respx.MockRouter, ti_state: Any
) -> None:
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=True)
    ti_state(trigger, None, present=False)
    await trigger.on_kill()
    assert kill.call_count == 1


@pytest.mark.parametrize(
    ("state", "options"),
    [("deferred", {}), ("scheduled", {}), ("running", {}), (None, {"fail": True})],
    ids=["reassigned", "resumed", "next-try-running", "state-unreadable"],
)
async def test_on_kill_leaves_the_execution_running_when_no_person_acted(
    kestra: respx.MockRouter,
    ti_state: Any,
    caplog: pytest.LogCaptureFixture,
    trigger_log: None,
    state: str | None,
    options: dict[str, Any],
) -> None:
    """Case 1: Airflow 3.3 cancels a trigger taken over from a frozen triggerer with its "user action"
    message and calls on_kill; the task instance is still deferred (the trigger runs elsewhere): no kill.
    The log names the execution and its URL."""
    import logging

    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("RUNNING", execution_id="ex1"))
    )
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=True)
    ti_state(trigger, state, **options)
    with caplog.at_level(logging.INFO):
        await trigger.on_kill()
    await trigger.cleanup()
    assert kill.call_count == 0
    assert "ex1 is left running" in caplog.text
    assert f"{BASE}/ui/main/executions/company.team/hello/ex1" in caplog.text


async def test_on_kill_leaves_a_watched_execution_alone(kestra: respx.MockRouter) -> None:
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=False)
    await trigger.on_kill()
    assert kill.call_count == 0


async def test_on_kill_swallows_kestra_errors(kestra: respx.MockRouter, ti_state: Any) -> None:
    kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(500))
    trigger = make_trigger(cancel_on_kill=True, hook_params={"retry_limit": 0})
    ti_state(trigger, "failed")
    await trigger.on_kill()  # best effort: must not raise
    await trigger.cleanup()


async def test_one_http_client_per_trigger_closed_by_cleanup(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        side_effect=[
            httpx.Response(200, json=execution("RUNNING", execution_id="ex1")),
            httpx.Response(200, json=execution("SUCCESS", execution_id="ex1")),
        ]
    )
    trigger = make_trigger()
    clients = []
    real_get_hook = trigger._get_hook

    def spy() -> Any:
        hook = real_get_hook()
        clients.append(hook)
        return hook

    trigger._get_hook = spy  # type: ignore[method-assign]
    await events_of(trigger)
    assert len({id(h) for h in clients}) == 1
    assert trigger._hook is None


async def test_search_mode_waits_for_the_newest_matching_execution(kestra: respx.MockRouter) -> None:
    search = kestra.get(f"{API}/executions/search").mock(
        side_effect=[
            httpx.Response(200, json={"results": [], "total": 0}),
            httpx.Response(200, json={"results": [execution("RUNNING", execution_id="ex5")], "total": 1}),
        ]
    )
    follow = kestra.get(f"{API}/executions/ex5/follow").mock(
        return_value=sse(("start", {"id": "ex5"}), ("end", execution("SUCCESS", execution_id="ex5")))
    )
    trigger = make_trigger(
        execution_id=None,
        namespace="company.team",
        flow_id="hello",
        labels={"env": "prod"},
        started_after="2026-11-21T00:00:00+00:00",
    )
    [event] = await events_of(trigger)
    assert event["status"] == "success" and event["execution_id"] == "ex5"
    assert search.call_count == 2 and follow.call_count == 1  # found: followed, no longer searched
    params = search.calls[0].request.url.params
    assert params["filters[namespace][EQUALS]"] == "company.team"
    assert params["filters[flowId][EQUALS]"] == "hello"
    assert params["filters[labels][EQUALS][env]"] == "prod"
    assert params["size"] == "1"
    assert any(key.startswith("filters[startDate]") for key in params)


async def test_search_mode_times_out_when_nothing_matches(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/search").mock(return_value=httpx.Response(200, json={"results": []}))
    trigger = make_trigger(execution_id=None, namespace="company.team", flow_id="hello", deadline=time.time())
    [event] = await events_of(trigger)
    assert event == {
        "status": "timeout",
        "execution_id": None,
        "state": None,
        "message": "No matching Kestra execution finished before the deadline",
        "log_cursor": None,
    }


async def test_user_kill_order_cancel_then_on_kill_then_cleanup(
    kestra: respx.MockRouter, ti_state: Any
) -> None:
    """The triggerer cancels run(), then calls on_kill(), then cleanup(): the kill must still get out."""
    import asyncio

    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("RUNNING", execution_id="ex1"))
    )
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=True, poll_interval=0.05)
    ti_state(trigger, "failed")

    async def consume() -> None:
        async for _ in trigger.run():
            pytest.fail("a running execution must not produce an event")

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await trigger.on_kill()
    await trigger.cleanup()
    assert kill.call_count == 1
    assert trigger._hook is None


async def test_a_failing_log_endpoint_does_not_end_the_wait(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("SUCCESS", execution_id="ex1"))
    )
    kestra.get(f"{API}/logs/search").mock(return_value=httpx.Response(500, json={"message": "boom"}))
    [event] = await events_of(make_trigger(stream_logs=True))
    assert event["status"] == "success"


async def test_the_trigger_follows_the_event_stream(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1/follow").mock(
        return_value=sse(
            ("start", {"id": "ex1"}),
            ("progress", execution("RUNNING", execution_id="ex1")),
            ("end", execution("FAILED", execution_id="ex1")),
        )
    )
    poll = kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("RUNNING", execution_id="ex1"))
    )
    [event] = await events_of(make_trigger())
    assert event["status"] == "failed" and event["state"] == "FAILED"
    assert poll.call_count == 0


async def test_a_success_state_that_is_not_terminal_ends_the_stream_wait(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1/follow").mock(
        return_value=sse(("start", {"id": "ex1"}), ("progress", execution("PAUSED", execution_id="ex1")))
    )
    [event] = await events_of(make_trigger(success_states=["PAUSED"]))
    assert event["status"] == "success" and event["state"] == "PAUSED"


async def test_deadline_reached_while_following_yields_one_timeout(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1/follow").mock(
        return_value=sse(("start", {"id": "ex1"}), ("progress", execution("QUEUED", execution_id="ex1")))
    )
    [event] = await events_of(make_trigger(deadline=time.time() - 1))
    assert event["status"] == "timeout" and event["state"] == "QUEUED"
    assert event["message"] == "Kestra execution ex1 was still QUEUED at the deadline"


async def test_lines_of_a_task_that_keeps_logging_arrive_while_it_runs(
    kestra: respx.MockRouter, caplog: pytest.LogCaptureFixture, trigger_log: None
) -> None:
    """The log pacer reads again every poll_interval while the last read showed lines of a task run the
    execution still runs: a long-logging task is tailed live, each line printed once."""
    import asyncio

    running = execution("RUNNING", execution_id="ex1", task_runs=[task_run("t", "tr1", current="RUNNING")])
    done = execution("SUCCESS", execution_id="ex1", task_runs=[task_run("t", "tr1")])
    first = {
        "taskId": "t",
        "taskRunId": "tr1",
        "level": "INFO",
        "message": "one",
        "timestamp": iso(1),
        "executionId": "ex1",
    }
    second = {**first, "message": "two", "timestamp": iso(2)}
    reads: list[int] = []
    ended = asyncio.Event()

    def logs_answer(request: httpx.Request) -> httpx.Response:
        reads.append(1)
        if len(reads) >= 3:
            ended.set()  # the execution ends only at a third read: both lines showed while it ran
        return log_page(*([first] if len(reads) == 1 else [first, second]))

    kestra.get(f"{API}/executions/ex1").mock(
        side_effect=lambda request: httpx.Response(200, json=done if ended.is_set() else running)
    )
    logs = kestra.get(f"{API}/logs/search").mock(side_effect=logs_answer)
    with caplog.at_level("INFO"):
        # Bounded: without reads while the task logs, the execution would never end.
        [event] = await asyncio.wait_for(events_of(make_trigger(stream_logs=True)), 60)
    assert event["status"] == "success" and "logs_complete" not in event
    assert logs.call_count >= 3  # all while running: the trigger makes no final read
    assert caplog.text.count("[kestra:t] one") == 1
    assert caplog.text.count("[kestra:t] two") == 1


async def test_a_silent_execution_gets_no_log_read_between_task_run_changes(
    kestra: respx.MockRouter, caplog: pytest.LogCaptureFixture, trigger_log: None
) -> None:
    """Polls that show the same task runs schedule nothing: one read after the first frame (its task run
    logged nothing new), then none; the outcome fires without a final read (execute_complete makes it)."""
    import asyncio

    running = execution("RUNNING", execution_id="ex1", task_runs=[task_run("t", "tr1", current="RUNNING")])
    done = execution("SUCCESS", execution_id="ex1", task_runs=[task_run("t", "tr1")])
    polls_after_read: list[int] = []

    def execution_answer(request: httpx.Request) -> httpx.Response:
        if logs.call_count:
            polls_after_read.append(1)
        return httpx.Response(200, json=done if len(polls_after_read) > 40 else running)

    kestra.get(f"{API}/executions/ex1").mock(side_effect=execution_answer)
    logs = kestra.get(f"{API}/logs/search").mock(return_value=log_page())
    [event] = await asyncio.wait_for(events_of(make_trigger(stream_logs=True)), 60)
    assert event["status"] == "success" and event["log_cursor"] is not None
    assert logs.call_count == 1  # one after the first frame, 40 polls of silence, no final read


async def test_paced_log_reads_hold_no_task_between_reads_and_stop_at_once() -> None:
    """A scheduled read is a timer, not a sleeping task (thousands of waiting triggers would keep one each
    on the heap); closing cancels the timer, or the read under way, and nothing reads afterwards. (The
    earlier design slept in a task through ``asyncio.wait_for``, which on Python 3.11 swallowed a
    cancellation landing with a wake-up and kept the trigger waiting forever: found by bench 12.5.)"""
    import asyncio

    from airflow_provider_kestra.triggers.kestra import KestraPacedLogReads
    from airflow_provider_kestra.utils.log_pacer import KestraLogPacer, KestraLogReadResult

    started: list[str] = []
    release = asyncio.Event()

    async def read(execution_id: str) -> KestraLogReadResult:
        started.append(execution_id)
        await release.wait()
        return KestraLogReadResult()

    log = logging.getLogger("test")
    frame = execution("RUNNING", execution_id="ex1", task_runs=[task_run("t", "tr1", current="RUNNING")])
    idle = KestraPacedLogReads(KestraLogPacer(30.0, jitter=lambda: 0.0), read, "ex1", log)
    tasks_before = len(asyncio.all_tasks())
    idle.frame(frame)  # a read due in 30 s
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks_before and not started
    await asyncio.wait_for(idle.aclose(), 5)

    busy = KestraPacedLogReads(KestraLogPacer(0.0, jitter=lambda: 0.0), read, "ex2", log)
    busy.frame(frame)  # due now
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["ex2"]
    busy.frame(execution("SUCCESS", execution_id="ex2"))  # a frame while the read runs schedules nothing new
    await asyncio.wait_for(busy.aclose(), 5)  # cancels the read under way
    release.set()
    await asyncio.sleep(0.05)
    assert started == ["ex2"]


async def test_a_log_read_that_raises_is_a_failed_read_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    """Logs never end a wait: a read that raises is warned about and tried again one interval later."""
    import asyncio

    from airflow_provider_kestra.triggers.kestra import KestraPacedLogReads
    from airflow_provider_kestra.utils.log_pacer import KestraLogPacer, KestraLogReadResult

    calls: list[int] = []

    async def read(execution_id: str) -> KestraLogReadResult:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return KestraLogReadResult()

    reads = KestraPacedLogReads(KestraLogPacer(0.01, jitter=lambda: 0.0), read, "ex1", logging.getLogger("t"))
    reads.frame(execution("RUNNING", execution_id="ex1", task_runs=[task_run("t", "tr1", current="RUNNING")]))
    with caplog.at_level("WARNING"):
        for _ in range(100):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.01)
    await reads.aclose()
    assert len(calls) == 2  # the failed read, then one more; the second showed no lines: no third
    assert "Could not read the Kestra log of execution ex1: boom" in caplog.text


async def test_the_outcome_and_the_deadline_fire_at_once_without_a_log_read(
    kestra: respx.MockRouter, trigger_log: None
) -> None:
    """Issue 12: thousands of events ending together must not wait for thousands of final log reads on
    the triggerer's loop; execute_complete reads the rest from the event's cursor on the worker."""
    done = execution("SUCCESS", execution_id="ex1")
    kestra.get(f"{API}/executions/ex1").mock(return_value=httpx.Response(200, json=done))
    running = execution("RUNNING", execution_id="ex5")
    kestra.get(f"{API}/executions/ex5").mock(return_value=httpx.Response(200, json=running))
    logs = kestra.get(f"{API}/logs/search").mock(return_value=log_page())
    [event] = await events_of(make_trigger(stream_logs=True))
    assert event["status"] == "success" and set(event) == KestraTriggerEvent.__required_keys__
    [event] = await events_of(make_trigger(execution_id="ex5", stream_logs=True, deadline=time.time() - 1))
    assert event["status"] == "timeout" and set(event) == KestraTriggerEvent.__required_keys__
    assert logs.call_count == 0


class FakeXComComms(FakeTriggerComms):
    """The triggerer's channel with an XCom table: what one triggerer writes, the next one reads."""

    def __init__(self) -> None:
        super().__init__("deferred")
        self.xcoms: dict[str, Any] = {}

    async def asend(self, msg: Any) -> Any:
        from types import SimpleNamespace

        kind = type(msg).__name__
        if kind == "SetXCom":
            self.xcoms[msg.key] = msg.value
            return None
        if kind == "GetXCom":
            return SimpleNamespace(key=msg.key, value=self.xcoms.get(msg.key))
        return await super().asend(msg)


async def test_log_lines_are_never_printed_twice_after_a_triggerer_restart(
    kestra: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    trigger_log: None,
    ti_state: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Case 18: Airflow rebuilds a trigger from the kwargs stored when the task deferred, so the cursor in
    them is old. The trigger keeps its cursor in an XCom while it relays; the rebuilt trigger (restart,
    fail-over) takes it and prints only the lines not shown yet."""
    from airflow.sdk.execution_time import task_runner

    first_line = {
        "taskId": "t",
        "level": "INFO",
        "message": "before restart",
        "timestamp": "2026-11-22T10:00:01Z",
        "executionId": "ex1",
    }
    later_line = {**first_line, "message": "after restart", "timestamp": "2026-11-22T10:00:09Z"}
    logs = kestra.get(f"{API}/logs/search")
    stored_at_defer = make_trigger(stream_logs=True).serialize()[1]
    comms = FakeXComComms()

    logs.mock(return_value=log_page(first_line))
    first = KestraExecutionTrigger(**stored_at_defer)
    ti_state(first, "deferred")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    with caplog.at_level("INFO"):
        await first._relay_logs("ex1")  # what the triggerer that then stops relayed
    await first.cleanup()
    assert LOG_CURSOR_XCOM_KEY in comms.xcoms

    logs.mock(return_value=log_page(first_line, later_line))
    rebuilt = KestraExecutionTrigger(**json.loads(json.dumps(stored_at_defer)))
    ti_state(rebuilt, "deferred")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    with caplog.at_level("INFO"):
        await rebuilt._relay_logs("ex1")
    await rebuilt.cleanup()
    assert caplog.text.count("[kestra:t] before restart") == 1
    assert caplog.text.count("[kestra:t] after restart") == 1


async def test_the_http_stack_is_preloaded_once_per_process_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Goal 5 of issue 12: what the first request loads is imported off the triggerer's loop, once, and
    triggers that start together wait for that one preload."""
    import asyncio
    import threading

    from airflow_provider_kestra.triggers import kestra as trigger_module

    on_loop_thread: list[bool] = []
    monkeypatch.setattr(trigger_module, "_preloaded", False)
    monkeypatch.setattr(trigger_module, "_preloading", None)
    monkeypatch.setattr(
        trigger_module,
        "preload_http_stack",
        lambda: on_loop_thread.append(threading.current_thread() is threading.main_thread()),
    )
    await asyncio.gather(*(trigger_module.preload_once() for _ in range(5)))
    await trigger_module.preload_once()
    assert on_loop_thread == [False]


def test_the_preload_imports_the_async_hook_and_the_http_stack() -> None:
    import sys

    from airflow_provider_kestra.triggers.kestra import preload_http_stack

    preload_http_stack()
    assert {"airflow_provider_kestra.hooks.kestra_async", "httpx", "httpcore", "h11"} <= set(sys.modules)
