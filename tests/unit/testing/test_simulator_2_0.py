"""The 2.0 line as Kestra's 2.0 source has it: action layouts, conflicts, awaited actions, problem+json.

Sources (kestra-io/kestra, the 2.0 development line): ``webserver/.../controllers/api/
ExecutionController.java`` (the ``awaitBlockingAction`` version, code index file 54490078967),
``webserver/.../errors/ProblemTypes.java`` @14844e4f, ``ProblemFactory.java`` @a5a9d5d2,
``KestraProblemMappings.java`` @0af2442f,
``filter/ProblemResponseFilter.java`` @3235d1ac, ``filter/NotFoundHeadersFilter.java`` @fc858e03,
``core/.../services/FlowService.java`` (``getFlowIfExecutableOrThrow``) and ``ExecutionService.java``
(``getExecutionIfPause``), code index files 54537689894 and 3986355509.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import requests
from kestra_sim_client import SimClient, flow_source, return_task, sleep_task, unique

from airflow_provider_kestra.testing.cli import build_parser
from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVER_ERROR_DETAIL = "An unexpected error occurred. Quote the traceId when contacting support."
PROBLEM = "https://kestra.io/docs/api-reference/problems/"
FAIL_TASK = "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"


@pytest.fixture(scope="module")
def sim() -> Iterator[KestraSimulator]:
    with KestraSimulator(kestra_version="2.0", follow_missing_timeout=0.2) as simulator:
        yield simulator


@pytest.fixture
def client(sim: KestraSimulator) -> SimClient:
    sim.faults.clear()
    return SimClient(sim)


def _finished(client: SimClient, tasks: str) -> str:
    flow_id = unique()
    client.deploy(flow_source(flow_id, tasks))
    execution_id = str(client.run("company.team", flow_id)["id"])
    client.wait(execution_id)
    return execution_id


def _running(client: SimClient) -> str:
    flow_id = unique()
    client.deploy(flow_source(flow_id, sleep_task()))
    execution_id = str(client.run("company.team", flow_id)["id"])
    client.wait(execution_id, ("RUNNING",))
    return execution_id


def _problem(response: requests.Response, status: int, slug: str, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["type"], body["title"], body["status"]) == (PROBLEM + slug, title, status)
    assert body["instance"] == response.request.path_url.split("?")[0]
    return body


# -- action layouts ---------------------------------------------------------------------------------------


def test_actions_layout_leaves_plain_paths_to_the_routes_they_happen_to_match(client: SimClient) -> None:
    """With ``/actions/``, ``POST /executions/{id}/labels`` is create-execution of flow ``labels`` in
    namespace ``{id}`` (a matched route: no such flow), and ``DELETE /executions/{id}/kill`` finds only
    that POST route (405), as Micronaut routes them."""
    execution_id = _finished(client, return_task())
    labels = [{"key": "team", "value": "data"}]
    assert (
        client.request("POST", f"/executions/{execution_id}/actions/labels", json=labels).status_code == 200
    )
    plain = client.request("POST", f"/executions/{execution_id}/labels", json=labels)
    assert _problem(plain, 404, "not-found", "Resource not found")["detail"] == "Requested Flow is not found."
    assert (plain.headers["X-Kestra-Route-Matched"], plain.headers["X-Kestra-Edition"]) == ("true", "OSS")
    kill = client.request("DELETE", f"/executions/{execution_id}/kill")
    _problem(kill, 405, "method-not-allowed", "Method not allowed")
    assert kill.headers["Allow"] == "POST"


def test_plain_layout_serves_plain_paths_and_refuses_actions_paths() -> None:
    with KestraSimulator(kestra_version="2.0", action_routes="plain") as sim:
        assert sim.action_routes == "plain"
        client = SimClient(sim)
        execution_id = _running(client)
        killed = client.request("DELETE", f"/executions/{execution_id}/kill")
        assert killed.status_code == 200 and killed.json()["id"] == execution_id
        assert killed.headers["content-type"].startswith("text/json")
        refused = client.request("DELETE", f"/executions/{execution_id}/actions/kill")
        _problem(refused, 404, "not-found", "Resource not found")
        assert refused.headers["X-Kestra-Route-Matched"] == "false"


def test_action_routes_are_a_2_0_choice_also_on_the_command_line() -> None:
    assert KestraSimulator(kestra_version="2.0").action_routes == "actions"
    assert KestraSimulator(kestra_version="1.3", action_routes="plain").action_routes == "plain"
    with pytest.raises(ValueError, match=r"needs 2\.0"):
        KestraSimulator(kestra_version="1.3", action_routes="actions")
    with pytest.raises(ValueError, match="action_routes must be one of"):
        KestraSimulator(kestra_version="2.0", action_routes="nested")
    assert build_parser().parse_args(["--action-routes", "plain"]).action_routes == "plain"
    assert build_parser().parse_args([]).action_routes is None


# -- conflicts and illegal states -------------------------------------------------------------------------


def test_kill_of_a_terminated_execution_without_cascade_is_a_409_conflict(client: SimClient) -> None:
    execution_id = _finished(client, return_task())
    path = f"/executions/{execution_id}/actions/kill"
    refused = client.request("DELETE", path, params={"isOnKillCascade": "false"})
    body = _problem(refused, 409, "conflict", "Conflict")
    assert body["detail"] == "Cannot kill execution: execution is already terminated."
    assert client.request("DELETE", path).status_code == 200


def test_restart_of_a_running_execution_is_a_409_conflict(client: SimClient) -> None:
    execution_id = _running(client)
    body = _problem(
        client.request("POST", f"/executions/{execution_id}/actions/restart"), 409, "conflict", "Conflict"
    )
    assert (
        body["detail"]
        == "Cannot restart execution: current state is 'RUNNING', expected terminated or paused."
    )


def test_pause_of_a_finished_execution_is_a_409_conflict(client: SimClient) -> None:
    execution_id = _finished(client, return_task())
    body = _problem(
        client.request("POST", f"/executions/{execution_id}/actions/pause"), 409, "conflict", "Conflict"
    )
    assert body["detail"] == "Cannot pause execution: execution is not running."


def test_webhook_on_a_disabled_flow_is_a_409_conflict(client: SimClient) -> None:
    flow_id = unique()
    trigger = "triggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n"
    client.deploy(flow_source(flow_id, return_task(), extra="disabled: true\n" + trigger))
    answer = requests.post(f"{client.base}/executions/webhook/company.team/{flow_id}/k", timeout=10)
    body = _problem(answer, 409, "conflict", "Conflict")
    assert body["detail"] == "Cannot execute flow: flow is disabled."


def test_create_on_a_disabled_flow_stays_an_unmapped_illegal_state_500(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task(), extra="disabled: true\n"))
    body = _problem(
        client.request("POST", f"/executions/company.team/{flow_id}"),
        500,
        "internal-error",
        "Internal server error",
    )
    assert body["detail"] == SERVER_ERROR_DETAIL and re.fullmatch(r"[0-9A-Za-z]{1,22}", body["traceId"])
    assert "errors" not in body


def test_resume_of_a_finished_execution_stays_an_unmapped_illegal_state_500(client: SimClient) -> None:
    execution_id = _finished(client, return_task())
    answer = client.request("POST", f"/executions/{execution_id}/actions/resume")
    body = _problem(answer, 500, "internal-error", "Internal server error")
    assert body["detail"] == SERVER_ERROR_DETAIL, "a 5xx never echoes its exception message"


# -- awaited actions --------------------------------------------------------------------------------------


def test_restart_with_nothing_to_restart_fails_in_the_executor_as_a_409(client: SimClient) -> None:
    execution_id = _finished(client, return_task())
    answer = client.request("POST", f"/executions/{execution_id}/actions/restart")
    body = _problem(answer, 409, "conflict", "Conflict")
    assert re.fullmatch(
        rf"Failed to execute action 'Restart' on execution {execution_id} \(operation_id=[0-9A-Za-z]+\)\. "
        r"Cause: No task found to restart execution from!",
        body["detail"],
    )


def test_action_timeout_fault_answers_504_and_still_applies_the_action(
    sim: KestraSimulator, client: SimClient
) -> None:
    execution_id = _running(client)
    rule = sim.faults.action_timeout("kill", count=1)
    answer = client.request("DELETE", f"/executions/{execution_id}/actions/kill")
    body = _problem(answer, 504, "timeout", "Operation timed out")
    assert body["detail"] == SERVER_ERROR_DETAIL and body["traceId"]
    assert rule.fired == 1 and sim.faults.rules == []
    assert client.wait(execution_id)["state"]["current"] == "KILLED"
    (entry,) = sim.requests.filter(path=rf"/{execution_id}/actions/kill$")
    assert (entry.status, entry.faults) == (504, ("action_timeout",))


def test_action_timeout_over_http_can_leave_the_action_undone(
    sim: KestraSimulator, client: SimClient
) -> None:
    execution_id = _running(client)
    rule = {"kind": "action_timeout", "action": "pause", "applied": False, "count": 1}
    assert requests.post(sim.url + "/_simulator/faults", json=rule, timeout=10).status_code == 201
    assert client.request("POST", f"/executions/{execution_id}/actions/pause").status_code == 504
    assert client.get(execution_id)["state"]["current"] == "RUNNING"
    other = _running(client)
    assert client.request("POST", f"/executions/{other}/actions/pause").status_code == 200, "count=1 is spent"
    bad = requests.post(
        sim.url + "/_simulator/faults", json={"kind": "action_timeout", "action": "x"}, timeout=10
    )
    assert bad.status_code == 400


def test_action_timeout_matches_only_its_action(sim: KestraSimulator, client: SimClient) -> None:
    execution_id = _finished(client, return_task())
    sim.faults.action_timeout("restart")
    labels = [{"key": "team", "value": "data"}]
    assert (
        client.request("POST", f"/executions/{execution_id}/actions/labels", json=labels).status_code == 200
    )
    assert sim.faults.rules[0].fired == 0


# -- restart on a revision --------------------------------------------------------------------------------


def test_restart_on_a_revision_starts_a_new_execution_and_answers_the_original(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, FAIL_TASK))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id)
    updated = client.request(
        "PUT", f"/flows/company.team/{flow_id}", data=flow_source(flow_id, return_task("boom")),
        headers={"Content-Type": "application/x-yaml"},
    )  # fmt: skip
    assert updated.json()["revision"] == 2
    answer = client.request("POST", f"/executions/{execution_id}/actions/restart", params={"revision": 2})
    assert answer.status_code == 200 and answer.json()["id"] == execution_id
    found = client.request("GET", "/executions/search", params={"filters[flowId][EQUALS]": flow_id}).json()
    (child,) = [e for e in found["results"] if e["id"] != execution_id]
    assert (child["parentId"], child["flowRevision"], child["originalId"]) == (execution_id, 2, execution_id)
    assert client.wait(child["id"])["state"]["current"] == "SUCCESS"
    assert client.get(execution_id)["state"]["current"] == "FAILED", "the original is left as it was"


def test_restart_on_an_unknown_revision_is_404_unable_to_find_revision(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, FAIL_TASK))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id)
    answer = client.request("POST", f"/executions/{execution_id}/actions/restart", params={"revision": 9})
    body = _problem(answer, 404, "not-found", "Resource not found")
    assert body["detail"] == f"Unable to find revision 9 on flow company.team.{flow_id}"
    assert answer.headers["X-Kestra-Route-Matched"] == "true"


def test_1_3_restart_on_a_revision_answers_the_new_execution() -> None:
    with KestraSimulator(kestra_version="1.3") as sim:
        client = SimClient(sim)
        flow_id = unique()
        client.deploy(flow_source(flow_id, FAIL_TASK))
        execution_id = client.run("company.team", flow_id)["id"]
        client.wait(execution_id)
        restarted = client.request(
            "POST", f"/executions/{execution_id}/restart", params={"revision": 1}
        ).json()
        assert restarted["id"] != execution_id and restarted["parentId"] == execution_id
        assert restarted["state"]["current"] == "RESTARTED"
        assert [tr["executionId"] for tr in restarted["taskRunList"]] == [restarted["id"]]
        missing = client.request("POST", f"/executions/{execution_id}/restart", params={"revision": 7})
        assert missing.status_code == 404
        assert (
            missing.json()["message"]
            == f"Not Found: Unable to find revision 7 on flow company.team.{flow_id}"
        )
        nothing = client.request("POST", f"/executions/{_finished(client, return_task())}/restart")
        assert nothing.json()["message"] == "Illegal argument: No task found to restart execution from!"


# -- problem+json catalogue -------------------------------------------------------------------------------


def test_401_is_the_unauthenticated_problem_with_a_basic_challenge(sim: KestraSimulator) -> None:
    answer = requests.get(sim.url + "/api/v1/main/flows/search", timeout=10)
    body = _problem(answer, 401, "unauthenticated", "Authentication required")
    assert body["detail"] == "Authentication required"
    assert answer.headers["WWW-Authenticate"] == "Basic"


def test_csrf_refusal_is_the_forbidden_problem(sim: KestraSimulator) -> None:
    token = __import__("base64").b64encode(f"{sim.username}:{sim.password}".encode()).decode()
    answer = requests.post(
        sim.url + "/api/v1/main/flows/validate", cookies={"BASIC_AUTH": token}, data="", timeout=10
    )
    body = _problem(answer, 403, "forbidden", "Access denied")
    assert body["detail"] == "CSRF token missing or invalid"


def test_405_is_method_not_allowed_with_allow(client: SimClient) -> None:
    answer = client.request("PUT", "/flows/search")
    body = _problem(answer, 405, "method-not-allowed", "Method not allowed")
    assert answer.headers["Allow"] == "GET, POST", "/flows/{namespace} (GET list, POST deploy) matches too"
    assert body["detail"] == (
        "Method [PUT] not allowed for URI [/api/v1/main/flows/search]. Allowed methods: [GET, POST]"
    )


def test_a_missing_entity_and_a_missing_route_differ_by_header_only(client: SimClient) -> None:
    entity = client.request("GET", "/executions/0000000000000000000000")
    route = client.request("GET", "/executionz/0000000000000000000000")
    for answer in (entity, route):
        assert _problem(answer, 404, "not-found", "Resource not found")["detail"] == "Resource not found"
    assert entity.headers["X-Kestra-Route-Matched"] == "true"
    assert route.headers["X-Kestra-Route-Matched"] == "false"


def test_validation_failure_lists_errors_with_detail_and_path(client: SimClient) -> None:
    answer = client.request(
        "POST", "/flows", data="id: x\nnamespace: n\n", headers={"Content-Type": "application/x-yaml"}
    )
    body = _problem(answer, 422, "validation-failed", "Validation failed")
    assert body["errors"] == [{"detail": "must not be empty", "path": "tasks"}]


def test_titles_are_fixed_per_type(client: SimClient) -> None:
    source = flow_source(unique(), return_task())
    yaml_header = {"Content-Type": "application/x-yaml"}
    client.request("POST", "/flows", data=source, headers=yaml_header)
    first = client.request("POST", "/flows", data=source, headers=yaml_header).json()
    other = flow_source(unique(), return_task())
    client.request("POST", "/flows", data=other, headers=yaml_header)
    second = client.request("POST", "/flows", data=other, headers=yaml_header).json()
    assert first["title"] == second["title"] == "Entity already exists"
    assert first["type"] == PROBLEM + "entity-already-exists"


# -- execution shapes -------------------------------------------------------------------------------------


def test_get_answers_api_task_runs_and_search_light_executions_keeping_outputs(client: SimClient) -> None:
    flow_id = unique()
    outputs = 'outputs:\n  - id: out\n    type: STRING\n    value: "{{ outputs.ret.value }}"\n'
    client.deploy(flow_source(flow_id, return_task(), extra=outputs))
    execution_id = client.run("company.team", flow_id)["id"]
    done = client.wait(execution_id)
    assert done["outputs"] == {"out": "ok"} and "deleted" not in done
    assert set(done["taskRunList"][0]) == {"id", "taskId", "attempts", "state"}
    page = client.request("GET", "/executions/search", params={"filters[flowId][EQUALS]": flow_id}).json()
    light = page["results"][0]
    assert light["outputs"] == {"out": "ok"}
    assert not {"taskRunList", "variables", "metadata", "deleted"} & set(light)
