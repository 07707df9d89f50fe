"""Profile ``0.22`` (no tenant segment) against the 1.3.25 OSS spec with ``/{tenant}`` removed from its paths.

No spec with tenant-less paths exists for 0.22 (kestra-io/docs ``public/kestra.yml`` is older and was not
copied), so every answer is judged by the operation of the OSS 1.3.25 spec whose path equals the served path
once ``/{tenant}`` is inserted after ``/api/v1``: the client sends ``/api/v1/flows`` and the validator reads
``/api/v1/{tenant}/flows``. Schema fields 0.22 never had (e.g. ``kind``) are optional there, so this judges
shape and status, not the 1.3-only additions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kestra_conformance_flows import deploy, flow_source, run_to_end, run_until, start, wait_for_state
from kestra_conformance_scenarios import EXECUTION, FLOW, FLOWS, YAML, KestraSharedConformance

if TYPE_CHECKING:
    from kestra_conformance_harness import KestraConformanceClient


class TestConformance022(KestraSharedConformance):
    @pytest.fixture
    def api(self, api_0_22: KestraConformanceClient) -> KestraConformanceClient:
        return api_0_22

    def test_paths_have_no_tenant_segment(self, api: KestraConformanceClient, namespace: str) -> None:
        assert api.url(FLOW, {"namespace": namespace, "id": "x"}) == f"/api/v1/flows/{namespace}/x"

    def test_configs_need_credentials_401_undocumented_in_spec_and_answer_200_without_edition(
        self, api: KestraConformanceClient
    ) -> None:
        refused = api.conform("GET", "/api/v1/configs", 401, auth=None, error_body="empty")
        assert refused.headers["WWW-Authenticate"].startswith("Basic realm=")
        configs = api.conform("GET", "/api/v1/configs", 200).json()
        assert "edition" not in configs
        assert configs["version"].startswith("0.22")

    def test_bodies_carry_no_tenant_id_like_oss_before_tenants(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        flow = api.conform("POST", FLOWS, 200, content=flow_source("hello", namespace), headers=YAML).json()
        execution = wait_for_state(api, start(api, namespace, "hello")["id"])
        assert "tenantId" not in flow
        assert "tenantId" not in execution
        assert all("tenantId" not in run for run in execution["taskRunList"])

    def test_create_duplicate_flow_returns_422_kestra_error_undocumented_in_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        deploy(api, "hello", namespace)
        response = api.conform("POST", FLOWS, 422, content=flow_source("hello", namespace), headers=YAML)
        assert "flow.id" in response.json()["message"]

    def test_kill_returns_202_without_body_then_killed(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        assert (
            api.conform("DELETE", EXECUTION + "/kill", 202, path={"executionId": execution_id}).content == b""
        )
        assert wait_for_state(api, execution_id)["state"]["current"] == "KILLED"

    def test_pause_returns_200_empty_like_kestra_code_not_204_like_spec(
        self, api: KestraConformanceClient, namespace: str
    ) -> None:
        execution_id = run_until(api, "sleeper", namespace, {"RUNNING"})["id"]
        path = {"executionId": execution_id}
        api.conform("POST", EXECUTION + "/pause", 200, path=path, spec_status=204)
        api.send("DELETE", EXECUTION + "/kill", path=path)

    def test_resume_returns_204(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_until(api, "pauser", namespace, {"PAUSED"})["id"]
        api.conform("POST", EXECUTION + "/resume", 204, path={"executionId": execution_id})
        assert wait_for_state(api, execution_id)["state"]["current"] == "SUCCESS"

    def test_restart_returns_200_execution(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_to_end(api, "failing", namespace)["id"]
        api.conform("POST", EXECUTION + "/restart", 200, path={"executionId": execution_id})

    def test_set_labels_returns_200_execution(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        api.conform(
            "POST",
            EXECUTION + "/labels",
            200,
            path={"executionId": execution_id},
            json=[{"key": "a", "value": "b"}],
        )

    def test_delete_execution_returns_204(self, api: KestraConformanceClient, namespace: str) -> None:
        execution_id = run_to_end(api, "hello", namespace)["id"]
        api.conform("DELETE", EXECUTION, 204, path={"executionId": execution_id})
