"""Follow SSE, logs (list, download, follow), file download prefix rules, webhooks, Pebble failures."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import requests
from kestra_sim_client import SimClient, flow_source, parse_sse, return_task, sleep_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

LOGS = (
    "  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hello {{ inputs.who }}\n"
    "  - id: warn\n    type: io.kestra.plugin.core.log.Log\n    level: WARN\n    message: careful\n"
)
WRITE = (
    "  - id: w\n    type: io.kestra.plugin.core.storage.Write\n    content: payload\n    extension: .txt\n"
)


@pytest.fixture(scope="module")
def client() -> Iterator[SimClient]:
    with KestraSimulator(follow_missing_timeout=0.3) as sim:
        yield SimClient(sim)


def test_follow_frames_start_progress_end_then_close(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task() + sleep_task(duration="PT0.2S")))
    execution_id = client.run("company.team", flow_id)["id"]
    frames = client.follow(execution_id)
    ids = [frame_id for frame_id, _ in frames]
    assert ids[0] == "start" and ids[-1] == "end" and set(ids[1:-1]) == {"progress"}
    assert frames[0][1]["id"] == execution_id and "state" not in frames[0][1]
    assert frames[-1][1]["state"]["current"] == "SUCCESS"
    assert all(tr["state"]["current"] == "SUCCESS" for tr in frames[-1][1]["taskRunList"])


def test_follow_of_a_finished_execution_is_start_then_end(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id)
    assert [frame_id for frame_id, _ in client.follow(execution_id)] == ["start", "end"]


def test_follow_of_an_unknown_id_sends_start_then_drops(client: SimClient) -> None:
    frames = client.follow("NoSuchExecution")
    assert [frame_id for frame_id, _ in frames] == ["start"]


def test_logs_list_min_level_download_and_entry_fields(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, LOGS, extra="inputs:\n  - id: who\n    type: STRING\n"))
    execution_id = client.run("company.team", flow_id, inputs={"who": "bob"})["id"]
    client.wait(execution_id)
    entries = client.request("GET", f"/logs/{execution_id}").json()
    assert [(e["taskId"], e["level"], e["message"]) for e in entries] == [
        ("say", "INFO", "hello bob"),
        ("warn", "WARN", "careful"),
    ]
    assert {"namespace", "flowId", "executionId", "taskRunId", "attemptNumber", "timestamp", "thread"} <= set(
        entries[0]
    )
    assert [
        e["message"]
        for e in client.request("GET", f"/logs/{execution_id}", params={"minLevel": "WARN"}).json()
    ] == ["careful"]
    download = client.request("GET", f"/logs/{execution_id}/download")
    assert download.headers["content-type"].startswith("text/plain")
    lines = download.text.split("\n")
    assert not download.text.endswith("\n")
    assert re.fullmatch(r"\S+Z INFO hello bob", lines[0]) and lines[1].endswith(" WARN careful")


def test_log_follow_starts_with_an_empty_entry_and_never_ends(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, LOGS, extra="inputs:\n  - id: who\n    type: STRING\n"))
    execution_id = client.run("company.team", flow_id, inputs={"who": "x"})["id"]
    client.wait(execution_id)
    response = client.request("GET", f"/logs/{execution_id}/follow", stream=True)
    frames = parse_sse(response.iter_lines(decode_unicode=True), limit=3)
    response.close()
    assert frames[0] == ("start", {"attemptNumber": None})
    assert [data["message"] for _, data in frames[1:]] == ["hello x", "careful"]


def test_file_download_prefix_rules(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, WRITE))
    first = client.wait(client.run("company.team", flow_id)["id"])
    second = client.wait(client.run("company.team", flow_id)["id"])
    uri = first["taskRunList"][0]["outputs"]["uri"]
    assert uri.startswith(f"kestra:///company/team/{flow_id}/executions/{first['id']}/tasks/w/")
    ok = client.request("GET", f"/executions/{first['id']}/file", params={"path": uri})
    assert ok.content == b"payload" and ok.headers["content-type"] == "application/octet-stream"
    assert ok.headers["content-disposition"].startswith("attachment")
    metas = client.request("GET", f"/executions/{first['id']}/file/metas", params={"path": uri})
    assert metas.json() == {"size": 7}
    redirected = client.request(
        "GET", f"/executions/{second['id']}/file", params={"path": uri}, allow_redirects=False
    )
    assert (
        redirected.status_code == 301 and f"/executions/{first['id']}/file" in redirected.headers["location"]
    )
    followed = client.request("GET", f"/executions/{second['id']}/file", params={"path": uri})
    assert followed.content == b"payload"
    foreign = client.request(
        "GET", f"/executions/{first['id']}/file", params={"path": "kestra:///elsewhere/x.txt"}
    )
    assert (foreign.status_code, foreign.json()["message"]) == (422, "Illegal argument: Invalid prefix path")
    unknown = client.request("GET", "/executions/ghost/file", params={"path": uri})
    assert (unknown.status_code, unknown.json()["message"]) == (
        404,
        "Not Found: Unable to find execution id 'ghost'",
    )


def test_unsupported_pebble_fails_the_execution_loudly(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task(value="{{ now() | date('yyyy') }}")))
    done = client.wait(client.run("company.team", flow_id)["id"])
    assert done["state"]["current"] == "FAILED"
    (error,) = client.request("GET", f"/logs/{done['id']}", params={"minLevel": "ERROR"}).json()
    assert "now()" in error["message"] and "Pebble subset" in error["message"]


def test_webhook_is_open_and_passes_body_to_trigger_variables(client: SimClient) -> None:
    flow_id = unique()
    trigger = "triggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: s3cret\n"
    client.deploy(flow_source(flow_id, return_task(value="{{ trigger.body.name }}"), extra=trigger))
    url = f"{client.base}/executions/webhook/company.team/{flow_id}/s3cret"
    response = requests.post(url, json={"name": "web"}, params={"p": "1"})
    assert response.status_code == 200
    body = response.json()
    assert body["trigger"]["variables"]["body"] == {"name": "web"}
    assert body["trigger"]["variables"]["parameters"] == {"p": ["1"]}
    assert {"key": "system.from", "value": "trigger"} in body["labels"]
    assert client.wait(body["id"])["taskRunList"][0]["outputs"] == {"value": "web"}
    wrong_key = requests.post(f"{client.base}/executions/webhook/company.team/{flow_id}/nope")
    assert (wrong_key.status_code, wrong_key.json()["message"]) == (404, "Not Found: Webhook not found")
    no_flow = requests.post(f"{client.base}/executions/webhook/company.team/ghost/s3cret")
    assert (no_flow.status_code, no_flow.json()["message"]) == (404, "Not Found: Flow not found")


def test_2_0_execution_has_no_task_run_outputs_but_outputs_endpoints() -> None:
    with KestraSimulator(kestra_version="2.0") as sim:
        client = SimClient(sim)
        flow_id = unique()
        client.deploy(flow_source(flow_id, return_task()))
        done = client.wait(client.run("company.team", flow_id)["id"])
        assert "outputs" not in done["taskRunList"][0] and "deleted" not in done
        (info,) = client.request("GET", f"/outputs/tasks/{done['id']}").json()
        assert info == {"taskId": "ret", "taskRunId": done["taskRunList"][0]["id"], "inline": True}
        task_outputs = client.request("GET", f"/outputs/tasks/{done['id']}/{info['taskRunId']}").json()
        assert task_outputs == {"value": "ok"}
        assert client.request("GET", f"/outputs/executions/{done['id']}").json() == {}
        assert client.request("GET", f"/outputs/{done['id']}").status_code == 404
        kill = client.request("DELETE", f"/executions/{done['id']}/actions/kill")
        assert kill.status_code == 200 and kill.json()["id"] == done["id"]
        problem = client.request("GET", "/executions/ghost")
        assert problem.headers["content-type"] == "application/problem+json"


def test_0_22_log_follow_has_no_start_event() -> None:
    with KestraSimulator(kestra_version="0.22") as sim:
        client = SimClient(sim)
        flow_id = unique()
        client.deploy(
            flow_source(flow_id, "  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
        )
        execution_id = client.run("company.team", flow_id)["id"]
        client.wait(execution_id)
        response = client.request("GET", f"/logs/{execution_id}/follow", stream=True)
        frames = parse_sse(response.iter_lines(decode_unicode=True), limit=1)
        response.close()
        assert frames[0][0] == "progress" and frames[0][1]["message"] == "hi"
