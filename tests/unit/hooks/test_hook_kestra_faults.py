"""Issue 10, the rule: a Kestra execution ends for Airflow only when Kestra reports a terminal state, the
task's deadline passes, or a person acts. Malformed stream frames, unreadable answers, outages of any
length, a 404 just after create: keep watching. Every scenario runs through both hooks (``transport``).

Time is the hooks' own clock: the pauses they ask for are recorded, not slept, and move their clock on
(``KestraTransport.clock``), so a three-minute outage takes milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest
from kestra_hook_transports import Reply
from support.kestra_payloads import execution, log_entry, paged
from test_hook_kestra_transports import EXEC_ID, FOLLOW, GET, STUB, sse

from airflow_provider_kestra.exceptions import (
    KestraConflictError,
    KestraConnectionError,
    KestraError,
    KestraNotFoundError,
    KestraWaitTimeout,
)
from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.utils.retry import MAX_BACKOFF_SECONDS, READ_AFTER_WRITE_SECONDS
from airflow_provider_kestra.utils.state import TERMINAL_STATES

if TYPE_CHECKING:
    from collections.abc import Callable

    from kestra_hook_transports import KestraTransport

HTML = Reply(200, content=b"<html><title>Sign in</title></html>", headers={"Content-Type": "text/html"})


def outage(transport: KestraTransport, seconds: float, down: Reply, up: Reply) -> Callable[[], Reply]:
    """Answers ``down`` for ``seconds`` of the hook's clock from now, then ``up``."""
    ends = transport.clock() + seconds
    return lambda: down if transport.clock() < ends else up


# --------------------------------------------------------------------------- 2. malformed stream frames
async def test_frames_that_are_not_json_or_not_executions_are_skipped(transport: KestraTransport) -> None:
    body = (
        b": keep-alive\n\ndata: ping\n\n"
        + sse(("start", STUB))
        + b"data: {}\n\ndata: [1, 2]\n\n: another comment\n"
        + sse(("progress", execution("RUNNING")))
        + b"data: ping\n\n"
        + sse(("end", execution("SUCCESS")))
    )
    transport.reply("GET", FOLLOW, Reply(content=body))
    poll = transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    seen: list[str] = []
    final = await transport.call(
        "wait_for_execution", EXEC_ID, on_update=lambda e: seen.append(e["state"]["current"])
    )
    assert final["state"]["current"] == "SUCCESS" and seen == ["RUNNING", "SUCCESS"]
    assert poll.call_count == 0  # the stream alone told the end
    frames = await transport.collect("follow_execution", EXEC_ID)
    assert [e["state"]["current"] for e in frames] == ["RUNNING", "SUCCESS"]


async def test_an_end_frame_that_is_not_json_makes_the_wait_poll(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(content=sse(("start", STUB)) + b"id: end\ndata: <html>\n\n"))
    transport.reply("GET", GET, Reply(json=execution("SUCCESS")))
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=1)
    assert final["state"]["current"] == "SUCCESS"


# ------------------------------------------------------------------- 3. unreadable 200 on a safe read
@pytest.mark.parametrize(
    "bad",
    [
        HTML,
        Reply(200, content=b""),
        Reply(200, content=b'{"id": "', headers={"Content-Type": "application/json"}),
    ],
    ids=["html", "empty", "cut"],
)
async def test_an_unreadable_200_on_a_read_is_retried_like_a_5xx(
    transport: KestraTransport, bad: Reply
) -> None:
    route = transport.reply("GET", GET, bad, Reply(json=execution("RUNNING")))
    assert (await transport.call("get_execution", EXEC_ID))["state"]["current"] == "RUNNING"
    assert route.call_count == 2 and len(transport.sleeps) == 1
    search = transport.reply("GET", "executions/search", bad, Reply(json=paged([execution("RUNNING")])))
    assert len(await transport.call("search_executions", namespace="company.team", size=1)) == 1
    assert search.call_count == 2


async def test_an_unreadable_log_answer_is_read_again(transport: KestraTransport) -> None:
    route = transport.reply("GET", "logs/search", HTML, Reply(json=paged([log_entry(1, "a")])))
    lines, _ = await transport.call("get_logs", EXEC_ID)
    assert [line["message"] for line in lines] == ["a"] and route.call_count == 2


async def test_an_unreadable_whole_log_answer_is_read_again(transport: KestraTransport) -> None:
    """The same on the whole-log read of a server without a usable log search (404 on it)."""
    transport.reply("GET", "logs/search", Reply(404))
    route = transport.reply("GET", f"logs/{EXEC_ID}", HTML, Reply(json=[log_entry(1, "a")]))
    lines, _ = await transport.call("get_logs", EXEC_ID)
    assert [line["message"] for line in lines] == ["a"] and route.call_count == 2


async def test_an_unreadable_answer_keeps_the_retry_limit_outside_a_wait(transport: KestraTransport) -> None:
    route = transport.reply("GET", GET, HTML)
    with pytest.raises(KestraError, match="not JSON"):
        await transport.call("get_execution", EXEC_ID)
    assert route.call_count == 3  # retry_limit=2


async def test_the_server_version_page_unreadable_is_retried(transport: KestraTransport) -> None:
    transport.hook._api_version = None
    configs = transport.reply_with(
        "GET", "/api/v1/configs", outage(transport, 100, HTML, Reply(json={"version": "1.3.25"}))
    )
    transport.reply("GET", GET, Reply(json=execution("SUCCESS")))
    transport.reply("GET", FOLLOW, Reply(503))
    final = await transport.call("wait_for_execution", EXEC_ID, deadline=transport.clock() + 600)
    assert final["state"]["current"] == "SUCCESS" and configs.call_count > 3


# --------------------------------------------------------------------------------------- 4. outages
@pytest.mark.parametrize("seconds", [45, 180])
@pytest.mark.parametrize(
    "down", [Reply(503), Reply(429), Reply(500), Reply(fault="refused"), Reply(fault="reset")]
)
async def test_an_outage_while_waiting_never_ends_the_wait(
    transport: KestraTransport, seconds: float, down: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    transport.reply_with("GET", FOLLOW, outage(transport, seconds, down, Reply(503)))
    transport.reply_with("GET", GET, outage(transport, seconds, down, Reply(json=execution("SUCCESS"))))
    caplog.set_level(logging.INFO, logger="airflow_provider_kestra")
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=5)
    assert final["state"]["current"] == "SUCCESS"
    assert sum(transport.sleeps) >= seconds
    assert max(transport.sleeps) <= MAX_BACKOFF_SECONDS
    warnings = [r.getMessage() for r in caplog.records if "Kestra unreachable for" in r.getMessage()]
    if seconds > 150:
        assert warnings and f"waiting for execution {EXEC_ID}" in warnings[0]
        assert "still waiting until no deadline" in warnings[0]


async def test_an_outage_longer_than_the_deadline_times_out_at_the_deadline(
    transport: KestraTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.reply("GET", FOLLOW, Reply(fault="refused"))
    route = transport.reply("GET", GET, Reply(fault="refused"))
    start = transport.clock()
    caplog.set_level(logging.WARNING, logger="airflow_provider_kestra")
    with pytest.raises(KestraWaitTimeout):
        await transport.call("wait_for_execution", EXEC_ID, deadline=start + 300)
    assert 300 <= transport.clock() - start < 300 + 5
    assert route.call_count > 10
    assert any("still waiting until 20" in r.getMessage() for r in caplog.records)


async def test_an_outage_shorter_than_the_deadline_is_survived(transport: KestraTransport) -> None:
    transport.reply_with("GET", FOLLOW, outage(transport, 180, Reply(502), Reply(503)))
    transport.reply_with("GET", GET, outage(transport, 180, Reply(502), Reply(json=execution("FAILED"))))
    final = await transport.call("wait_for_execution", EXEC_ID, deadline=transport.clock() + 600)
    assert final["state"]["current"] == "FAILED"


async def test_wait_for_match_survives_an_outage(transport: KestraTransport) -> None:
    found = Reply(json=paged([execution("RUNNING")]))
    transport.reply_with("GET", "executions/search", outage(transport, 180, Reply(fault="refused"), found))
    query = KestraExecutionQuery(namespace="company.team", flow_id="hello")
    match = await transport.call("wait_for_match", query, deadline=transport.clock() + 600, poll_interval=5)
    assert match["id"] == EXEC_ID
    transport.reply("GET", "executions/search", Reply(503))
    assert await transport.call("wait_for_match", query, deadline=transport.clock() + 60) is None


async def test_a_one_shot_read_keeps_its_retry_limit(transport: KestraTransport) -> None:
    route = transport.reply("GET", GET, Reply(fault="refused"))
    with pytest.raises(KestraConnectionError, match="connection refused"):
        await transport.call("get_execution", EXEC_ID)
    assert route.call_count == 3


async def test_an_unknown_server_version_is_detected_during_the_wait_not_fatal(
    transport: KestraTransport,
) -> None:
    transport.hook._api_version = None
    transport.reply_with(
        "GET", "/api/v1/configs", outage(transport, 180, Reply(503), Reply(json={"version": "1.3.25"}))
    )
    transport.reply("GET", FOLLOW, Reply(content=sse(("start", STUB), ("end", execution("SUCCESS")))))
    final = await transport.call("wait_for_execution", EXEC_ID, deadline=transport.clock() + 600)
    assert final["state"]["current"] == "SUCCESS"


async def test_a_known_server_version_is_never_read_again(transport: KestraTransport) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    assert transport.hook.known_api_version is None
    configs = transport.reply_with("GET", "/api/v1/configs", lambda: Reply(503))
    cls = KestraHook if transport.name == "sync" else KestraAsyncHook
    pinned = cls(api_version="1")
    assert pinned.known_api_version == "1"
    transport.hook = pinned
    transport.__init__(transport.name, pinned, transport.mock)  # type: ignore[misc]
    transport.reply("GET", GET, Reply(json=execution("SUCCESS")))
    assert (await transport.call("get_execution", EXEC_ID))["state"]["current"] == "SUCCESS"
    assert configs.call_count == 0


# ---------------------------------------------------------- 5. read-after-write lag (404 after create)
async def test_a_404_at_the_start_of_a_wait_is_read_after_write_lag(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(404))
    gone = Reply(404, json={"message": "Not Found"})
    transport.reply_with("GET", GET, outage(transport, 10, gone, Reply(json=execution("SUCCESS"))))
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=1)
    assert final["state"]["current"] == "SUCCESS"


async def test_a_404_for_longer_than_the_lag_window_is_not_found(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(404))
    transport.reply("GET", GET, Reply(404, json={"message": "Not Found"}))
    start = transport.clock()
    with pytest.raises(KestraNotFoundError):
        await transport.call("wait_for_execution", EXEC_ID)
    assert READ_AFTER_WRITE_SECONDS <= transport.clock() - start < READ_AFTER_WRITE_SECONDS + 10


async def test_a_404_after_the_execution_was_read_is_not_retried(transport: KestraTransport) -> None:
    route = transport.reply(
        "GET", GET, Reply(json=execution("RUNNING")), Reply(404, json={"message": "gone"})
    )
    transport.hook._expect(EXEC_ID)
    await transport.call("get_execution", EXEC_ID)
    with pytest.raises(KestraNotFoundError):
        await transport.call("get_execution", EXEC_ID)
    assert route.call_count == 2


# -------------------------------------------------------------------------- 6. trickling event streams
async def test_the_deadline_fires_on_a_stream_of_comments(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(content=b": keep-alive\n\n" * 20))
    transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    with pytest.raises(KestraWaitTimeout):
        await transport.call("wait_for_execution", EXEC_ID, deadline=transport.clock() - 1)


# ------------------------------------------------------------------------ 13. never sleep past the deadline
async def test_retry_after_never_pushes_a_wait_past_its_deadline(transport: KestraTransport) -> None:
    transport.reply("GET", FOLLOW, Reply(429, headers={"Retry-After": "120"}))
    transport.reply("GET", GET, Reply(503, headers={"Retry-After": "120"}))
    start = transport.clock()
    with pytest.raises(KestraWaitTimeout):
        await transport.call("wait_for_execution", EXEC_ID, deadline=start + 3)
    assert transport.clock() - start < 3 + 1
    assert all(pause <= 3 for pause in transport.sleeps)


# ---------------------------------------------------------------------- 14. lost answers to kill, resume
@pytest.mark.parametrize("state", ["KILLING", "KILLED", "SUCCESS"])
async def test_kill_refused_with_409_for_an_ended_execution_is_done(
    transport: KestraTransport, state: str
) -> None:
    kill = transport.reply("DELETE", f"{GET}/kill", Reply(409, json={"message": "already finished"}))
    transport.reply("GET", GET, Reply(json=execution(state)))
    await transport.call("kill_execution", EXEC_ID)
    assert kill.call_count == 1


async def test_kill_refused_with_409_for_a_running_execution_stays_a_conflict(
    transport: KestraTransport,
) -> None:
    transport.reply("DELETE", f"{GET}/kill", Reply(409, json={"message": "nope"}))
    transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    with pytest.raises(KestraConflictError):
        await transport.call("kill_execution", EXEC_ID)


def resumed(current: str) -> dict[str, Any]:
    body = execution(current)
    body["state"]["histories"].insert(2, {"state": "PAUSED", "date": body["state"]["histories"][1]["date"]})
    return body


@pytest.mark.parametrize("current", ["RUNNING", "SUCCESS"])
async def test_resume_refused_with_409_after_a_resume_is_done(
    transport: KestraTransport, current: str
) -> None:
    body = {"message": f"Illegal state: Execution '{EXEC_ID}' is not paused, can't resume it"}
    resume = transport.reply("POST", f"{GET}/resume", Reply(409, json=body))
    transport.reply("GET", GET, Reply(json=resumed(current)))
    await transport.call("resume_execution", EXEC_ID)
    assert resume.call_count == 1


async def test_resume_whose_answer_was_lost_is_decided_by_the_state(transport: KestraTransport) -> None:
    resume = transport.reply("POST", f"{GET}/resume", Reply(fault="reset"))
    read = transport.reply("GET", GET, Reply(json=resumed("RUNNING")))
    await transport.call("resume_execution", EXEC_ID)
    assert resume.call_count == 1 and read.call_count == 1  # never sent twice


# ----------------------------------------------------------------------- 19. restarted by someone else
def test_restarted_is_not_an_end() -> None:
    assert "RESTARTED" not in TERMINAL_STATES


async def test_an_execution_restarted_while_waiting_is_followed_to_its_new_end(
    transport: KestraTransport,
) -> None:
    body = sse(
        ("start", STUB),
        ("progress", execution("RUNNING")),
        ("progress", execution("RESTARTED")),
        ("progress", execution("RUNNING")),
        ("end", execution("SUCCESS")),
    )
    transport.reply("GET", FOLLOW, Reply(content=body))
    seen: list[str] = []
    final = await transport.call(
        "wait_for_execution", EXEC_ID, on_update=lambda e: seen.append(e["state"]["current"])
    )
    assert final["state"]["current"] == "SUCCESS" and seen == ["RUNNING", "RESTARTED", "RUNNING", "SUCCESS"]
    transport.reply("GET", FOLLOW, Reply(503))
    transport.reply(
        "GET",
        GET,
        Reply(json=execution("RESTARTED")),
        Reply(json=execution("RUNNING")),
        Reply(json=execution("WARNING")),
    )
    final = await transport.call("wait_for_execution", EXEC_ID, poll_interval=1)
    assert final["state"]["current"] == "WARNING"


# -------------------------------------------------------------------------- 23. one connection lookup
async def test_concurrent_first_calls_read_the_connection_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
    from airflow_provider_kestra.utils.connection import KestraConnectionSettings

    lookups: list[str] = []
    active = {"now": 0, "max": 0}

    class Conn:
        host, schema, port, login, password = "http://kestra.test:8080", None, None, None, None
        extra_dejson = {"api_version": "1"}

    async def aget_connection(cls: Any, conn_id: str) -> Any:
        lookups.append(conn_id)
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.05)
        active["now"] -= 1
        return Conn()

    monkeypatch.setattr(KestraAsyncHook, "aget_connection", classmethod(aget_connection), raising=False)
    hook = KestraAsyncHook()
    settings = await asyncio.gather(*(hook.settings() for _ in range(5)), hook.client(), hook.api_version())
    assert lookups == ["kestra_default"] and active["max"] == 1
    assert all(isinstance(s, KestraConnectionSettings) for s in settings[:5])
    await hook.aclose()


def test_the_sync_hook_reads_its_connection_once(kestra_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    hook = KestraHook()
    calls: list[str] = []
    real = hook.get_connection
    monkeypatch.setattr(hook, "get_connection", lambda conn_id: calls.append(conn_id) or real(conn_id))
    assert hook.settings is hook.settings and hook._timeout and calls == ["kestra_default"]
