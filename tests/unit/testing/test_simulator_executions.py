"""Execution endpoints: create (inputs, labels), states, kill, resume, restart, labels, delete, search."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from kestra_sim_client import SimClient, flow_source, return_task, sleep_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

INPUTS_FLOW = """
inputs:
  - id: s
    type: STRING
  - id: i
    type: INT
    required: false
  - id: f
    type: FLOAT
    required: false
  - id: b
    type: BOOLEAN
    defaults: false
  - id: d
    type: DATETIME
    required: false
  - id: j
    type: JSON
    required: false
  - id: a
    type: ARRAY
    itemType: INT
    required: false
  - id: c
    type: SELECT
    values: [red, blue]
    defaults: red
  - id: file
    type: FILE
    required: false
"""


@pytest.fixture(scope="module")
def client() -> Iterator[SimClient]:
    with KestraSimulator() as sim:
        yield SimClient(sim)


@pytest.fixture(scope="module")
def inputs_flow(client: SimClient) -> str:
    flow_id = unique("inputs")
    client.deploy(flow_source(flow_id, return_task(value="{{ inputs.s }}"), extra=INPUTS_FLOW))
    return flow_id


def test_create_answers_200_created_with_url_and_correlation_label(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    execution = client.run("company.team", flow_id, labels=["team:data"])
    assert re.fullmatch(r"[0-9A-Za-z]{1,22}", execution["id"])
    assert execution["state"]["current"] == "CREATED"
    assert [h["state"] for h in execution["state"]["histories"]] == ["CREATED"]
    assert "taskRunList" not in execution and "duration" not in execution["state"]
    assert "inputs" not in execution and "outputs" not in execution  # omitted when empty
    assert execution["url"] == f"{client.sim.url}/ui/main/executions/company.team/{flow_id}/{execution['id']}"
    labels = {label["key"]: label["value"] for label in execution["labels"]}
    assert labels["team"] == "data"
    assert labels["system.correlationId"] == execution["id"]
    assert execution["originalId"] == execution["id"] and execution["deleted"] is False


def test_execution_runs_to_success_with_histories_attempts_and_durations(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task(value="{{ flow.id }}")))
    done = client.wait(client.run("company.team", flow_id)["id"])
    assert [h["state"] for h in done["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert done["state"]["duration"].startswith("PT") and done["state"]["endDate"].endswith("Z")
    (task_run,) = done["taskRunList"]
    assert task_run["outputs"] == {"value": flow_id}
    assert [h["state"] for h in task_run["attempts"][0]["state"]["histories"]] == [
        "CREATED",
        "RUNNING",
        "SUCCESS",
    ]


def test_task_run_outputs_key_is_always_present_even_when_null(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(
        flow_source(flow_id, "  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    )
    (task_run,) = client.wait(client.run("company.team", flow_id)["id"])["taskRunList"]
    assert "outputs" in task_run and task_run["outputs"] is None
    assert task_run["attempts"][0]["workerId"]


def test_typed_inputs_and_file_input(client: SimClient, inputs_flow: str) -> None:
    execution = client.run(
        "company.team",
        inputs_flow,
        inputs={
            "s": "hello",
            "i": "42",
            "f": "1.5",
            "b": "true",
            "d": "2024-01-02T03:04:05+01:00",
            "j": '{"k": [1, 2]}',
            "a": "[1, 2]",
            "c": "blue",
            "file": ("data.csv", b"a,b\n", "text/csv"),
            "ignored": "x",
        },
    )
    inputs = execution["inputs"]
    assert inputs["s"] == "hello" and inputs["i"] == 42 and inputs["f"] == 1.5 and inputs["b"] is True
    assert inputs["d"] == "2024-01-02T02:04:05Z" and inputs["j"] == {"k": [1, 2]} and inputs["a"] == [1, 2]
    assert inputs["c"] == "blue" and "ignored" not in inputs
    prefix = f"kestra:///company/team/{inputs_flow}/executions/{execution['id']}/inputs/file/data.csv"
    assert inputs["file"] == prefix
    download = client.request("GET", f"/executions/{execution['id']}/file", params={"path": prefix})
    assert download.content == b"a,b\n"


def test_defaults_apply_when_inputs_are_absent(client: SimClient, inputs_flow: str) -> None:
    """Optional inputs without value nor default stay, as null (RunnerTest#triggerExecution)."""
    inputs = client.run("company.team", inputs_flow, inputs={"s": "x"})["inputs"]
    nulls = dict.fromkeys(("a", "d", "f", "file", "i", "j"))
    assert inputs == {"s": "x", "b": False, "c": "red", **nulls}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "Invalid entity: Missing required input:s"),
        (
            {"s": "x", "i": "abc"},
            'Invalid entity: Invalid value for input `i`. Cause: For input string: "abc"',
        ),
        (
            {"s": "x", "c": "green"},
            "Invalid entity: Invalid value for input `c`. Cause: it must match the values `[red, blue]`",
        ),
        (
            {"s": "x", "a": '["z"]'},
            "Invalid entity: Invalid value for input `a`. "
            "Cause: Unable to parse array element as `INT` on `z`",
        ),
    ],
)
def test_bad_inputs_are_422_with_kestras_message(
    client: SimClient, inputs_flow: str, inputs: dict[str, str], message: str
) -> None:
    response = client.request(
        "POST",
        f"/executions/company.team/{inputs_flow}",
        files={k: (None, v) for k, v in inputs.items()} or None,
    )
    assert response.status_code == 422
    assert response.json()["message"] == message


@pytest.mark.parametrize(
    ("label", "message"),
    [
        # RequestUtils.toMap: HttpStatusException(422), its reason phrase is the prefix (1.3.25 @2a102a6a).
        ("nocolon", "Unprocessable Entity: Can't split the queryString parameter by ':'"),
        ("key:", "Unprocessable Entity: Can't have an empty part of queryString"),
        ("my key:v", "Unprocessable Entity: Key of queryString can't contain a whitespace character"),
        (
            "system.x:1",
            "Illegal argument: System labels can only be set by Kestra itself, offending label: system.x=1",
        ),
    ],
)
def test_bad_labels_are_422(client: SimClient, label: str, message: str) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    response = client.request("POST", f"/executions/company.team/{flow_id}", params={"labels": label})
    assert response.status_code == 422
    assert response.json()["message"] == message


def test_missing_and_disabled_flows(client: SimClient) -> None:
    missing = client.request("POST", "/executions/company.team/ghost")
    assert (missing.status_code, missing.json()["message"]) == (
        404,
        "Not Found: Requested Flow is not found.",
    )
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task(), extra="disabled: true\n"))
    disabled = client.request("POST", f"/executions/company.team/{flow_id}")
    assert (disabled.status_code, disabled.json()["message"]) == (
        409,
        "Illegal state: Requested Flow is disabled.",
    )


def test_wait_true_returns_the_final_execution(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(
        flow_source(
            flow_id,
            return_task(),
            extra='outputs:\n  - id: o\n    type: STRING\n    value: "{{ outputs.ret.value }}!"\n',
        )
    )
    execution = client.run("company.team", flow_id, wait="true")
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["outputs"] == {"o": "ok!"}
    assert execution["url"].endswith(execution["id"])


def test_kill_is_202_without_body_then_killing_then_killed(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, sleep_task()))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id, ("RUNNING",))
    response = client.request("DELETE", f"/executions/{execution_id}/kill")
    assert (response.status_code, response.content) == (202, b"")
    killed = client.wait(execution_id)
    assert [h["state"] for h in killed["state"]["histories"]][-2:] == ["KILLING", "KILLED"]
    assert killed["taskRunList"][0]["state"]["current"] == "KILLED"
    assert client.request("DELETE", f"/executions/{execution_id}/kill").status_code == 202
    again = client.request("DELETE", f"/executions/{execution_id}/kill", params={"isOnKillCascade": "false"})
    assert (again.status_code, again.json()["message"]) == (
        409,
        "Illegal state: Execution is already finished, can't kill it",
    )
    assert client.request("DELETE", "/executions/ghost/kill").status_code == 404


def test_pause_resume_with_on_resume_inputs(client: SimClient) -> None:
    flow_id = unique()
    pause = (
        "  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n"
        "    onResume:\n      - id: ok\n        type: BOOLEAN\n"
    )
    client.deploy(flow_source(flow_id, pause + return_task(value="{{ outputs.wait.onResume.ok }}")))
    execution_id = client.run("company.team", flow_id)["id"]
    paused = client.wait(execution_id, ("PAUSED",))
    assert paused["state"]["current"] == "PAUSED" and "endDate" in paused["state"]
    response = client.request("POST", f"/executions/{execution_id}/resume", files={"ok": (None, "true")})
    assert (response.status_code, response.content) == (204, b"")
    done = client.wait(execution_id)
    assert done["state"]["current"] == "SUCCESS"
    assert done["taskRunList"][-1]["outputs"] == {"value": "true"}
    not_paused = client.request("POST", f"/executions/{execution_id}/resume")
    assert not_paused.status_code == 409
    assert (
        not_paused.json()["message"]
        == f"Illegal state: Execution '{execution_id}' is not paused, can't resume it"
    )


def test_restart_reruns_failed_task_runs_with_a_new_attempt(client: SimClient) -> None:
    flow_id = unique()
    fail = "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"
    client.deploy(flow_source(flow_id, return_task() + fail))
    execution_id = client.run("company.team", flow_id)["id"]
    assert client.wait(execution_id)["state"]["current"] == "FAILED"
    restarted = client.request("POST", f"/executions/{execution_id}/restart")
    assert restarted.status_code == 200
    body = restarted.json()
    assert body["id"] == execution_id and body["state"]["current"] == "RESTARTED"
    assert body["metadata"]["attemptNumber"] == 2
    assert {"key": "system.restarted", "value": "true"} in body["labels"]
    again = client.wait(execution_id)
    assert [h["state"] for h in again["state"]["histories"]][-3:] == ["RESTARTED", "RUNNING", "FAILED"]
    boom = next(tr for tr in again["taskRunList"] if tr["taskId"] == "boom")
    assert len(boom["attempts"]) == 2


def test_restart_refused_for_running_or_killed(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, sleep_task()))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id, ("RUNNING",))
    running = client.request("POST", f"/executions/{execution_id}/restart")
    assert running.status_code == 409
    assert (
        "Execution must be terminated or paused and not killed to be restarted" in running.json()["message"]
    )
    client.request("DELETE", f"/executions/{execution_id}/kill")
    client.wait(execution_id)
    assert client.request("POST", f"/executions/{execution_id}/restart").status_code == 409


def test_set_labels_replaces_non_system_labels_only_when_terminated(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, sleep_task(duration="PT0.3S")))
    execution_id = client.run("company.team", flow_id, labels=["old:1"])["id"]
    early = client.request("POST", f"/executions/{execution_id}/labels", json=[{"key": "a", "value": "b"}])
    assert (early.status_code, early.text) == (400, "The execution is not terminated")
    client.wait(execution_id)
    response = client.request("POST", f"/executions/{execution_id}/labels", json=[{"key": "a", "value": "b"}])
    labels = {label["key"]: label["value"] for label in response.json()["labels"]}
    assert "old" not in labels and labels["a"] == "b" and labels["system.correlationId"] == execution_id
    system = client.request(
        "POST", f"/executions/{execution_id}/labels", json=[{"key": "system.x", "value": "1"}]
    )
    assert system.status_code == 422


def test_delete_is_204_then_404(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id)
    assert client.request("DELETE", f"/executions/{execution_id}").status_code == 204
    assert client.request("GET", f"/executions/{execution_id}").status_code == 404


def test_search_with_filters_newest_first(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    ids = [client.run("company.team", flow_id, labels=[f"n:{n}"])["id"] for n in range(3)]
    for execution_id in ids:
        client.wait(execution_id)
    params = {
        "filters[namespace][EQUALS]": "company.team",
        "filters[flowId][EQUALS]": flow_id,
        "filters[state][IN]": "SUCCESS,FAILED",
    }
    page = client.request("GET", "/executions/search", params=params).json()
    assert page["total"] == 3
    assert [e["id"] for e in page["results"]] == list(reversed(ids))
    by_label = client.request(
        "GET", "/executions/search", params={**params, "filters[labels][EQUALS][n]": "1"}
    ).json()
    assert [e["id"] for e in by_label["results"]] == [ids[1]]
    legacy = client.request(
        "GET", "/executions/search", params={"namespace": "company", "flowId": flow_id}
    ).json()
    assert legacy["total"] == 3


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        (
            {"filters[triggerId][EQUALS]": "x"},
            400,
            "Invalid query filters: Provided query filters are invalid: "
            "Field TRIGGER_ID is not supported for resource EXECUTION",
        ),
        ({"page": "0"}, 422, "Invalid entity: searchExecutions.page: must be greater than or equal to 1"),
        ({"sort": "nope:asc"}, 422, "Illegal argument: Invalid sort field: nope"),
        ({"sort": "id:sideways"}, 422, "Illegal argument: Invalid sort parameter"),
    ],
)
def test_search_errors(client: SimClient, params: dict[str, str], status: int, message: str) -> None:
    response = client.request("GET", "/executions/search", params=params)
    assert response.status_code == status
    assert response.json()["message"].startswith(message)


def test_pause_by_api_needs_running_and_holds_the_next_task(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, sleep_task(duration="PT0.3S") + return_task()))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id, ("RUNNING",))
    response = client.request("POST", f"/executions/{execution_id}/pause")
    assert (response.status_code, response.content) == (200, b"")  # void method: Micronaut answers 200
    paused = client.wait(execution_id, ("PAUSED",))
    assert paused["state"]["current"] == "PAUSED"
    refused = client.request("POST", f"/executions/{execution_id}/pause")
    assert (refused.status_code, refused.json()["message"]) == (
        422,
        "Illegal argument: The execution is not running",
    )
    assert client.request("POST", f"/executions/{execution_id}/resume").status_code == 204
    done = client.wait(execution_id)
    assert done["state"]["current"] == "SUCCESS"
    assert [h["state"] for h in done["state"]["histories"]][-3:] == ["PAUSED", "RUNNING", "SUCCESS"]
    assert [tr["taskId"] for tr in done["taskRunList"]] == ["nap", "ret"]
