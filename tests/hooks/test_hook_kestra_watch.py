"""KestraHook: follow (SSE), wait, outputs, output files and logs, on 1.x and 2.x shapes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests
from kestra_hook_payloads import execution, log_entry, task_run

from airflow_provider_kestra.exceptions import KestraNotFoundError, KestraStreamError, KestraWaitTimeout

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_kestra.hooks.kestra import KestraHook

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"
FILE_URI = f"kestra:///company/team/hello/executions/{EXEC_ID}/tasks/extract/5h8DJKAq2vC4jBcd2U6T3X/data.csv"


def sse(*frames: tuple[str, dict[str, Any]], complete: bool = True) -> bytes:
    text = "".join(f"id: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in frames)
    return text.encode()


def stub() -> dict[str, Any]:
    return {"id": EXEC_ID, "labels": [], "originalId": EXEC_ID, "deleted": False}


def follow_url(api: str) -> str:
    return f"{api}/executions/{EXEC_ID}/follow"


# ----------------------------------------------------------------------------------------------- follow
def test_follow_skips_start_and_ends_after_end(hook: KestraHook, http: Any, api: str) -> None:
    body = sse(("start", stub()), ("progress", execution("RUNNING")), ("end", execution("SUCCESS")))
    http.get(follow_url(api), content=body, headers={"Content-Type": "text/event-stream"})
    states = [e["state"]["current"] for e in hook.follow_execution(EXEC_ID)]
    assert states == ["RUNNING", "SUCCESS"]
    assert http.last_request.headers["Accept"] == "text/event-stream"


def test_follow_handles_crlf_and_multiline_data(hook: KestraHook, http: Any, api: str) -> None:
    data = json.dumps(execution("SUCCESS"), indent=1).splitlines()
    body = (
        "id: start\r\ndata: {}\r\n\r\n: comment\r\nid: end\r\n"
        + "".join(f"data: {line}\r\n" for line in data)
        + "\r\n"
    )
    http.get(follow_url(api), content=body.encode())
    assert [e["state"]["current"] for e in hook.follow_execution(EXEC_ID)] == ["SUCCESS"]


def test_follow_cut_before_end_raises(hook: KestraHook, http: Any, api: str) -> None:
    http.get(follow_url(api), content=sse(("start", stub()), ("progress", execution("RUNNING"))))
    with pytest.raises(KestraStreamError, match="ended before its end event"):
        list(hook.follow_execution(EXEC_ID))


def test_follow_unknown_id_start_then_close(hook: KestraHook, http: Any, api: str) -> None:
    http.get(follow_url(api), content=sse(("start", stub())))
    with pytest.raises(KestraStreamError):
        list(hook.follow_execution(EXEC_ID))


# ------------------------------------------------------------------------------------------------- wait
def test_wait_returns_end_execution_and_reports_states(hook: KestraHook, http: Any, api: str) -> None:
    body = sse(
        ("start", stub()),
        ("progress", execution("RUNNING")),
        ("progress", execution("RUNNING")),
        ("end", execution("FAILED")),
    )
    http.get(follow_url(api), content=body)
    seen: list[str] = []
    final = hook.wait_for_execution(EXEC_ID, on_update=lambda e: seen.append(e["state"]["current"]))
    assert final["state"]["current"] == "FAILED"
    assert seen == ["RUNNING", "FAILED"]


def test_wait_falls_back_to_polling_when_stream_fails(hook: KestraHook, http: Any, api: str) -> None:
    http.get(follow_url(api), exc=requests.exceptions.ConnectionError("reset"))
    http.get(
        f"{api}/executions/{EXEC_ID}",
        [{"json": execution("RUNNING")}, {"json": execution("RUNNING")}, {"json": execution("SUCCESS")}],
    )
    final = hook.wait_for_execution(EXEC_ID, poll_interval=2.0)
    assert final["state"]["current"] == "SUCCESS"
    assert 2.0 in hook.sleeps  # type: ignore[attr-defined]


def test_wait_unknown_execution_raises_not_found(hook: KestraHook, http: Any, api: str) -> None:
    http.get(follow_url(api), content=sse(("start", stub())))
    http.get(f"{api}/executions/{EXEC_ID}", status_code=404, json={"message": "Not Found"})
    with pytest.raises(KestraNotFoundError):
        hook.wait_for_execution(EXEC_ID)


def test_wait_times_out(hook: KestraHook, http: Any, api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("airflow_provider_kestra.hooks.kestra.time.monotonic", lambda: clock[0])
    hook._sleep = lambda s: clock.__setitem__(0, clock[0] + s)  # type: ignore[method-assign]
    http.get(follow_url(api), content=sse(("start", stub()), ("progress", execution("PAUSED"))))
    http.get(f"{api}/executions/{EXEC_ID}", json=execution("PAUSED"))
    with pytest.raises(KestraWaitTimeout) as info:
        hook.wait_for_execution(EXEC_ID, timeout=12, poll_interval=5)
    assert info.value.state == "PAUSED" and info.value.execution_id == EXEC_ID
    assert isinstance(info.value, TimeoutError)


def test_wait_until_stops_at_a_non_terminal_state(hook: KestraHook, http: Any, api: str) -> None:
    body = sse(("start", stub()), ("progress", execution("RUNNING")), ("progress", execution("PAUSED")))
    http.get(follow_url(api), content=body)
    poll = http.get(f"{api}/executions/{EXEC_ID}", json=execution("RUNNING"))
    paused = hook.wait_for_execution(EXEC_ID, until=lambda e: e["state"]["current"] == "PAUSED")
    assert paused["state"]["current"] == "PAUSED"
    assert poll.call_count == 0


class IdleBody:
    """A response body whose read times out, as a silent event stream does."""

    closed = False

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        raise TimeoutError("timed out")

    def close(self) -> None:
        self.closed = True


def test_idle_stream_is_reopened_at_once_not_counted_as_a_failure(
    hook: KestraHook, http: Any, api: str
) -> None:
    from airflow_provider_kestra.hooks.kestra_base import STREAM_IDLE_SECONDS, KestraWaitTracker

    idle_count = KestraWaitTracker.MAX_STREAM_FAILURES + 1
    end = sse(("start", stub()), ("end", execution("SUCCESS")))
    follow = http.get(follow_url(api), [{"body": IdleBody()} for _ in range(idle_count)] + [{"content": end}])
    poll = http.get(f"{api}/executions/{EXEC_ID}", json=execution("RUNNING"))
    final = hook.wait_for_execution(EXEC_ID, poll_interval=5)
    assert final["state"]["current"] == "SUCCESS"
    assert follow.call_count == idle_count + 1
    assert poll.call_count == idle_count
    assert hook.sleeps == []  # type: ignore[attr-defined]
    assert follow.request_history[0].timeout[1] == STREAM_IDLE_SECONDS


# ---------------------------------------------------------------------------------------------- outputs
def mock_outputs(http: Any, api: str, v2: bool) -> None:
    runs = [
        task_run("extract", "5h8DJKAq2vC4jBcd2U6T3X", {"uri": FILE_URI, "size": 8}),
        task_run("each", "r1", {"value": "a"}, value="a"),
        task_run("each", "r2", {"value": "b"}, value="b"),
        task_run("log", "r3", None),
    ]
    if v2:
        http.get(f"{api}/executions/{EXEC_ID}", json=execution(outputs={"total": 3}, task_runs=[]))
        http.get(
            f"{api}/outputs/{EXEC_ID}",
            json=[
                {"taskId": "extract", "taskRunId": "5h8DJKAq2vC4jBcd2U6T3X", "iteration": 0, "inline": True},
                {"taskId": "each", "taskRunId": "r1", "value": "a", "iteration": 0, "inline": True},
                {"taskId": "each", "taskRunId": "r2", "value": "b", "iteration": 0, "inline": True},
                {"taskId": "log", "taskRunId": "r3", "iteration": 0, "inline": True},
            ],
        )
        for run in runs:
            http.get(f"{api}/outputs/{EXEC_ID}/{run['id']}", json=run["outputs"] or {})
    else:
        http.get(f"{api}/executions/{EXEC_ID}", json=execution(outputs={"total": 3}, task_runs=runs))


def test_get_outputs_same_shape_on_1x_and_2x(hook: KestraHook, http: Any, api: str, v2: bool) -> None:
    mock_outputs(http, api, v2)
    assert hook.get_outputs(EXEC_ID) == {"outputs": {"total": 3}, "task_outputs": {}}
    assert hook.get_outputs(EXEC_ID, include_task_outputs=True) == {
        "outputs": {"total": 3},
        "task_outputs": {
            "extract": {"uri": FILE_URI, "size": 8},
            "each": {"a": {"value": "a"}, "b": {"value": "b"}},
        },
    }


def test_get_outputs_of_light_execution_reads_full_one(
    hook: KestraHook, http: Any, api: str, v2: bool
) -> None:
    mock_outputs(http, api, v2)
    light = execution(outputs={"total": 3})
    result = hook.get_outputs(light, include_task_outputs=True)
    assert result["task_outputs"]["extract"]["size"] == 8


def test_download_output_files_safe_names(
    hook: KestraHook, http: Any, api: str, v2: bool, tmp_path: Path
) -> None:
    evil = f"kestra:///company/team/hello/executions/{EXEC_ID}/..%2F..%2Fetc%2Fpasswd"
    flow_file = f"kestra:///company/team/hello/executions/{EXEC_ID}/outputs/data.csv"
    mock_outputs(http, api, v2)
    http.get(
        f"{api}/executions/{EXEC_ID}",
        json=execution(
            outputs={"report": flow_file, "bad": evil},
            task_runs=[task_run("extract", "5h8DJKAq2vC4jBcd2U6T3X", {"uri": FILE_URI})],
        ),
    )
    if v2:
        http.get(
            f"{api}/outputs/{EXEC_ID}", json=[{"taskId": "extract", "taskRunId": "5h8DJKAq2vC4jBcd2U6T3X"}]
        )
    contents = {flow_file: b"flow", evil: b"evil", FILE_URI: b"task"}
    http.get(
        f"{api}/executions/{EXEC_ID}/file",
        content=lambda request, context: contents[request.qs["path"][0]],
    )
    target = tmp_path / "out"
    paths = hook.download_output_files(EXEC_ID, target)
    assert [p.name for p in paths] == ["data.csv", "passwd", "extract__data.csv"]
    assert [p.read_bytes() for p in paths] == [b"flow", b"evil", b"task"]
    assert all(p.parent == target.resolve() for p in paths)
    assert not list(target.glob("*.part"))


# ------------------------------------------------------------------------------------------------- logs
def test_get_logs_cursor_prints_each_line_once(hook: KestraHook, http: Any, api: str) -> None:
    first = [log_entry(1, "a"), log_entry(2, "b")]
    later = [*first, log_entry(2, "c"), log_entry(3, "d", level="WARN")]
    http.get(f"{api}/logs/{EXEC_ID}", [{"json": first}, {"json": later}, {"json": later}])
    lines, cursor = hook.get_logs(EXEC_ID)
    assert [e["message"] for e in lines] == ["a", "b"]
    assert http.last_request.qs["minLevel"] == ["INFO"]
    json.dumps(cursor)
    lines, cursor = hook.get_logs(EXEC_ID, cursor=cursor)
    assert [e["message"] for e in lines] == ["c", "d"]
    lines, _ = hook.get_logs(EXEC_ID, cursor=cursor, min_level="warning")
    assert lines == []
    http.get(f"{api}/logs/{EXEC_ID}", json=later)  # a server that ignores minLevel
    lines, _ = hook.get_logs(EXEC_ID, min_level="WARN")
    assert [e["message"] for e in lines] == ["d"]
    assert http.last_request.qs["minLevel"] == ["WARN"]


def test_download_logs(hook: KestraHook, http: Any, api: str) -> None:
    text = "2026-11-22T10:00:01.228074635Z INFO a\n2026-11-22T10:00:02.1Z WARN b"
    http.get(f"{api}/logs/{EXEC_ID}/download", text=text, headers={"Content-Type": "text/plain"})
    assert hook.download_logs(EXEC_ID, min_level="DEBUG") == text
    assert http.last_request.qs["minLevel"] == ["DEBUG"]
