"""Unit tests of KestraExecutionTrigger: serialization round trips and one event per outcome (respx)."""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

import httpx
import pytest
import respx
from support.kestra_payloads import API, CONN_URI_V1, PASSWORD, execution

from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger
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


async def test_unreachable_kestra_yields_an_error_event(kestra: respx.MockRouter) -> None:
    kestra.get(f"{API}/executions/ex1").mock(side_effect=httpx.ConnectError("refused"))
    [event] = await events_of(make_trigger())
    assert event["status"] == "error"


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
    logs = kestra.get(f"{API}/logs/ex1").mock(return_value=httpx.Response(200, json=[line]))
    with caplog.at_level("INFO"):
        [event] = await events_of(make_trigger(stream_logs=True, log_level="WARN"))
    assert caplog.text.count("[kestra:extract] reading rows") == 1
    assert event["log_cursor"] and event["log_cursor"]["since"]
    assert logs.calls[0].request.url.params["minLevel"] == "WARN"
    assert logs.call_count >= 2  # relayed while waiting, and once more at the end


async def test_log_cursor_from_the_operator_is_honoured(
    kestra: respx.MockRouter, caplog: pytest.LogCaptureFixture, trigger_log: None
) -> None:
    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("SUCCESS", execution_id="ex1"))
    )
    line = {"taskId": "t", "level": "INFO", "message": "already shown", "timestamp": "2026-11-22T10:00:01Z"}
    from support.log_helpers import new_log_entries

    _, cursor = new_log_entries([line], None)
    fresh = {**line, "message": "new line", "timestamp": "2026-11-22T10:00:02Z"}
    kestra.get(f"{API}/logs/ex1").mock(return_value=httpx.Response(200, json=[line, fresh]))
    with caplog.at_level("INFO"):
        await events_of(make_trigger(stream_logs=True, log_cursor=cursor))
    assert "already shown" not in caplog.text
    assert "[kestra:t] new line" in caplog.text


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
    assert set(event) == set(KestraTriggerEvent.__annotations__)


# ----------------------------------------------------------------------------- kill and cleanup


async def test_on_kill_kills_the_execution_when_allowed(kestra: respx.MockRouter) -> None:
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=True)
    await trigger.on_kill()
    await trigger.cleanup()
    assert kill.call_count == 1


async def test_on_kill_leaves_a_watched_execution_alone(kestra: respx.MockRouter) -> None:
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=False)
    await trigger.on_kill()
    assert kill.call_count == 0


async def test_on_kill_swallows_kestra_errors(kestra: respx.MockRouter) -> None:
    kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(500))
    trigger = make_trigger(cancel_on_kill=True)
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


async def test_user_kill_order_cancel_then_on_kill_then_cleanup(kestra: respx.MockRouter) -> None:
    """The triggerer cancels run(), then calls on_kill(), then cleanup(): the kill must still get out."""
    import asyncio

    kestra.get(f"{API}/executions/ex1").mock(
        return_value=httpx.Response(200, json=execution("RUNNING", execution_id="ex1"))
    )
    kill = kestra.delete(f"{API}/executions/ex1/kill").mock(return_value=httpx.Response(202))
    trigger = make_trigger(cancel_on_kill=True, poll_interval=0.05)

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
    kestra.get(f"{API}/logs/ex1").mock(return_value=httpx.Response(500, json={"message": "boom"}))
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


async def test_logs_are_relayed_while_following_and_after_the_end(
    kestra: respx.MockRouter, caplog: pytest.LogCaptureFixture, trigger_log: None
) -> None:
    import asyncio

    ended = asyncio.Event()

    async def stream(request: httpx.Request) -> httpx.Response:
        await ended.wait()
        return sse(("start", {"id": "ex1"}), ("end", execution("SUCCESS", execution_id="ex1")))

    kestra.get(f"{API}/executions/ex1/follow").mock(side_effect=stream)
    line = {"taskId": "t", "level": "INFO", "message": "step", "timestamp": "2026-11-22T10:00:01Z"}

    def logs_answer(request: httpx.Request) -> httpx.Response:
        ended.set()  # the execution ends only once the logs were read while waiting
        return httpx.Response(200, json=[line])

    logs = kestra.get(f"{API}/logs/ex1").mock(side_effect=logs_answer)
    with caplog.at_level("INFO"):
        # Bounded: without a relay during the wait the stream would never end.
        [event] = await asyncio.wait_for(events_of(make_trigger(stream_logs=True)), 60)
    assert event["status"] == "success"
    assert logs.call_count >= 2
    assert caplog.text.count("[kestra:t] step") == 1
