"""Kestra 2.x behaviours both hooks share (run through the ``transport`` fixture): the two single-execution
action layouts, and actions whose answer was lost (502/503/504).

Pinned to Kestra's source:

* webserver/src/main/java/io/kestra/webserver/controllers/api/ExecutionController.java (kestra-io/kestra,
  read at 0014f1fd and in the ``kill`` excerpts of later commits): ``kill`` answers an unknown execution
  with a bare ``HttpResponse.notFound()``; restart/resume return null, which Micronaut turns into 404;
* webserver/src/main/java/io/kestra/webserver/errors/ProblemJsonErrorResponseBodyProvider.java (@d5ca20d1)
  and ProblemTypes.java (@14844e4f): such a bare status, like an unmatched route, renders as problem type
  ``not-found`` (405 as ``method-not-allowed``; 504 is ``timeout``, "Operation timed out"). So a 404 body
  cannot tell "no such route" from "no such execution": the hook asks whether the execution exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kestra_hook_transports import Reply
from support.kestra_payloads import execution

from airflow_provider_kestra.exceptions import (
    KestraMethodNotAllowedError,
    KestraNotFoundError,
    KestraServerError,
)

if TYPE_CHECKING:
    from kestra_hook_transports import KestraTransport

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"
GET = f"executions/{EXEC_ID}"
PROBLEMS = "https://kestra.io/docs/api-reference/problems/"


def problem(status: int, slug: str, title: str) -> Reply:
    body = {"type": PROBLEMS + slug, "title": title, "status": status, "detail": title, "instance": "/x"}
    return Reply(status, json=body, headers={"Content-Type": "application/problem+json"})


NOT_FOUND = problem(404, "not-found", "Resource not found")
NOT_ALLOWED = problem(405, "method-not-allowed", "Method not allowed")
TIMEOUT = problem(504, "timeout", "Operation timed out")


@pytest.fixture
def kestra_version() -> str:
    """Every scenario here talks to a 2.0 server (one test overrides it)."""
    return "2.0.0"


# ------------------------------------------------------------------------------------------ the layouts
async def test_a_plain_layout_server_is_found_once_and_remembered(transport: KestraTransport) -> None:
    actions = transport.reply("DELETE", f"{GET}/actions/kill", NOT_FOUND)
    plain = transport.reply("DELETE", f"{GET}/kill", Reply(json=execution("KILLING")))
    exists = transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    await transport.call("kill_execution", EXEC_ID)
    await transport.call("kill_execution", EXEC_ID)
    assert (actions.call_count, exists.call_count, plain.call_count) == (1, 1, 2)


async def test_405_switches_without_asking_whether_the_execution_exists(transport: KestraTransport) -> None:
    transport.reply("POST", f"{GET}/actions/restart", NOT_ALLOWED)
    plain = transport.reply("POST", f"{GET}/restart", Reply(json=execution("RESTARTED")))
    exists = transport.reply("GET", GET, Reply(json=execution("FAILED")))
    restarted = await transport.call("restart_execution", EXEC_ID)
    assert restarted["state"]["current"] == "RESTARTED"
    assert plain.call_count == 1 and exists.call_count == 0


async def test_an_unknown_execution_is_not_found_on_either_layout(transport: KestraTransport) -> None:
    transport.reply("POST", f"{GET}/actions/resume", NOT_FOUND)
    plain = transport.reply("POST", f"{GET}/resume", Reply(204))
    transport.reply("GET", GET, NOT_FOUND)
    with pytest.raises(KestraNotFoundError) as info:
        await transport.call("resume_execution", EXEC_ID)
    assert info.value.problem_type == "not-found" and "/actions/resume" in info.value.path
    assert plain.call_count == 0  # a resume is never sent where it was not meant to go


async def test_when_neither_layout_answers_the_first_error_is_raised(transport: KestraTransport) -> None:
    actions = transport.reply("DELETE", f"{GET}/actions/kill", NOT_FOUND)
    transport.reply("DELETE", f"{GET}/kill", NOT_ALLOWED)
    transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    for _ in range(2):  # nothing was learned: the second kill starts from the published layout again
        with pytest.raises(KestraNotFoundError):
            await transport.call("kill_execution", EXEC_ID)
    assert actions.call_count == 2


async def test_a_layout_that_worked_is_not_switched_by_a_later_404(transport: KestraTransport) -> None:
    actions = transport.reply("DELETE", f"{GET}/actions/kill", Reply(json=execution("KILLING")), NOT_FOUND)
    plain = transport.reply("DELETE", f"{GET}/kill", Reply(202))
    await transport.call("kill_execution", EXEC_ID)
    with pytest.raises(KestraNotFoundError):
        await transport.call("kill_execution", EXEC_ID)
    assert actions.call_count == 2 and plain.call_count == 0


@pytest.mark.parametrize("kestra_version", ["1.3.25"])
async def test_1x_servers_have_one_layout(transport: KestraTransport) -> None:
    transport.reply("DELETE", f"{GET}/kill", NOT_FOUND)
    other = transport.reply("DELETE", f"{GET}/actions/kill", Reply(202))
    with pytest.raises(KestraNotFoundError):
        await transport.call("kill_execution", EXEC_ID)
    assert other.call_count == 0


async def test_405_on_another_call_is_typed(transport: KestraTransport) -> None:
    transport.reply("GET", GET, NOT_ALLOWED)
    with pytest.raises(KestraMethodNotAllowedError):
        await transport.call("get_execution", EXEC_ID)


# ------------------------------------------------------------------------------- lost answers to actions
@pytest.mark.parametrize("state", ["KILLING", "KILLED", "SUCCESS"])
async def test_a_kill_that_timed_out_succeeds_once_the_execution_stops(
    transport: KestraTransport, state: str
) -> None:
    kill = transport.reply("DELETE", f"{GET}/actions/kill", TIMEOUT)
    transport.reply("GET", GET, Reply(json=execution(state)))
    assert await transport.call("kill_execution", EXEC_ID) is None
    assert kill.call_count == 3  # kill is safe to repeat: retried first (retry_limit=2)


async def test_a_kill_that_timed_out_on_a_running_execution_fails_with_the_state(
    transport: KestraTransport,
) -> None:
    transport.reply("DELETE", f"{GET}/actions/kill", TIMEOUT)
    transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    with pytest.raises(KestraServerError, match="still RUNNING"):
        await transport.call("kill_execution", EXEC_ID)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_restart_with_a_lost_answer_is_read_back_never_resent(
    transport: KestraTransport, status: int
) -> None:
    restart = transport.reply("POST", f"{GET}/actions/restart", Reply(status))
    transport.reply("GET", GET, Reply(json=execution("RUNNING")))
    restarted = await transport.call("restart_execution", EXEC_ID)
    assert restarted["state"]["current"] == "RUNNING" and restart.call_count == 1


async def test_a_restart_that_did_not_happen_is_not_sent_again(transport: KestraTransport) -> None:
    restart = transport.reply("POST", f"{GET}/actions/restart", TIMEOUT)
    transport.reply("GET", GET, Reply(json=execution("FAILED")))
    with pytest.raises(KestraServerError, match="still FAILED; the request was not sent again"):
        await transport.call("restart_execution", EXEC_ID)
    assert restart.call_count == 1 and transport.sleeps == []


@pytest.mark.parametrize(("state", "resumed"), [("RUNNING", True), ("SUCCESS", True), ("PAUSED", False)])
async def test_a_resume_with_a_lost_answer_is_decided_by_the_state(
    transport: KestraTransport, state: str, resumed: bool
) -> None:
    resume = transport.reply("POST", f"{GET}/actions/resume", TIMEOUT)
    transport.reply("GET", GET, Reply(json=execution(state)))
    if resumed:
        assert await transport.call("resume_execution", EXEC_ID, {"ok": True}) is None
    else:
        with pytest.raises(KestraServerError, match="still PAUSED"):
            await transport.call("resume_execution", EXEC_ID, {"ok": True})
    assert resume.call_count == 1


async def test_a_lost_answer_that_cannot_be_checked_raises_the_first_error(
    transport: KestraTransport,
) -> None:
    transport.reply("POST", f"{GET}/actions/resume", TIMEOUT)
    transport.reply("GET", GET, Reply(503))
    with pytest.raises(KestraServerError) as info:
        await transport.call("resume_execution", EXEC_ID)
    assert info.value.status == 504 and info.value.problem_type == "timeout"
