"""Auth, tenants, configs and error bodies per profile (Gotchas 1, 2, 5)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
import requests
from kestra_sim_client import YAML, SimClient, flow_source, return_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def sim13() -> Iterator[KestraSimulator]:
    with KestraSimulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def sim20() -> Iterator[KestraSimulator]:
    with KestraSimulator(
        kestra_version="2.0", edition="EE", tokens=["t0ken"], tenants=("main", "acme")
    ) as sim:
        yield sim


def test_unauthenticated_call_gets_401_with_empty_body_and_basic_challenge(sim13: KestraSimulator) -> None:
    response = requests.get(sim13.url + "/api/v1/main/flows/search")
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"] == "Basic"


def test_wrong_password_is_401_and_login_referer_drops_the_challenge(sim13: KestraSimulator) -> None:
    url = sim13.url + "/api/v1/main/flows/search"
    assert requests.get(url, auth=(sim13.username, "nope")).status_code == 401
    response = requests.get(url, headers={"Referer": "http://x/ui/login"})
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers


def test_configs_is_open_in_1x_and_says_it_is_a_simulator(sim13: KestraSimulator) -> None:
    response = requests.get(sim13.url + "/api/v1/configs")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "1.3.25"
    assert body["edition"] == "OSS"
    assert body["simulator"] is True
    assert response.headers["X-Kestra-Simulator"] == "true"


def test_configs_needs_auth_in_2_0_but_configs_login_is_open(sim20: KestraSimulator) -> None:
    assert requests.get(sim20.url + "/api/v1/configs").status_code == 401
    assert requests.get(sim20.url + "/api/v1/configs/login").json() == {"isBasicAuthInitialized": True}
    body = requests.get(sim20.url + "/api/v1/configs", headers={"Authorization": "Bearer t0ken"}).json()
    assert (body["version"], body["edition"]) == ("2.0.0", "EE")


def test_configs_needs_auth_in_0_22_and_has_no_edition() -> None:
    with KestraSimulator(kestra_version="0.22") as sim:
        assert requests.get(sim.url + "/api/v1/configs").status_code == 401
        body = requests.get(sim.url + "/api/v1/configs", auth=(sim.username, sim.password)).json()
        assert body["version"].startswith("0.22.")
        assert "edition" not in body


def test_oss_rejects_a_non_main_tenant_with_400(sim13: KestraSimulator) -> None:
    response = SimClient(sim13, tenant="acme").request("GET", "/flows/search")
    assert response.status_code == 400
    assert response.json()["message"] == "Bad Request: Tenant must be 'main' for OSS version"


def test_json_error_body_shape_in_1x(sim13: KestraSimulator) -> None:
    response = SimClient(sim13).request("GET", "/executions/doesNotExist")
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == "Not Found"
    assert body["_links"]["self"]["href"] == "/api/v1/main/executions/doesNotExist"


def test_bearer_token_and_extra_tenant_in_ee(sim20: KestraSimulator) -> None:
    client = SimClient(sim20, tenant="acme", token="t0ken")
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task(), namespace="acme.data"))
    assert client.request("GET", f"/flows/acme.data/{flow_id}").status_code == 200
    assert (
        SimClient(sim20, tenant="main", token="t0ken")
        .request("GET", f"/flows/acme.data/{flow_id}")
        .status_code
        == 404
    )
    assert SimClient(sim20, tenant="acme", token="wrong").request("GET", "/flows/search").status_code == 401


def test_unknown_ee_tenant_is_404_problem_json(sim20: KestraSimulator) -> None:
    response = SimClient(sim20, tenant="ghost", token="t0ken").request("GET", "/flows/search")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_problem_json_for_duplicate_flow_in_2_0_is_409(sim20: KestraSimulator) -> None:
    client = SimClient(sim20, token="t0ken")
    source = flow_source(unique(), return_task())
    client.deploy(source)
    response = client.request("POST", "/flows", data=source, headers=YAML)
    assert response.status_code == 409
    body = response.json()
    assert body["type"].endswith("/entity-already-exists")
    assert body["detail"] == "Flow id already exists"


def test_0_22_has_no_tenant_segment() -> None:
    with KestraSimulator(kestra_version="0.22") as sim:
        client = SimClient(sim)
        assert client.base == sim.url + "/api/v1"
        flow_id = unique()
        body = client.deploy(flow_source(flow_id, return_task()))
        assert "tenantId" not in body
        execution = client.wait(client.run("company.team", flow_id)["id"])
        assert execution["state"]["current"] == "SUCCESS"
        assert "tenantId" not in execution
        assert (
            requests.get(sim.url + "/api/v1/main/flows/search", auth=(sim.username, sim.password)).status_code
            == 404
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tokens": ["x"]},
        {"tenants": ["main", "acme"]},
        {"kestra_version": "0.9"},
        {"edition": "XE"},
        {"kestra_version": "0.22", "edition": "EE", "tenants": ["main", "b"]},
    ],
)
def test_impossible_configurations_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        KestraSimulator(**kwargs)  # type: ignore[arg-type]


def test_2_0_refuses_cookie_authenticated_writes_without_csrf_token(sim20: KestraSimulator) -> None:
    cookie = base64.b64encode(f"{sim20.username}:{sim20.password}".encode()).decode()
    url = sim20.url + "/api/v1/main/flows/validate"
    refused = requests.post(url, data="", cookies={"BASIC_AUTH": cookie})
    assert refused.status_code == 403
    assert (
        requests.get(sim20.url + "/api/v1/main/flows/search", cookies={"BASIC_AUTH": cookie}).status_code
        == 200
    )
    assert requests.post(url, data="", auth=(sim20.username, sim20.password)).status_code == 200


def test_1_3_oss_aliases_legacy_paths_without_tenant(sim13: KestraSimulator) -> None:
    response = requests.get(sim13.url + "/api/v1/flows/search", auth=(sim13.username, sim13.password))
    assert response.status_code == 200
    assert "results" in response.json()
