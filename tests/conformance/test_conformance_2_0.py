"""Profile ``2.0`` against the EE 2.0.0-SNAPSHOT spec (client-sdk ``kestra-ee.yml``).

Besides the shared endpoints: configs behind auth with ``/configs/login`` open, 409 for duplicate flows,
execution actions under ``/executions/{id}/actions/`` answering ``200 Execution``, ``ApiExecution`` without
``deleted`` and task runs without ``outputs`` (read from ``/outputs``), and RFC 9457 problem+json errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kestra_conformance_flows import deploy, flow_source, run_to_end, run_until, wait_for_state
from kestra_conformance_scenarios import EXECUTION, FLOWS, YAML, KestraSharedConformance

if TYPE_CHECKING:
    from kestra_conformance_harness import KestraConformanceClient

ACTIONS = EXECUTION + "/actions"


class TestConformance20(KestraSharedConformance):
    @pytest.fixture
    def api(self, api_2_0: KestraConformanceClient) -> KestraConformanceClient:
        return api_2_0

    def test_configs_need_credentials_401_undocumented_in_spec_and_answer_200_with_them(
        self, api: KestraConformanceClient
    ) -> None:
        problem = api.conform("GET", "/api/v1/configs", 401, auth=None).json()
        assert problem["type"].endswith("/unauthenticated") and problem["title"] == "Authentication required"
        assert api.conform("GET", "/api/v1/configs", 200).json()["version"].startswith("2.0")

    def test_login_configs_answer_200_without_credentials(self, api: KestraConformanceClient) -> None:
        body = api.conform("GET", "/api/v1/configs/login", 200, auth=None).json()
        assert body["isBasicAuthInitialized"] is True

    def test_create_duplicate_flow_returns_409_problem_json_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        response = api.conform("POST", FLOWS, 409, content=flow_source("hello", namespace), headers=YAML)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 409

    def test_get_execution_is_api_execution_without_deleted_nor_task_run_outputs(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        execution = api.conform("GET", EXECUTION, 200, path={"executionId": execution_id}).json()
        assert "deleted" not in execution
        assert all("outputs" not in run for run in execution["taskRunList"])

    def test_search_executions_returns_light_executions_without_task_runs(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        run_to_end(api, "hello", namespace)
        params = {"filters[namespace][EQUALS]": namespace}
        page = api.conform("GET", "/api/v1/{tenant}/executions/search", 200, params=params).json()
        assert page["total"] == 1
        assert "taskRunList" not in page["results"][0]

    def test_outputs_routes_of_output_controller_return_200_like_kestra_code_not_the_ee_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        """Departure ``outputs-controller-as-shipped``: OutputController.java @159e1bf8."""
        execution = run_to_end(api, "hello", namespace)
        path = {"executionId": execution["id"]}
        flow_outputs = api.conform("GET", "/api/v1/{tenant}/outputs/executions/{executionId}", 200, path=path)
        assert flow_outputs.json() == execution["outputs"]
        listed = api.conform("GET", "/api/v1/{tenant}/outputs/tasks/{executionId}", 200, path=path).json()
        result_run = next(item for item in listed if item["taskId"] == "result")
        assert result_run["inline"] is True
        outputs = api.conform(
            "GET",
            "/api/v1/{tenant}/outputs/tasks/{executionId}/{taskRunId}",
            200,
            path={**path, "taskRunId": result_run["taskRunId"]},
        ).json()
        assert outputs == {"value": "world"}

    def test_outputs_of_unknown_task_run_return_404_not_found_problem_like_kestra_code(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution = run_to_end(api, "hello", namespace)
        problem = api.conform(
            "GET",
            "/api/v1/{tenant}/outputs/tasks/{executionId}/{taskRunId}",
            404,
            path={"executionId": execution["id"], "taskRunId": "0000000000000000000000"},
        ).json()
        assert problem["type"].endswith("/not-found") and problem["detail"] == "Resource not found"

    def test_kill_action_returns_200_execution_then_killed(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        killed = api.conform("DELETE", ACTIONS + "/kill", 200, path={"executionId": execution_id}).json()
        assert killed["id"] == execution_id
        assert wait_for_state(api, execution_id)["state"]["current"] == "KILLED"

    def test_kill_action_on_missing_execution_returns_404_problem_json(
        self, api: KestraConformanceClient
    ) -> None:
        api.conform("DELETE", ACTIONS + "/kill", 404, path={"executionId": "0000000000000000000000"})

    def test_pause_action_returns_200_execution(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        paused = api.conform("POST", ACTIONS + "/pause", 200, path={"executionId": execution_id}).json()
        assert paused["id"] == execution_id
        api.send("DELETE", ACTIONS + "/kill", path={"executionId": execution_id})

    def test_resume_action_returns_200_execution(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_until(api, "pauser", namespace, {"PAUSED"})["id"]
        api.conform("POST", ACTIONS + "/resume", 200, path={"executionId": execution_id})
        assert wait_for_state(api, execution_id)["state"]["current"] == "SUCCESS"

    def test_resume_action_on_finished_execution_returns_500_unmapped_illegal_state_like_kestra_code_not_409(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        response = api.conform(
            "POST", ACTIONS + "/resume", 500, path={"executionId": execution_id}, spec_status=409
        )
        problem = response.json()
        assert problem["type"].endswith("/internal-error") and problem["traceId"]
        assert problem["detail"] == "An unexpected error occurred. Quote the traceId when contacting support."

    def test_restart_action_returns_200_restarted_execution(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "failing", namespace)["id"]
        restarted = api.conform("POST", ACTIONS + "/restart", 200, path={"executionId": execution_id}).json()
        assert restarted["state"]["current"] == "RESTARTED"

    def test_labels_action_returns_200_execution(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        labels = [{"key": "reviewed", "value": "yes"}]
        execution = api.conform(
            "POST", ACTIONS + "/labels", 200, path={"executionId": execution_id}, json=labels
        )
        assert {"key": "reviewed", "value": "yes"} in execution.json()["labels"]

    def test_delete_execution_returns_204(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        api.conform("DELETE", EXECUTION, 204, path={"executionId": execution_id})

    def test_old_1x_kill_path_is_not_served_in_2_0(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        response = api.send("DELETE", EXECUTION + "/kill", path={"executionId": execution_id})
        assert response.status_code in (404, 405), response.text
