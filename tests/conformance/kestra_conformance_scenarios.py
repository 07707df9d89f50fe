"""Conformance checks every profile shares: flows, executions (create/get/search/follow/file), logs, webhooks.

Each ``test_conformance_<version>.py`` subclasses ``KestraSharedConformance`` and provides the ``api`` fixture
(a ``KestraConformanceClient`` on that profile's simulator and spec); what differs between versions (execution
actions, duplicate-flow status, configs) is tested in the per-version files. In every test, ``api.conform``
checks the status and validates the answer against the spec operation named by method + path template.

Test names ending in ``undocumented_in_spec`` hit error statuses the spec does not list for that operation
(Kestra's specs document almost no error answers): their bodies are checked against Kestra's real error shape
(``ErrorController`` JsonError in 1.x/0.22, problem+json in 2.0) instead. Names containing
``like_kestra_code`` follow Kestra's code where it knowingly departs from its spec. The harness enforces both
conventions: an undocumented status or a ``spec_status`` departure fails a test whose name does not say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from kestra_conformance_flows import (
    deploy,
    deploy_and_start,
    deploy_for_path,
    flow_source,
    follow_hello_logs,
    run_to_end,
    wait_for_state,
)

if TYPE_CHECKING:
    from kestra_conformance_harness import KestraConformanceClient

YAML = {"Content-Type": "application/x-yaml"}
FLOWS = "/api/v1/{tenant}/flows"
FLOW = "/api/v1/{tenant}/flows/{namespace}/{id}"
EXECUTIONS_OF_FLOW = "/api/v1/{tenant}/executions/{namespace}/{id}"
EXECUTION = "/api/v1/{tenant}/executions/{executionId}"


class KestraSharedConformance:
    """Endpoints whose paths, statuses and schemas are the same in every supported Kestra line."""

    @pytest.fixture
    def api(self) -> KestraConformanceClient:
        raise NotImplementedError("each test_conformance_<version>.py overrides the api fixture")

    # ---------------------------------------------------------------------------------------------- flows

    def test_create_flow_returns_200_flow_with_source_revision_1(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        source = flow_source("hello", namespace)
        flow = api.conform("POST", FLOWS, 200, content=source, headers=YAML).json()
        assert (flow["namespace"], flow["id"], flow["revision"]) == (namespace, "hello", 1)
        assert flow["source"].strip() == source.strip()

    def test_flow_labels_serialise_as_a_list_like_kestra_code_not_a_map_like_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        flow = api.conform("POST", FLOWS, 200, content=flow_source("hello", namespace), headers=YAML).json()
        assert flow["labels"] == [{"key": "team", "value": "data"}]

    def test_create_flow_with_unknown_task_type_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        source = f"id: bad\nnamespace: {namespace}\ntasks:\n  - id: t\n    type: io.kestra.invalid\n"
        api.conform("POST", FLOWS, 422, content=source, headers=YAML)

    def test_create_flow_without_tasks_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        api.conform("POST", FLOWS, 422, content=f"id: empty\nnamespace: {namespace}\n", headers=YAML)

    def test_get_flow_with_source_returns_200(self, api: KestraConformanceClient, namespace: str) -> None:
        path = deploy_for_path(api, "hello", namespace)
        flow = api.conform("GET", FLOW, 200, path=path, params={"source": "true"}).json()
        assert "source" in flow
        without = api.conform("GET", FLOW, 200, path=path).json()
        assert "source" not in without

    def test_get_missing_flow_returns_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        api.conform("GET", FLOW, 404, path={"namespace": namespace, "id": "nope"})

    def test_update_flow_returns_200_with_next_revision_and_same_revision_for_identical_source(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "hello", namespace)
        changed = flow_source("hello", namespace).replace("defaults: world", "defaults: moon")
        assert api.conform("PUT", FLOW, 200, path=path, content=changed, headers=YAML).json()["revision"] == 2
        assert api.conform("PUT", FLOW, 200, path=path, content=changed, headers=YAML).json()["revision"] == 2

    def test_update_flow_with_another_id_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        other = flow_source("hello", namespace, flow_id="renamed")
        response = api.conform(
            "PUT", FLOW, 422, path={"namespace": namespace, "id": "hello"}, content=other, headers=YAML
        )
        assert "flow.id" in response.text

    def test_update_missing_flow_returns_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        source = flow_source("hello", namespace)
        api.conform(
            "PUT", FLOW, 404, path={"namespace": namespace, "id": "hello"}, content=source, headers=YAML
        )

    def test_delete_flow_returns_204_then_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "hello", namespace)
        assert api.conform("DELETE", FLOW, 204, path=path).content == b""
        api.conform("DELETE", FLOW, 404, path=path)

    def test_list_flows_of_namespace_returns_200_flow_array(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        deploy(api, "writer", namespace)
        flows = api.conform(
            "GET", "/api/v1/{tenant}/flows/{namespace}", 200, path={"namespace": namespace}
        ).json()
        assert sorted(flow["id"] for flow in flows) == ["hello", "writer"]

    def test_search_flows_returns_200_paged_results(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        params = {"filters[namespace][EQUALS]": namespace, "page": "1", "size": "10"}
        page = api.conform("GET", "/api/v1/{tenant}/flows/search", 200, params=params).json()
        assert page["total"] == 1
        assert page["results"][0]["id"] == "hello"

    def test_validate_flows_returns_200_with_one_entry_per_document(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        invalid = f"id: bad\nnamespace: {namespace}\ntasks:\n  - id: t\n    type: io.kestra.invalid\n"
        body = flow_source("hello", namespace) + "\n---\n" + invalid
        results = api.conform(
            "POST", "/api/v1/{tenant}/flows/validate", 200, content=body, headers=YAML
        ).json()
        assert [result.get("constraints") is None for result in results] == [True, False]

    def test_bulk_update_namespace_returns_200_flow_array(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "writer", namespace)
        body = flow_source("hello", namespace) + "\n---\n" + flow_source("failing", namespace)
        flows = api.conform(
            "POST",
            "/api/v1/{tenant}/flows/{namespace}",
            200,
            path={"namespace": namespace},
            content=body,
            headers=YAML,
        ).json()
        assert {flow["id"] for flow in flows} >= {"hello", "failing"}

    def test_bulk_update_namespace_with_foreign_flow_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        body = flow_source("hello", namespace + ".other")
        api.conform(
            "POST",
            "/api/v1/{tenant}/flows/{namespace}",
            422,
            path={"namespace": namespace},
            content=body,
            headers=YAML,
        )

    def test_flow_revisions_returns_200_flow_with_source_array(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "hello", namespace)
        changed = flow_source("hello", namespace).replace("defaults: world", "defaults: moon")
        api.send("PUT", FLOW, path=path, content=changed, headers=YAML)
        revisions = api.conform("GET", FLOW + "/revisions", 200, path=path).json()
        assert [revision["revision"] for revision in revisions] == [1, 2]

    def test_delete_revisions_returns_204_like_kestra_code_not_200_like_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "hello", namespace)
        changed = flow_source("hello", namespace).replace("defaults: world", "defaults: moon")
        api.send("PUT", FLOW, path=path, content=changed, headers=YAML)
        api.conform("DELETE", FLOW + "/revisions", 204, path=path, params={"revisions": "1"}, spec_status=200)
        remaining = api.conform("GET", FLOW + "/revisions", 200, path=path).json()
        assert [revision["revision"] for revision in remaining] == [2]

    def test_delete_revisions_without_revisions_returns_400_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        api.conform("DELETE", FLOW + "/revisions", 400, path={"namespace": namespace, "id": "hello"})

    def test_bulk_deploy_in_namespace_returns_200_flow_array(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        body = flow_source("hello", namespace) + "\n---\n" + flow_source("writer", namespace)
        flows = api.conform(
            "POST",
            "/api/v1/{tenant}/flows/bulk",
            200,
            params={"namespace": namespace, "delete": "false"},
            content=body,
            headers=YAML,
        ).json()
        assert sorted(flow["id"] for flow in flows) == ["hello", "writer"]

    # ----------------------------------------------------------------------------------------- executions

    def test_create_execution_returns_200_created_execution_with_url(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "hello", namespace)
        execution = api.conform(
            "POST", EXECUTIONS_OF_FLOW, 200, path=path, params={"labels": "origin:conformance"}
        ).json()
        assert execution["state"]["current"] == "CREATED"
        assert execution["url"].endswith(f"/executions/{namespace}/hello/{execution['id']}")
        assert {"key": "origin", "value": "conformance"} in execution["labels"]

    def test_create_execution_with_wait_returns_200_terminal_execution(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "hello", namespace)
        execution = api.conform("POST", EXECUTIONS_OF_FLOW, 200, path=path, params={"wait": "true"}).json()
        assert execution["state"]["current"] == "SUCCESS"
        assert execution["outputs"] == {"echoed": "world"}

    def test_create_execution_of_missing_flow_returns_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        api.conform("POST", EXECUTIONS_OF_FLOW, 404, path={"namespace": namespace, "id": "nope"})

    def test_create_execution_without_required_input_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "needs_input", namespace)
        api.conform("POST", EXECUTIONS_OF_FLOW, 422, path={"namespace": namespace, "id": "needs_input"})

    def test_create_execution_with_multipart_inputs_returns_200(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        path = deploy_for_path(api, "needs_input", namespace)
        execution = api.conform(
            "POST", EXECUTIONS_OF_FLOW, 200, path=path, files={"count": (None, "3")}
        ).json()
        assert execution["inputs"] == {"count": 3}

    def test_get_terminal_execution_returns_200_with_task_runs(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        execution = api.conform("GET", EXECUTION, 200, path={"executionId": execution_id}).json()
        assert execution["state"]["current"] == "SUCCESS"
        assert [run["taskId"] for run in execution["taskRunList"]] == ["greet", "result"]
        assert {"startDate", "endDate", "duration"} <= set(execution["state"])

    def test_get_failed_execution_returns_200(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_to_end(api, "failing", namespace)["id"]
        execution = api.conform("GET", EXECUTION, 200, path={"executionId": execution_id}).json()
        assert execution["state"]["current"] == "FAILED"

    def test_execution_state_has_no_getter_named_fields_required_by_spec_like_kestra_code(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "hello", namespace)
        state = api.conform("GET", EXECUTION, 200, path={"executionId": execution["id"]}).json()["state"]
        assert not {"getDuration", "getStartDate", "getEndDate"} & set(state)

    def test_get_missing_execution_returns_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient
    ) -> None:
        api.conform("GET", EXECUTION, 404, path={"executionId": "0000000000000000000000"})

    def test_search_executions_returns_200_paged_results(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        run_to_end(api, "hello", namespace)
        params = {"filters[namespace][EQUALS]": namespace, "filters[state][IN]": "SUCCESS,FAILED"}
        page = api.conform("GET", "/api/v1/{tenant}/executions/search", 200, params=params).json()
        assert page["total"] == 1
        assert page["results"][0]["flowId"] == "hello"

    def test_list_executions_of_flow_returns_200_paged_results(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        run_to_end(api, "hello", namespace)
        params = {"namespace": namespace, "flowId": "hello"}
        page = api.conform("GET", "/api/v1/{tenant}/executions", 200, params=params).json()
        assert page["total"] == 1

    def test_follow_execution_streams_start_stub_progress_and_end_like_kestra_code(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = deploy_and_start(api, "hello", namespace)["id"]
        frames = api.conform_stream(
            EXECUTION + "/follow",
            path={"executionId": execution_id},
            stop=lambda frame: False,
            stub_start=True,
        )
        assert frames[0].id == "start"
        assert frames[-1].id == "end"
        assert all(frame.event is None for frame in frames)

    def test_download_task_output_file_returns_200_octet_stream(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "writer", namespace)
        uri = _task_output(api, execution, "write")["uri"]
        response = api.conform(
            "GET", EXECUTION + "/file", 200, path={"executionId": execution["id"]}, params={"path": uri}
        )
        assert response.content == b"conformance file content"

    def test_file_metas_return_200_size(self, api: KestraConformanceClient, namespace: str) -> None:
        execution = run_to_end(api, "writer", namespace)
        uri = _task_output(api, execution, "write")["uri"]
        metas = api.conform(
            "GET", EXECUTION + "/file/metas", 200, path={"executionId": execution["id"]}, params={"path": uri}
        ).json()
        assert metas["size"] == len(b"conformance file content")

    def test_download_file_outside_execution_prefix_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "hello", namespace)
        response = api.conform(
            "GET",
            EXECUTION + "/file",
            422,
            path={"executionId": execution["id"]},
            params={"path": "kestra:///elsewhere/file.txt"},
        )
        assert "Invalid prefix path" in response.text

    # ------------------------------------------------------------------------------------------------ logs

    def test_execution_logs_return_200_log_entry_array(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "hello", namespace)
        logs = api.conform(
            "GET", "/api/v1/{tenant}/logs/{executionId}", 200, path={"executionId": execution["id"]}
        ).json()
        assert any("Hello world" in entry["message"] for entry in logs)

    def test_download_logs_returns_200_text_lines_without_trailing_newline(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "hello", namespace)
        response = api.conform(
            "GET", "/api/v1/{tenant}/logs/{executionId}/download", 200, path={"executionId": execution["id"]}
        )
        assert "INFO Hello world" in response.text
        assert not response.text.endswith("\n")

    def test_search_logs_returns_200_page(self, api: KestraConformanceClient, namespace: str) -> None:
        execution = run_to_end(api, "hello", namespace)
        params = {"filters[executionId][EQUALS]": execution["id"]}
        page = api.conform("GET", "/api/v1/{tenant}/logs/search", 200, params=params).json()
        assert any("Hello world" in entry["message"] for entry in page["results"])

    def test_delete_execution_logs_returns_200_empty_then_no_logs(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "hello", namespace)
        path = {"executionId": execution["id"]}
        assert api.conform("DELETE", "/api/v1/{tenant}/logs/{executionId}", 200, path=path).content == b""
        assert api.conform("GET", "/api/v1/{tenant}/logs/{executionId}", 200, path=path).json() == []

    def test_follow_logs_streams_history_and_never_ends_by_itself_like_kestra_code(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        frames = follow_hello_logs(api, namespace)
        assert "Hello world" in frames[-1].data
        assert all(frame.id != "end" for frame in frames)

    # -------------------------------------------------------------------------------------------- webhooks

    @pytest.mark.parametrize("method", ["POST", "GET", "PUT"])
    def test_webhook_returns_200_execution_without_credentials(
        self, api: KestraConformanceClient, namespace: str, method: str
    ) -> None:
        deploy(api, "hooked", namespace)
        path = {"namespace": namespace, "id": "hooked", "key": "conformance-key"}
        template = "/api/v1/{tenant}/executions/webhook/{namespace}/{id}/{key}"
        response = api.send(
            method, template, path=path, auth=None, json={"hello": "hook"} if method != "GET" else None
        )
        assert response.status_code == 200, response.text
        api.check(method, template, response, path=path)
        execution_id = response.json()["id"]
        assert wait_for_state(api, execution_id)["state"]["current"] == "SUCCESS"

    @pytest.mark.parametrize("method", ["POST", "GET", "PUT"])
    def test_webhook_with_trailing_path_is_404_like_core_webhook_code_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str, method: str
    ) -> None:
        # The route exists ({/path}) for other webhook triggers; core Webhook#evaluate rejects any path.
        deploy(api, "hooked", namespace)
        path = {"namespace": namespace, "id": "hooked", "key": "conformance-key", "path": "extra"}
        template = "/api/v1/{tenant}/executions/webhook/{namespace}/{id}/{key}/{path}"
        api.conform(method, template, 404, path=path, auth=None)

    def test_webhook_with_wrong_key_returns_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hooked", namespace)
        api.conform(
            "POST",
            "/api/v1/{tenant}/executions/webhook/{namespace}/{id}/{key}",
            404,
            path={"namespace": namespace, "id": "hooked", "key": "wrong"},
        )


def _task_output(api: KestraConformanceClient, execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    """Outputs of a task run: inline in 1.x task runs, from ``/outputs/tasks/{id}/{taskRunId}`` in 2.0."""
    run = next(run for run in execution["taskRunList"] if run["taskId"] == task_id)
    if "outputs" in run:
        return run["outputs"]
    response = api.send(
        "GET",
        "/api/v1/{tenant}/outputs/tasks/{executionId}/{taskRunId}",
        path={"executionId": execution["id"], "taskRunId": run["id"]},
    )
    assert response.status_code == 200, response.text
    return response.json()
