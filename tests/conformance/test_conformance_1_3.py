"""Profile ``1.3`` against Kestra OSS 1.3.25's own ``openapi.yml``; its EE mode against the EE 1.3.0 spec.

Shared endpoints come from ``KestraSharedConformance``; ``Kestra13Conformance`` adds what is specific to
1.x (422 for duplicate flows, execution actions directly under ``/executions/{id}/`` with their empty
202/204/200 answers) and runs twice: OSS with basic auth, and EE with a bearer token. The EE 1.3.0 spec
lacks a few operations the OSS code has (log follow, POST/PUT webhooks; see SOURCE.txt): those EE answers
are judged by the OSS 1.3.25 spec instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from kestra_conformance_flows import deploy, flow_source, run_to_end, run_until, wait_for_state
from kestra_conformance_harness import EE_TOKEN
from kestra_conformance_scenarios import EXECUTION, FLOW, FLOWS, YAML, KestraSharedConformance

if TYPE_CHECKING:
    from kestra_conformance_harness import KestraConformanceClient

KILL = EXECUTION + "/kill"


class Kestra13Conformance(KestraSharedConformance):
    """1.x behaviour common to the OSS and EE editions."""

    def test_create_duplicate_flow_returns_422_flow_id_already_exists_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        response = api.conform("POST", FLOWS, 422, content=flow_source("hello", namespace), headers=YAML)
        body = response.json()
        assert body["message"] == "Invalid entity: flow.id: Flow id already exists"
        assert body["_embedded"]["errors"] == [{"message": "Flow id already exists", "path": "flow.id"}]

    def test_kill_running_execution_returns_202_without_body_then_killed(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        assert api.conform("DELETE", KILL, 202, path={"executionId": execution_id}).content == b""
        assert wait_for_state(api, execution_id)["state"]["current"] == "KILLED"

    def test_kill_finished_execution_without_cascade_returns_409_kestra_error(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        response = api.conform(
            "DELETE", KILL, 409, path={"executionId": execution_id}, params={"isOnKillCascade": "false"}
        )
        assert "Execution is already finished, can't kill it" in response.json()["message"]

    def test_kill_missing_execution_returns_404_without_body(self, api: KestraConformanceClient) -> None:
        """``killExecution`` answers ``HttpResponse.notFound()``: a bare 404, no JsonError (1.3.25
        ``ExecutionController.java`` @2a102a6a, line 1434)."""
        api.conform("DELETE", KILL, 404, path={"executionId": "0000000000000000000000"}, error_body="empty")

    def test_pause_running_execution_returns_200_empty_like_kestra_code_where_oss_spec_says_204(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        path = {"executionId": execution_id}
        pause = EXECUTION + "/pause"
        spec_status = None if api.spec.documents_status("POST", pause, 200) else 204  # EE 1.3.0 lists 200
        assert api.conform("POST", pause, 200, path=path, spec_status=spec_status).content == b""
        assert wait_for_state(api, execution_id, {"PAUSED"})["state"]["current"] == "PAUSED"
        api.send("DELETE", KILL, path=path)

    def test_pause_finished_execution_returns_422_like_kestra_code_not_409_like_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        response = api.conform(
            "POST", EXECUTION + "/pause", 422, path={"executionId": execution_id}, spec_status=409
        )
        assert response.json()["message"] == "Illegal argument: The execution is not running"

    def test_resume_paused_execution_returns_204_then_success(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        paused = run_until(api, "pauser", namespace, {"PAUSED"})
        execution_id = paused["id"]
        assert "endDate" in paused["state"]
        api.conform("POST", EXECUTION + "/resume", 204, path={"executionId": execution_id})
        assert wait_for_state(api, execution_id)["state"]["current"] == "SUCCESS"

    def test_resume_execution_not_paused_returns_409_kestra_error(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        response = api.conform("POST", EXECUTION + "/resume", 409, path={"executionId": execution_id})
        assert f"Execution '{execution_id}' is not paused, can't resume it" in response.json()["message"]

    def test_restart_failed_execution_returns_200_restarted_execution(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "failing", namespace)["id"]
        restarted = api.conform(
            "POST", EXECUTION + "/restart", 200, path={"executionId": execution_id}
        ).json()
        assert restarted["id"] == execution_id
        assert restarted["state"]["current"] == "RESTARTED"

    def test_restart_killed_execution_returns_409_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        api.send("DELETE", KILL, path={"executionId": execution_id})
        wait_for_state(api, execution_id, {"KILLED"})
        api.conform("POST", EXECUTION + "/restart", 409, path={"executionId": execution_id})

    def test_set_labels_on_terminated_execution_returns_200_execution(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        labels = [{"key": "reviewed", "value": "yes"}]
        execution = api.conform(
            "POST", EXECUTION + "/labels", 200, path={"executionId": execution_id}, json=labels
        )
        assert {"key": "reviewed", "value": "yes"} in execution.json()["labels"]

    def test_delete_execution_returns_204_then_404_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        assert api.conform("DELETE", EXECUTION, 204, path={"executionId": execution_id}).content == b""
        api.conform("DELETE", EXECUTION, 404, path={"executionId": execution_id})


class TestConformance13(Kestra13Conformance):
    @pytest.fixture
    def api(self, api_1_3: KestraConformanceClient) -> KestraConformanceClient:
        return api_1_3

    def test_configs_answer_200_oss_configuration_without_credentials(
        self, api: KestraConformanceClient
    ) -> None:
        configs = api.conform("GET", "/api/v1/configs", 200, auth=None).json()
        assert configs["edition"] == "OSS"
        assert configs["version"].startswith("1.3")

    def test_request_without_credentials_returns_401_empty_body_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        response = api.conform(
            "GET", FLOW, 401, path={"namespace": namespace, "id": "x"}, auth=None, error_body="empty"
        )
        assert response.headers["WWW-Authenticate"] == "Basic"


class TestConformance13EnterpriseEdition(Kestra13Conformance):
    """The 1.3 EE mode (bearer tokens, tenants besides ``main``), judged by the EE 1.3.0 spec."""

    @pytest.fixture
    def api(self, api_1_3_ee: KestraConformanceClient) -> KestraConformanceClient:
        return api_1_3_ee

    def test_configs_report_ee_edition(self, api_1_3_ee: KestraConformanceClient) -> None:
        assert api_1_3_ee.conform("GET", "/api/v1/configs", 200).json()["edition"] == "EE"

    def test_bearer_token_deploys_and_runs_in_another_tenant(
        self, api_1_3_ee: KestraConformanceClient, namespace: str
    ) -> None:
        api = api_1_3_ee
        tenant = {"tenant": "acme"}
        flow = api.conform(
            "POST", FLOWS, 200, path=tenant, content=flow_source("hello", namespace), headers=YAML
        )
        assert flow.json()["revision"] == 1
        path = {**tenant, "namespace": namespace, "id": "hello"}
        execution = api.conform(
            "POST", "/api/v1/{tenant}/executions/{namespace}/{id}", 200, path=path, params={"wait": "true"}
        ).json()
        assert execution["state"]["current"] == "SUCCESS"
        assert execution["tenantId"] == "acme"
        fetched = api.conform("GET", EXECUTION, 200, path={**tenant, "executionId": execution["id"]}).json()
        assert fetched["id"] == execution["id"]

    def test_unknown_bearer_token_returns_401_empty_body_undocumented_in_spec(
        self, api_1_3_ee: KestraConformanceClient, namespace: str
    ) -> None:
        api_1_3_ee.conform(
            "GET",
            FLOW,
            401,
            path={"namespace": namespace, "id": "x"},
            headers={"Authorization": "Bearer not-" + EE_TOKEN},
            auth=httpx.Auth(),
            error_body="empty",
        )
