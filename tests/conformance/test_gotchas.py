"""One test (at least) per item of the "Gotchas" section of shared/reference/kestra-api.md, on the wire.

Numbers in test names are the Gotcha numbers. Bodies are also validated against the profile's spec (or,
for error statuses the spec does not list, against Kestra's error shape) through ``api.conform``.

Not testable here, because the simulator does not serve them: Gotcha 15 and the bulk part of Gotcha 4
(``by-ids``/``by-query`` endpoints, their 400 ``{message, invalids}``), the KV and namespace-file parts of
Gotchas 3 and 7.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

import httpx
from kestra_conformance_flows import (
    TERMINAL_STATES,
    deploy,
    deploy_and_start,
    deploy_for_path,
    flow_source,
    follow_hello_logs,
    run_to_end,
    run_until,
    start,
    wait_for_state,
)
from kestra_conformance_harness import parse_sse_frames
from kestra_conformance_scenarios import EXECUTION, EXECUTIONS_OF_FLOW, FLOW, FLOWS, YAML

if TYPE_CHECKING:
    from kestra_conformance_harness import KestraConformanceClient

    from airflow_provider_kestra.testing import KestraSimulator

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
ISO_DURATION = re.compile(r"^PT(\d+H)?(\d+M)?(\d+(\.\d{1,9})?S)?$")


# 1 ------------------------------------------------------------------------------------------------


def test_gotcha_1_non_main_tenant_on_oss_returns_400_tenant_must_be_main(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    response = api_1_3.conform("GET", FLOW, 400, path={"tenant": "acme", "namespace": namespace, "id": "x"})
    assert response.json()["message"] == "Bad Request: Tenant must be 'main' for OSS version"


# 2 ------------------------------------------------------------------------------------------------


def test_gotcha_2_missing_or_wrong_credentials_return_401_empty_body_with_www_authenticate_basic(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    path = {"namespace": namespace, "id": "x"}
    for auth in (None, httpx.BasicAuth("admin@kestra.io", "Wrong-Pass1")):
        response = api_1_3.conform("GET", FLOW, 401, path=path, auth=auth, error_body="empty")
        assert response.headers["WWW-Authenticate"] == "Basic"


def test_gotcha_2_configs_and_webhooks_are_open_in_1x(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    api_1_3.conform("GET", "/api/v1/configs", 200, auth=None)
    deploy(api_1_3, "hooked", namespace)
    path = {"namespace": namespace, "id": "hooked", "key": "conformance-key"}
    api_1_3.conform(
        "POST", "/api/v1/{tenant}/executions/webhook/{namespace}/{id}/{key}", 200, path=path, auth=None
    )


def test_gotcha_2_cookie_authenticated_write_without_csrf_token_is_403_in_2_0(
    api_2_0: KestraConformanceClient, simulator_2_0: KestraSimulator, namespace: str
) -> None:
    credentials = base64.b64encode(f"{simulator_2_0.username}:{simulator_2_0.password}".encode()).decode()
    source = flow_source("hello", namespace)
    cookie = {"Cookie": f"BASIC_AUTH={credentials}", **YAML}
    refused = api_2_0.send("POST", FLOWS, auth=None, headers=cookie, content=source)
    assert refused.status_code == 403
    api_2_0.conform("POST", FLOWS, 200, auth=None, headers={**cookie, "X-CSRF-TOKEN": "t"}, content=source)
    header_auth = api_2_0.send("POST", FLOWS, content=flow_source("writer", namespace), headers=YAML)
    assert header_auth.status_code == 200


# 3 ------------------------------------------------------------------------------------------------


def test_gotcha_3_flow_yaml_content_type_and_multipart_inputs_with_file_part(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    source = (
        f"id: files\nnamespace: {namespace}\ninputs:\n  - id: doc\n    type: FILE\n  - id: n\n    type: INT\n"
        "tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: '{{ inputs.n }}'\n"
    )
    api_1_3.conform("POST", FLOWS, 200, content=source, headers=YAML)
    path = {"namespace": namespace, "id": "files"}
    files = {"doc": ("report.csv", b"a,b\n1,2\n", "text/csv"), "n": (None, "7")}
    execution = api_1_3.conform("POST", EXECUTIONS_OF_FLOW, 200, path=path, files=files).json()
    assert execution["inputs"]["n"] == 7
    assert execution["inputs"]["doc"] == (
        f"kestra:///{namespace.replace('.', '/')}/files/executions/{execution['id']}/inputs/doc/report.csv"
    )


# 4 ------------------------------------------------------------------------------------------------


def test_gotcha_4_create_200_delete_204_kill_202_empty_resume_204(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    api = api_1_3
    api.conform("POST", FLOWS, 200, content=flow_source("pauser", namespace), headers=YAML)
    execution = api.conform(
        "POST", EXECUTIONS_OF_FLOW, 200, path={"namespace": namespace, "id": "pauser"}
    ).json()
    path = {"executionId": execution["id"]}
    wait_for_state(api, execution["id"], {"PAUSED"})
    assert api.conform("POST", EXECUTION + "/resume", 204, path=path).content == b""
    wait_for_state(api, execution["id"])
    assert api.conform("DELETE", EXECUTION + "/kill", 202, path=path).content == b""
    assert api.conform("DELETE", EXECUTION, 204, path=path).content == b""
    api.conform("DELETE", FLOW, 204, path={"namespace": namespace, "id": "pauser"})


def test_gotcha_4_set_labels_on_running_execution_returns_400_plain_string_like_kestra_code(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    execution_id = deploy_and_start(api_1_3, "sleeper", namespace)["id"]
    response = api_1_3.conform(
        "POST",
        EXECUTION + "/labels",
        400,
        path={"executionId": execution_id},
        json=[{"key": "a", "value": "b"}],
        error_body="text",
    )
    assert response.text == "The execution is not terminated"
    api_1_3.send("DELETE", EXECUTION + "/kill", path={"executionId": execution_id})


def test_gotcha_4_illegal_state_is_409(api_1_3: KestraConformanceClient, namespace: str) -> None:
    execution_id = run_to_end(api_1_3, "hello", namespace)["id"]
    response = api_1_3.conform("POST", EXECUTION + "/resume", 409, path={"executionId": execution_id})
    assert response.json()["message"].startswith("Illegal state: ")


# 5 ------------------------------------------------------------------------------------------------


def test_gotcha_5_duplicate_flow_and_id_change_are_422_json_errors(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    deploy(api_1_3, "hello", namespace)
    duplicate = api_1_3.conform(
        "POST", FLOWS, 422, content=flow_source("hello", namespace), headers=YAML
    ).json()
    assert duplicate["message"] == "Invalid entity: flow.id: Flow id already exists"
    assert duplicate["_embedded"]["errors"] == [{"message": "Flow id already exists", "path": "flow.id"}]
    renamed = flow_source("hello", namespace, flow_id="other")
    update = api_1_3.conform(
        "PUT", FLOW, 422, path={"namespace": namespace, "id": "hello"}, content=renamed, headers=YAML
    ).json()
    assert update["message"].startswith("Invalid entity: ")
    assert "flow.id: Illegal flow id update" in update["message"]


def test_gotcha_5_2_0_errors_are_problem_json(api_2_0: KestraConformanceClient, namespace: str) -> None:
    response = api_2_0.conform("GET", FLOW, 404, path={"namespace": namespace, "id": "missing"})
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert {"type", "title", "status"} <= set(body)


# 6 ------------------------------------------------------------------------------------------------


def test_gotcha_6_pagination_is_results_total_1_based_default_size_10(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    deploy(api_1_3, "hello", namespace)
    for _ in range(12):
        start(api_1_3, namespace, "hello")
    search = "/api/v1/{tenant}/executions/search"
    filters = {"filters[namespace][EQUALS]": namespace}
    first = api_1_3.conform("GET", search, 200, params=filters).json()
    assert (len(first["results"]), first["total"]) == (10, 12)
    second = api_1_3.conform("GET", search, 200, params={**filters, "page": "2"}).json()
    assert len(second["results"]) == 2
    api_1_3.conform("GET", search, 422, params={**filters, "page": "0"})
    ordered = api_1_3.conform("GET", search, 200, params={**filters, "sort": "state.startDate:asc"}).json()
    starts = [result["state"]["startDate"] for result in ordered["results"]]
    assert starts == sorted(starts)


# 7 ------------------------------------------------------------------------------------------------


def test_gotcha_7_instants_are_utc_iso_with_up_to_9_fraction_digits_and_durations_iso(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    execution = run_to_end(api_1_3, "hello", namespace)
    state = api_1_3.conform("GET", EXECUTION, 200, path={"executionId": execution["id"]}).json()["state"]
    dates = [state["startDate"], state["endDate"], *(history["date"] for history in state["histories"])]
    assert all(INSTANT.match(date) for date in dates), dates
    assert ISO_DURATION.match(state["duration"]), state["duration"]


# 8 ------------------------------------------------------------------------------------------------


def test_gotcha_8_end_date_and_duration_absent_while_running_end_date_present_when_paused(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    running = run_until(api_1_3, "sleeper", namespace, {"RUNNING"})
    running_id = running["id"]
    assert not {"endDate", "duration"} & set(running["state"])
    api_1_3.send("DELETE", EXECUTION + "/kill", path={"executionId": running_id})
    assert wait_for_state(api_1_3, running_id)["state"]["current"] in TERMINAL_STATES
    paused = run_until(api_1_3, "pauser", namespace, {"PAUSED"})
    assert "endDate" in paused["state"]


# 9 ------------------------------------------------------------------------------------------------


def test_gotcha_9_execution_follow_start_progress_end_without_event_names(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    execution_id = deploy_and_start(api_1_3, "hello", namespace)["id"]
    frames = api_1_3.conform_stream(
        EXECUTION + "/follow", path={"executionId": execution_id}, stub_start=True
    )
    assert frames[0].id == "start"
    assert {frame.id for frame in frames[1:-1]} <= {"progress"}
    assert frames[-1].id == "end"
    assert all(frame.event is None for frame in frames)


def test_gotcha_9_follow_of_unknown_execution_sends_start_then_drops_not_404(
    api_1_3: KestraConformanceClient,
) -> None:
    url = api_1_3.url(EXECUTION + "/follow", {"executionId": "unknownExecutionId"})
    with api_1_3.http.stream("GET", url, timeout=httpx.Timeout(30.0)) as response:
        assert response.status_code == 200
        body = b""
        try:
            for chunk in response.iter_bytes():
                body += chunk
        except httpx.HTTPError:
            pass
    frames = parse_sse_frames(body.decode())
    assert [frame.id for frame in frames] == ["start"]


# 10 -----------------------------------------------------------------------------------------------


def test_gotcha_10_log_follow_starts_with_empty_entry_and_stays_open(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    frames = follow_hello_logs(api_1_3, namespace)
    assert frames[0].id == "start"
    assert frames[0].data in ('{"attemptNumber":null}', '{"attemptNumber": null}')
    assert all(frame.id != "end" for frame in frames)


# 11 -----------------------------------------------------------------------------------------------


def test_gotcha_11_wait_true_answers_with_the_final_execution(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    path = deploy_for_path(api_1_3, "hello", namespace)
    execution = api_1_3.conform("POST", EXECUTIONS_OF_FLOW, 200, path=path, params={"wait": "true"}).json()
    assert execution["state"]["current"] == "SUCCESS"
    assert [run["state"]["current"] for run in execution["taskRunList"]] == ["SUCCESS", "SUCCESS"]


# 12 -----------------------------------------------------------------------------------------------


def test_gotcha_12_kill_of_finished_execution_is_202_with_default_cascade(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    execution_id = run_to_end(api_1_3, "hello", namespace)["id"]
    api_1_3.conform("DELETE", EXECUTION + "/kill", 202, path={"executionId": execution_id})
    assert wait_for_state(api_1_3, execution_id)["state"]["current"] == "SUCCESS"


# 13 -----------------------------------------------------------------------------------------------


def test_gotcha_13_set_labels_replaces_non_system_labels(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    deploy(api_1_3, "hello", namespace)
    first = start(api_1_3, namespace, "hello", params={"labels": ["keep:no", "other:x"]})
    wait_for_state(api_1_3, first["id"])
    labels = [{"key": "fresh", "value": "yes"}]
    execution = api_1_3.conform(
        "POST", EXECUTION + "/labels", 200, path={"executionId": first["id"]}, json=labels
    ).json()
    keys = {label["key"] for label in execution["labels"]}
    assert "fresh" in keys
    assert not {"keep", "other"} & keys
    assert "system.correlationId" in keys


def test_gotcha_13_system_labels_are_refused_with_422(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    execution_id = run_to_end(api_1_3, "hello", namespace)["id"]
    labels = [{"key": "system.mine", "value": "x"}]
    api_1_3.conform("POST", EXECUTION + "/labels", 422, path={"executionId": execution_id}, json=labels)
    path = {"namespace": namespace, "id": "hello"}
    created = api_1_3.conform(
        "POST", EXECUTIONS_OF_FLOW, 422, path=path, params={"labels": "system.mine:x"}
    ).json()
    assert "System labels can only be set by Kestra itself" in created["message"]


def test_gotcha_13_malformed_create_label_is_422(api_1_3: KestraConformanceClient, namespace: str) -> None:
    path = deploy_for_path(api_1_3, "hello", namespace)
    api_1_3.conform("POST", EXECUTIONS_OF_FLOW, 422, path=path, params={"labels": "no-colon"})


# 14 -----------------------------------------------------------------------------------------------


def test_gotcha_14_namespace_update_deletes_flows_missing_from_payload_by_default(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    deploy(api_1_3, "writer", namespace)
    flows = api_1_3.conform(
        "POST",
        "/api/v1/{tenant}/flows/{namespace}",
        200,
        path={"namespace": namespace},
        content=flow_source("hello", namespace),
        headers=YAML,
    ).json()
    assert flows[0]["id"] == "writer"
    listed = api_1_3.conform("GET", "/api/v1/{tenant}/flows/{namespace}", 200, path={"namespace": namespace})
    assert [flow["id"] for flow in listed.json()] == ["hello"]


# 16 -----------------------------------------------------------------------------------------------


def test_gotcha_16_task_run_outputs_always_present_inputs_outputs_omitted_when_empty_tenant_id_shown(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    execution = run_to_end(api_1_3, "writer", namespace)
    body = api_1_3.conform("GET", EXECUTION, 200, path={"executionId": execution["id"]}).json()
    assert all("outputs" in run for run in body["taskRunList"])
    assert "inputs" not in body
    assert "outputs" not in body
    assert body["tenantId"] == "main"
    hello = run_to_end(api_1_3, "hello", namespace)
    greet = next(run for run in hello["taskRunList"] if run["taskId"] == "greet")
    assert greet["outputs"] is None


# 17 -----------------------------------------------------------------------------------------------


def test_gotcha_17_file_of_another_execution_redirects_and_foreign_path_is_422(
    api_1_3: KestraConformanceClient, namespace: str
) -> None:
    first = run_to_end(api_1_3, "writer", namespace)
    second = wait_for_state(api_1_3, start(api_1_3, namespace, "writer")["id"])
    uri = next(run for run in first["taskRunList"] if run["taskId"] == "write")["outputs"]["uri"]
    response = api_1_3.send(
        "GET", EXECUTION + "/file", path={"executionId": second["id"]}, params={"path": uri}
    )
    assert response.status_code in (301, 302, 303, 307), response.status_code
    assert f"/executions/{first['id']}/file" in response.headers["location"]
    followed = api_1_3.send(
        "GET",
        EXECUTION + "/file",
        path={"executionId": second["id"]},
        params={"path": uri},
        follow_redirects=True,
    )
    assert followed.content == b"conformance file content"
    foreign = api_1_3.conform(
        "GET",
        EXECUTION + "/file",
        422,
        path={"executionId": second["id"]},
        params={"path": "kestra:///x/y.txt"},
    )
    assert foreign.json()["message"] == "Illegal argument: Invalid prefix path"


# 18 ------------------------------------------------------------------------------------------------


def test_gotcha_18_2_0_moves_actions_under_actions_and_drops_task_run_outputs(
    api_1_3: KestraConformanceClient, api_2_0: KestraConformanceClient, namespace: str
) -> None:
    execution_2_0 = run_to_end(api_2_0, "hello", namespace)
    path = {"executionId": execution_2_0["id"]}
    assert api_2_0.send("POST", EXECUTION + "/labels", path=path, json=[]).status_code in (404, 405)
    api_2_0.conform("POST", EXECUTION + "/actions/labels", 200, path=path, json=[{"key": "a", "value": "b"}])
    assert all("outputs" not in run for run in execution_2_0["taskRunList"])
    execution_1_3 = run_to_end(api_1_3, "hello", namespace)
    assert all("outputs" in run for run in execution_1_3["taskRunList"])
