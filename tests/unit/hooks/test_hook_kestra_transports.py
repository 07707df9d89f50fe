"""The scenarios both hooks must share, run through ``KestraHook`` (requests) and ``KestraAsyncHook`` (httpx)
by the ``transport`` fixture: get, search, follow, wait, refused and cut streams, logs, errors, actions.

The code review of 2026-11-30 (§4) found the two hooks' ``follow_execution`` drifting apart: the sync one
retried a refused stream and failed the wait, so the operator killed a healthy execution. Every test here
runs on both, so such a drift fails a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import TYPE_CHECKING, Any

import pytest
from kestra_hook_transports import Reply
from support.kestra_payloads import PASSWORD, execution, log_entry, paged

from airflow_provider_kestra.exceptions import (
    KestraAuthenticationError,
    KestraConfigError,
    KestraConflictError,
    KestraConnectionError,
    KestraNotFoundError,
    KestraPermissionError,
    KestraServerError,
    KestraStreamError,
    KestraValidationError,
    KestraWaitTimeout,
)
from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.utils.wait import STREAM_IDLE_SECONDS, KestraWaitTracker

if TYPE_CHECKING:
    from kestra_hook_transports import KestraTransport

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"
STUB = {"id": EXEC_ID, "labels": [], "originalId": EXEC_ID, "deleted": False}
FOLLOW = f"executions/{EXEC_ID}/follow"
GET = f"executions/{EXEC_ID}"


def sse(*frames: tuple[str, dict[str, Any]]) -> bytes:
    return "".join(f"id: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in frames).encode()


def states(executions: list[Any]) -> list[str]:
    return [e["state"]["current"] for e in executions]


# ----------------------------------------------------------------------------------------------- reads
async def test_get_execution_retries_a_busy_server_and_sends_credentials(transport: KestraTransport) -> None:
    route = transport.reply("GET", GET, Reply(503), Reply(json=execution("RUNNING")))
    assert (await transport.call("get_execution", EXEC_ID))["state"]["current"] == "RUNNING"
    assert route.call_count == 2 and len(transport.sleeps) == 1
    assert route.header("Authorization").startswith("Basic ")
    assert route.header("User-Agent").startswith("airflow-provider-kestra/")


async def test_search_sends_filters_newest_first(transport: KestraTransport) -> None:
    route = transport.reply("GET", "executions/search", Reply(json=paged([execution("RUNNING")])))
    query = KestraExecutionQuery(namespace="company.team", flow_id="hello", labels={"k": "v"})
    found = await transport.call("search_executions", query, size=1)
    assert [e["id"] for e in found] == [EXEC_ID]
    assert route.params() == {
        "filters[namespace][EQUALS]": "company.team",
        "filters[flowId][EQUALS]": "hello",
        "filters[labels][EQUALS][k]": "v",
        "sort": "state.startDate:desc",
        "page": "1",
        "size": "1",
    }
    # The keywords of earlier releases build the same query.
    await transport.call(
        "search_executions", namespace="company.team", flow_id="hello", labels={"k": "v"}, size=1
    )
    assert route.params()["filters[labels][EQUALS][k]"] == "v"
    with pytest.raises(KestraConfigError, match="without any filter"):
        await transport.call("search_executions")


async def test_wait_for_match_searches_until_found_then_stops_at_the_deadline(
    transport: KestraTransport,
) -> None:
    query = KestraExecutionQuery(namespace="company.team", flow_id="hello")
    route = transport.reply(
        "GET", "executions/search", Reply(json=paged([])), Reply(json=paged([execution("RUNNING")]))
    )
    found = await transport.call("wait_for_match", query, deadline=time.time() + 60, poll_interval=3)
    assert found["id"] == EXEC_ID and route.call_count == 2 and transport.sleeps == [3]
    transport.reply("GET", "executions/search", Reply(json=paged([])))
    assert await transport.call("wait_for_match", query, deadline=time.time() - 1) is None


# ---------------------------------------------------------------------------------------------- follow
async def test_follow_skips_start_and_stops_at_end(transport: KestraTransport) -> None:
    body = sse(("start", STUB), ("progress", execution("RUNNING")), ("end", execution("SUCCESS")))
    route = transport.reply("GET", FOLLOW, Reply(content=body + sse(("progress", execution("FAILED")))))
    assert states(await transport.collect("follow_execution", EXEC_ID)) == ["RUNNING", "SUCCESS"]
    assert route.header("Accept") == "text/event-stream"


async def test_follow_cut_before_end_is_a_stream_error(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(content=sse(("start", STUB), ("progress", execution("RUNNING")))))
    with pytest.raises(KestraStreamError, match="ended before its end event"):
        await transport.collect("follow_execution", EXEC_ID)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_a_refused_stream_is_opened_once_and_the_wait_polls(
    transport: KestraTransport, status: int
) -> None:
    follow = transport.reply("GET", FOLLOW, Reply(status))
    poll = transport.reply("GET", GET, Reply(json=execution("RUNNING")), Reply(json=execution("SUCCESS")))
    with pytest.raises(KestraStreamError, match=str(status)):
        await transport.collect("follow_execution", EXEC_ID)
    assert follow.call_count == 1 and transport.sleeps == []  # never retried
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=2)
    assert final["state"]["current"] == "SUCCESS" and poll.call_count == 2
    assert transport.sleeps == [2]  # a poll interval, no retry backoff


@pytest.mark.parametrize(
    ("status", "error"), [(401, KestraAuthenticationError), (403, KestraPermissionError)]
)
async def test_a_stream_refused_for_credentials_fails_as_a_poll_would(
    transport: KestraTransport, status: int, error: type[Exception]
) -> None:
    transport.reply("GET", FOLLOW, Reply(status))
    with pytest.raises(error):
        await transport.collect("follow_execution", EXEC_ID)


# ------------------------------------------------------------------------------------------------ wait
async def test_wait_reports_each_new_state_once(transport: KestraTransport) -> None:
    body = sse(("start", STUB), *[("progress", execution("RUNNING"))] * 2, ("end", execution("FAILED")))
    transport.reply("GET", FOLLOW, Reply(content=body))
    seen: list[str] = []
    final = await transport.call(
        "wait_for_execution", EXEC_ID, on_update=lambda e: seen.append(e["state"]["current"])
    )
    assert final["state"]["current"] == "FAILED" and seen == ["RUNNING", "FAILED"]


@pytest.mark.parametrize("fault", [Reply(fault="reset"), Reply(content=sse(("start", STUB))), Reply(404)])
async def test_wait_falls_back_to_polling(transport: KestraTransport, fault: Reply) -> None:
    transport.reply("GET", FOLLOW, fault)
    poll = transport.reply("GET", GET, Reply(json=execution("RUNNING")), Reply(json=execution("KILLED")))
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=3)
    assert final["state"]["current"] == "KILLED" and poll.call_count == 2 and 3 in transport.sleeps


async def test_wait_stops_at_until_without_polling(transport: KestraTransport) -> None:
    body = sse(("start", STUB), ("progress", execution("RUNNING")), ("progress", execution("PAUSED")))
    transport.reply("GET", FOLLOW, Reply(content=body))
    poll = transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    paused = await transport.call(
        "wait_for_execution", EXEC_ID, until=lambda e: e["state"]["current"] == "PAUSED"
    )
    assert paused["state"]["current"] == "PAUSED" and poll.call_count == 0


async def test_wait_unknown_execution_raises_not_found(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(content=sse(("start", STUB))))
    transport.reply("GET", GET, Reply(404, json={"message": "Not Found"}))
    with pytest.raises(KestraNotFoundError):
        await transport.call("wait_for_execution", EXEC_ID)


async def test_wait_deadline_in_the_past_times_out_with_the_last_state(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(content=sse(("progress", execution("QUEUED")))))
    transport.reply("GET", GET, Reply(json=execution("QUEUED")))
    with pytest.raises(KestraWaitTimeout) as info:
        await transport.call("wait_for_execution", EXEC_ID, deadline=time.time() - 1)
    assert info.value.state == "QUEUED" and info.value.execution_id == EXEC_ID
    assert isinstance(info.value, TimeoutError)


async def test_an_idle_stream_is_reopened_at_once_not_counted_as_a_failure(
    transport: KestraTransport,
) -> None:
    idle = [Reply(fault="idle")] * (KestraWaitTracker.MAX_STREAM_FAILURES + 1)
    end = Reply(content=sse(("start", STUB), ("end", execution("SUCCESS"))))
    follow = transport.reply("GET", FOLLOW, *idle, end)
    poll = transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=5)
    assert final["state"]["current"] == "SUCCESS"
    assert follow.call_count == len(idle) + 1 and poll.call_count == len(idle)
    assert transport.sleeps == []
    assert follow.read_timeout(0) == STREAM_IDLE_SECONDS


async def test_the_stream_read_timeout_is_the_time_left(transport: KestraTransport) -> None:
    follow = transport.reply(
        "GET", FOLLOW, Reply(content=sse(("start", STUB), ("end", execution("SUCCESS"))))
    )
    await transport.call("wait_for_execution", EXEC_ID, deadline=time.time() + 60)
    assert 0.5 <= follow.read_timeout(0) <= 60


# ------------------------------------------------------------------------------------------------ logs
async def test_logs_iterate_and_the_cursor_prints_each_line_once(transport: KestraTransport) -> None:
    """Each read searches the execution's lines (newest first) from the cursor on, and hands over only
    the lines not shown before, oldest first; the level is filtered by Kestra and again here."""
    route = transport.reply(
        "GET",
        "logs/search",
        Reply(json=paged([log_entry(2, "debug", level="DEBUG"), log_entry(1, "a")])),
        Reply(json=paged([log_entry(3, "b"), log_entry(1, "a")])),
    )
    lines, cursor = await transport.call("get_logs", EXEC_ID, min_level="INFO")
    assert [e["message"] for e in lines] == ["a"]
    assert route.params() == {
        "filters[executionId][EQUALS]": EXEC_ID,
        "filters[level][EQUALS]": "INFO",
        "page": "1",
        "size": "100",
    }
    lines, _ = await transport.call("get_logs", EXEC_ID, cursor=json.loads(json.dumps(cursor)))
    assert [e["message"] for e in lines] == ["b"]
    assert route.params()["filters[startDate][GREATER_THAN_OR_EQUAL_TO]"] == cursor["since"][:23] + "Z"


async def test_logs_of_a_server_without_log_search_are_read_whole(transport: KestraTransport) -> None:
    transport.reply("GET", "logs/search", Reply(404))
    route = transport.reply(
        "GET",
        f"logs/{EXEC_ID}",
        Reply(json=[log_entry(1, "a"), log_entry(2, "debug", level="DEBUG")]),
        Reply(json=[log_entry(1, "a"), log_entry(3, "b")]),
    )
    lines, cursor = await transport.call("get_logs", EXEC_ID, min_level="INFO")
    assert [e["message"] for e in lines] == ["a"]
    assert route.params()["minLevel"] == "INFO"
    lines, _ = await transport.call("get_logs", EXEC_ID, cursor=json.loads(json.dumps(cursor)))
    assert [e["message"] for e in lines] == ["b"]


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, KestraAuthenticationError),
        (403, KestraPermissionError),
        (404, KestraNotFoundError),
        (409, KestraConflictError),
        (422, KestraValidationError),
    ],
)
async def test_client_errors_are_typed_redacted_and_never_retried(
    transport: KestraTransport, status: int, error: type[Exception]
) -> None:
    route = transport.reply("GET", GET, Reply(status, json={"message": f"Nope: {PASSWORD}"}))
    with pytest.raises(error) as info:
        await transport.call("get_execution", EXEC_ID)
    assert PASSWORD not in str(info.value) and route.call_count == 1 and transport.sleeps == []


async def test_server_errors_give_up_after_the_retries(transport: KestraTransport) -> None:
    route = transport.reply("GET", GET, Reply(502))
    with pytest.raises(KestraServerError):
        await transport.call("get_execution", EXEC_ID)
    assert route.call_count == 3 and len(transport.sleeps) == 2


async def test_unreachable_kestra_is_named_after_the_retries(transport: KestraTransport) -> None:
    transport.reply("GET", GET, Reply(fault="refused"))
    with pytest.raises(KestraConnectionError, match=r"could not reach Kestra.*3 attempts"):
        await transport.call("get_execution", EXEC_ID)


# --------------------------------------------------------------------------------------------- actions
@pytest.mark.parametrize("kestra_version", ["1.3.25", "2.0.0"])
async def test_kill_restart_resume_delete_paths(transport: KestraTransport, kestra_version: str) -> None:
    actions = "actions/" if kestra_version.startswith("2") else ""
    kill = transport.reply("DELETE", f"{GET}/{actions}kill", Reply(202))
    restart = transport.reply("POST", f"{GET}/{actions}restart", Reply(json=execution("RESTARTED")))
    resume = transport.reply("POST", f"{GET}/{actions}resume", Reply(204))
    delete = transport.reply("DELETE", GET, Reply(204))
    await transport.call("kill_execution", EXEC_ID)
    assert (await transport.call("restart_execution", EXEC_ID, revision=3))["state"]["current"] == "RESTARTED"
    await transport.call("resume_execution", EXEC_ID, {"approved": True})
    await transport.call("delete_execution", EXEC_ID)
    assert (kill.call_count, restart.call_count, resume.call_count, delete.call_count) == (1, 1, 1, 1)
    assert restart.params() == {"revision": "3"}
    assert resume.header("Content-Type").startswith("multipart/form-data")


async def test_resume_of_an_execution_not_paused_is_a_conflict_not_retried(
    transport: KestraTransport,
) -> None:
    body = {"message": f"Illegal state: Execution '{EXEC_ID}' is not paused, can't resume it"}
    route = transport.reply("POST", f"{GET}/resume", Reply(409, json=body))
    read = transport.reply("GET", GET, Reply(json=execution("RUNNING")))  # never paused
    with pytest.raises(KestraConflictError, match="not paused"):
        await transport.call("resume_execution", EXEC_ID)
    assert route.call_count == 1 and read.call_count == 1


# ------------------------------------------------------------------------ the review's probe, for real
FLOW = """id: nap
namespace: probe
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
"""


def test_both_hooks_poll_through_a_proxy_that_refuses_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review §4: ``/follow`` answers 503 forever; both hooks must still see the execution succeed."""
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as sim:
        monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
        with KestraHook(retry_limit=5, retry_delay=0.2) as hook:
            hook.deploy_flows(FLOW)
            sim.faults.fail(503, path=r"/follow$", count=1000)
            first = hook.create_execution("probe", "nap")
            final = hook.wait_for_execution(first["id"], poll_interval=0.2, timeout=30)
            assert final["state"]["current"] == "SUCCESS"
            second = hook.create_execution("probe", "nap")

        async def wait_async() -> Any:
            async with KestraAsyncHook(retry_limit=5, retry_delay=0.2) as ahook:
                return await ahook.wait_for_execution(
                    second["id"], poll_interval=0.2, deadline=time.time() + 30
                )

        assert asyncio.run(wait_async())["state"]["current"] == "SUCCESS"
    assert os.environ["AIRFLOW_CONN_KESTRA_DEFAULT"]
