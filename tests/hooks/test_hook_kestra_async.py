"""KestraAsyncHook (httpx): connection, retries, follow, wait, logs, kill — with respx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from kestra_hook_payloads import BASE, PASSWORD, execution, log_entry

from airflow_provider_kestra.exceptions import (
    KestraConnectionError,
    KestraNotFoundError,
    KestraServerError,
    KestraStreamError,
    KestraWaitTimeout,
)
from airflow_provider_kestra.hooks.kestra import KestraAsyncHook

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"
API = f"{BASE}/api/v1/main"


def sse(*frames: tuple[str, dict[str, Any]]) -> bytes:
    return "".join(f"id: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in frames).encode()


STUB = {"id": EXEC_ID, "labels": [], "originalId": EXEC_ID, "deleted": False}


@pytest.fixture(params=["1.3.25", "2.0.0-SNAPSHOT"], ids=["kestra1", "kestra2"])
def router(request: pytest.FixtureRequest, kestra_conn: str) -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/api/v1/configs").respond(json={"version": request.param, "edition": "OSS"})
        mock.v2 = request.param.startswith("2")  # type: ignore[attr-defined]
        yield mock


@pytest.fixture
async def ahook(router: Any) -> Any:
    hook = KestraAsyncHook(retry_limit=2, retry_delay=0.5)
    hook.sleeps = []  # type: ignore[attr-defined]

    async def record(seconds: float) -> None:
        hook.sleeps.append(seconds)  # type: ignore[attr-defined]

    hook._asleep = record
    async with hook:
        yield hook


async def test_get_execution_with_retry_and_auth(ahook: KestraAsyncHook, router: Any) -> None:
    route = router.get(f"{API}/executions/{EXEC_ID}").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=execution("RUNNING"))]
    )
    result = await ahook.get_execution(EXEC_ID)
    assert result["state"]["current"] == "RUNNING"
    assert len(ahook.sleeps) == 1  # type: ignore[attr-defined]
    request = route.calls.last.request
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.headers["User-Agent"].startswith("airflow-provider-kestra/")
    assert (await ahook.server_info())["api_version"] == ("2" if router.v2 else "1")


async def test_errors_are_typed_and_redacted(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}").respond(404, json={"message": f"Not Found: {PASSWORD}"})
    with pytest.raises(KestraNotFoundError) as info:
        await ahook.get_execution(EXEC_ID)
    assert PASSWORD not in str(info.value) and "***" in str(info.value)
    assert ahook.sleeps == []  # type: ignore[attr-defined]


async def test_server_errors_give_up_after_retries(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}").respond(502)
    with pytest.raises(KestraServerError):
        await ahook.get_execution(EXEC_ID)
    assert len(ahook.sleeps) == 2  # type: ignore[attr-defined]


async def test_connect_error(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(KestraConnectionError, match=r"could not reach Kestra.*3 attempts"):
        await ahook.get_execution(EXEC_ID)


async def test_kill_v1_and_v2_paths(ahook: KestraAsyncHook, router: Any) -> None:
    path = f"{API}/executions/{EXEC_ID}/actions/kill" if router.v2 else f"{API}/executions/{EXEC_ID}/kill"
    route = router.delete(path).respond(200 if router.v2 else 202)
    await ahook.kill_execution(EXEC_ID)
    assert route.called


async def test_follow_and_wait(ahook: KestraAsyncHook, router: Any) -> None:
    body = sse(("start", STUB), ("progress", execution("RUNNING")), ("end", execution("SUCCESS")))
    router.get(f"{API}/executions/{EXEC_ID}/follow").respond(200, content=body)
    states = [e["state"]["current"] async for e in ahook.follow_execution(EXEC_ID)]
    assert states == ["RUNNING", "SUCCESS"]
    seen: list[str] = []
    final = await ahook.wait_for_execution(EXEC_ID, on_update=lambda e: seen.append(e["state"]["current"]))
    assert final["state"]["current"] == "SUCCESS" and seen == ["RUNNING", "SUCCESS"]


async def test_follow_cut_raises_stream_error(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}/follow").respond(200, content=sse(("start", STUB)))
    with pytest.raises(KestraStreamError):
        [e async for e in ahook.follow_execution(EXEC_ID)]


async def test_wait_falls_back_to_polling(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}/follow").mock(side_effect=httpx.ReadError("reset"))
    router.get(f"{API}/executions/{EXEC_ID}").mock(
        side_effect=[
            httpx.Response(200, json=execution("RUNNING")),
            httpx.Response(200, json=execution("KILLED")),
        ]
    )
    final = await ahook.wait_for_execution(EXEC_ID, poll_interval=3)
    assert final["state"]["current"] == "KILLED"
    assert 3 in ahook.sleeps  # type: ignore[attr-defined]


async def test_wait_deadline_in_the_past(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}/follow").respond(
        200, content=sse(("progress", execution("QUEUED")))
    )
    router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution("QUEUED"))
    with pytest.raises(KestraWaitTimeout) as info:
        await ahook.wait_for_execution(EXEC_ID, deadline=1.0)
    assert info.value.state == "QUEUED"


async def test_get_logs_cursor(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/logs/{EXEC_ID}").mock(
        side_effect=[
            httpx.Response(200, json=[log_entry(1, "a")]),
            httpx.Response(200, json=[log_entry(1, "a"), log_entry(1, "b")]),
        ]
    )
    lines, cursor = await ahook.get_logs(EXEC_ID, min_level="DEBUG")
    assert [e["message"] for e in lines] == ["a"]
    lines, _ = await ahook.get_logs(EXEC_ID, cursor=json.loads(json.dumps(cursor)))
    assert [e["message"] for e in lines] == ["b"]


async def test_aclose_and_reuse(router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution())
    hook = KestraAsyncHook()
    await hook.get_execution(EXEC_ID)
    await hook.aclose()
    await hook.aclose()
    assert (await hook.get_execution(EXEC_ID))["id"] == EXEC_ID
    await hook.aclose()


async def test_search_executions(ahook: KestraAsyncHook, router: Any) -> None:
    route = router.get(f"{API}/executions/search").respond(
        json={"results": [execution("RUNNING")], "total": 1}
    )
    found = await ahook.search_executions(
        namespace="company.team", flow_id="hello", labels={"k": "v"}, size=1
    )
    assert [e["id"] for e in found] == [EXEC_ID]
    params = route.calls.last.request.url.params
    assert params["filters[labels][EQUALS][k]"] == "v" and params["sort"] == "state.startDate:desc"
    assert params["size"] == "1"
    with pytest.raises(ValueError, match="without any filter"):
        await ahook.search_executions()


async def test_wait_until_stops_at_a_non_terminal_state(ahook: KestraAsyncHook, router: Any) -> None:
    body = sse(("start", STUB), ("progress", execution("RUNNING")), ("progress", execution("PAUSED")))
    router.get(f"{API}/executions/{EXEC_ID}/follow").respond(200, content=body)
    poll = router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution("RUNNING"))
    paused = await ahook.wait_for_execution(EXEC_ID, until=lambda e: e["state"]["current"] == "PAUSED")
    assert paused["state"]["current"] == "PAUSED"
    assert poll.call_count == 0


async def test_wait_until_polls_when_the_stream_is_missing(ahook: KestraAsyncHook, router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}/follow").respond(404)
    router.get(f"{API}/executions/{EXEC_ID}").mock(
        side_effect=[httpx.Response(200, json=execution(state)) for state in ("RUNNING", "PAUSED")]
    )
    paused = await ahook.wait_for_execution(EXEC_ID, until=lambda e: e["state"]["current"] == "PAUSED")
    assert paused["state"]["current"] == "PAUSED"


async def test_idle_stream_is_reopened_at_once_not_counted_as_a_failure(
    ahook: KestraAsyncHook, router: Any
) -> None:
    from airflow_provider_kestra.hooks.kestra_base import STREAM_IDLE_SECONDS, KestraWaitTracker

    idle = [httpx.ReadTimeout("idle")] * (KestraWaitTracker.MAX_STREAM_FAILURES + 1)
    follow = router.get(f"{API}/executions/{EXEC_ID}/follow").mock(
        side_effect=[*idle, httpx.Response(200, content=sse(("start", STUB), ("end", execution("SUCCESS"))))]
    )
    poll = router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution("RUNNING"))
    final = await ahook.wait_for_execution(EXEC_ID, poll_interval=5)
    assert final["state"]["current"] == "SUCCESS"
    assert follow.call_count == len(idle) + 1  # still following after more idle timeouts than failures
    assert poll.call_count == len(idle)
    assert ahook.sleeps == []  # type: ignore[attr-defined]
    assert follow.calls[0].request.extensions["timeout"]["read"] == STREAM_IDLE_SECONDS


async def test_stream_read_timeout_is_the_time_left_before_the_deadline(
    ahook: KestraAsyncHook, router: Any
) -> None:
    import time

    follow = router.get(f"{API}/executions/{EXEC_ID}/follow").respond(
        200, content=sse(("start", STUB), ("end", execution("SUCCESS")))
    )
    await ahook.wait_for_execution(EXEC_ID, deadline=time.time() + 60)
    assert 0.5 <= follow.calls[0].request.extensions["timeout"]["read"] <= 60


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_wait_polls_while_the_stream_is_unavailable(
    ahook: KestraAsyncHook, router: Any, status: int
) -> None:
    end = httpx.Response(200, content=sse(("start", STUB), ("end", execution("SUCCESS"))))
    follow = router.get(f"{API}/executions/{EXEC_ID}/follow").mock(side_effect=[httpx.Response(status), end])
    router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution("RUNNING"))
    final = await ahook.wait_for_execution(EXEC_ID)
    assert final["state"]["current"] == "SUCCESS" and follow.call_count == 2
    router.get(f"{API}/executions/{EXEC_ID}/follow").respond(status)
    with pytest.raises(KestraStreamError, match=str(status)):
        [e async for e in ahook.follow_execution(EXEC_ID)]
