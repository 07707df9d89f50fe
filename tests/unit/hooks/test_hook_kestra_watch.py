"""KestraHook: SSE framing details, the ``timeout=`` convenience of the wait, outputs, output files and logs,
on 1.x and 2.x shapes (the scenarios shared with the async hook are in test_hook_kestra_transports.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_payloads import execution, log_entry, paged, task_run

from airflow_provider_kestra.exceptions import KestraWaitTimeout
from airflow_provider_kestra.utils.logs import search_since

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


# ----------------------------------------------------------------------------------------- follow, wait
def test_follow_handles_crlf_and_multiline_data(hook: KestraHook, http: Any, api: str) -> None:
    data = json.dumps(execution("SUCCESS"), indent=1).splitlines()
    body = (
        "id: start\r\ndata: {}\r\n\r\n: comment\r\nid: end\r\n"
        + "".join(f"data: {line}\r\n" for line in data)
        + "\r\n"
    )
    http.get(follow_url(api), content=body.encode())
    assert [e["state"]["current"] for e in hook.follow_execution(EXEC_ID)] == ["SUCCESS"]


def test_wait_timeout_is_seconds_from_now(
    hook: KestraHook, http: Any, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("airflow_provider_kestra.utils.wait.time.time", lambda: clock[0])
    hook._sleep = lambda s: clock.__setitem__(0, clock[0] + s)  # type: ignore[method-assign]
    http.get(follow_url(api), content=sse(("start", stub()), ("progress", execution("PAUSED"))))
    http.get(f"{api}/executions/{EXEC_ID}", json=execution("PAUSED"))
    with pytest.raises(KestraWaitTimeout) as info:
        hook.wait_for_execution(EXEC_ID, timeout=12, poll_interval=5)
    assert info.value.state == "PAUSED" and info.value.execution_id == EXEC_ID
    assert clock[0] == 1012.0  # polled at 1000, 1005, 1010, then slept the 2 s left
    with pytest.raises(KestraWaitTimeout):  # the earlier of timeout and deadline wins
        hook.wait_for_execution(EXEC_ID, timeout=600, deadline=clock[0] + 3, poll_interval=5)
    assert clock[0] == 1015.0


# ---------------------------------------------------------------------------------------------- outputs
def mock_outputs(http: Any, api: str, v2: bool, flow_outputs: dict[str, Any] | None = None) -> None:
    """1.x: outputs inside the execution. 2.x: Kestra's OutputController (kestra-io/kestra@159e1bf8,
    webserver/.../controllers/api/OutputController.java) serves them apart, and a 2.0 execution carries no
    ``outputs`` (core/.../services/ExecutionOutputService.java@913f82c2 reads them from their own store)."""
    flow_outputs = {"total": 3} if flow_outputs is None else flow_outputs
    runs = [
        task_run("extract", "5h8DJKAq2vC4jBcd2U6T3X", {"uri": FILE_URI, "size": 8}),
        task_run("each", "r1", {"value": "a"}, value="a"),
        task_run("each", "r2", {"value": "b"}, value="b"),
        task_run("log", "r3", None),
    ]
    if not v2:
        http.get(f"{api}/executions/{EXEC_ID}", json=execution(outputs=flow_outputs, task_runs=runs))
        return
    http.get(f"{api}/executions/{EXEC_ID}", json=execution(task_runs=[]))
    http.get(f"{api}/outputs/executions/{EXEC_ID}", json=flow_outputs)
    http.get(
        f"{api}/outputs/tasks/{EXEC_ID}",
        json=[  # TaskOutputInformation(taskId, taskRunId, value, iteration, inline)
            {"taskId": "extract", "taskRunId": "5h8DJKAq2vC4jBcd2U6T3X", "iteration": 0, "inline": True},
            {"taskId": "each", "taskRunId": "r1", "value": "a", "iteration": 0, "inline": True},
            {"taskId": "each", "taskRunId": "r2", "value": "b", "iteration": 0, "inline": False},
            {"taskId": "log", "taskRunId": "r3", "iteration": 0, "inline": True},
        ],
    )
    for run in runs:
        if run["outputs"] is None:  # the controller returns null: Micronaut answers 404
            http.get(f"{api}/outputs/tasks/{EXEC_ID}/{run['id']}", status_code=404, json={"type": NOT_FOUND})
        else:
            http.get(f"{api}/outputs/tasks/{EXEC_ID}/{run['id']}", json=run["outputs"])


NOT_FOUND = "https://kestra.io/docs/api-reference/problems/not-found"


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


def test_get_outputs_2x_without_outputs_is_empty(hook: KestraHook, http: Any, api: str, v2: bool) -> None:
    if not v2:
        pytest.skip("2.x endpoints")
    http.get(f"{api}/outputs/executions/{EXEC_ID}", status_code=404, json={"type": NOT_FOUND})
    assert hook.get_outputs(execution()) == {"outputs": {}, "task_outputs": {}}
    before_2_0 = execution(outputs={"kept": 1})  # made before 2.0: Kestra still answers with them
    http.get(f"{api}/outputs/executions/{EXEC_ID}", json={"kept": 1})
    assert hook.get_outputs(before_2_0)["outputs"] == {"kept": 1}


def test_download_output_files_safe_names(
    hook: KestraHook, http: Any, api: str, v2: bool, tmp_path: Path
) -> None:
    evil = f"kestra:///company/team/hello/executions/{EXEC_ID}/..%2F..%2Fetc%2Fpasswd"
    flow_file = f"kestra:///company/team/hello/executions/{EXEC_ID}/outputs/data.csv"
    mock_outputs(http, api, v2, flow_outputs={"report": flow_file, "bad": evil})
    if not v2:
        http.get(
            f"{api}/executions/{EXEC_ID}",
            json=execution(
                outputs={"report": flow_file, "bad": evil},
                task_runs=[task_run("extract", "5h8DJKAq2vC4jBcd2U6T3X", {"uri": FILE_URI})],
            ),
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
    """Each read searches from the cursor on (Kestra answers newest first); a line is printed once."""
    first = [log_entry(1, "a"), log_entry(2, "b")]
    later = [log_entry(2, "b"), log_entry(2, "c"), log_entry(3, "d", level="WARN")]
    search = f"{api}/logs/search"
    http.get(search, [{"json": paged(first[::-1])}, {"json": paged(later[::-1])}, {"json": paged([])}])
    lines, cursor = hook.get_logs(EXEC_ID)
    assert [e["message"] for e in lines] == ["a", "b"]
    assert http.last_request.qs["filters[level][EQUALS]"] == ["INFO"]
    assert "filters[startDate][GREATER_THAN_OR_EQUAL_TO]" not in http.last_request.qs
    since = json.loads(json.dumps(cursor))["since"]
    lines, cursor = hook.get_logs(EXEC_ID, cursor=cursor)
    assert [e["message"] for e in lines] == ["c", "d"]
    assert http.last_request.qs["filters[startDate][GREATER_THAN_OR_EQUAL_TO]"] == [search_since(since)]
    lines, _ = hook.get_logs(EXEC_ID, cursor=cursor, min_level="warning")
    assert lines == []
    http.get(search, json=paged(later[::-1]))  # a server that ignores the level filter
    lines, _ = hook.get_logs(EXEC_ID, min_level="WARN")
    assert [e["message"] for e in lines] == ["d"]
    assert http.last_request.qs["filters[level][EQUALS]"] == ["WARN"]


def test_download_logs(hook: KestraHook, http: Any, api: str) -> None:
    text = "2026-11-22T10:00:01.228074635Z INFO a\n2026-11-22T10:00:02.1Z WARN b"
    http.get(f"{api}/logs/{EXEC_ID}/download", text=text, headers={"Content-Type": "text/plain"})
    assert hook.download_logs(EXEC_ID, min_level="DEBUG") == text
    assert http.last_request.qs["minLevel"] == ["DEBUG"]
