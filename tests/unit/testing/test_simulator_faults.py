"""Fault injection per instance and over HTTP: 5xx, 429, latency, drops, cut streams, deterministic rates."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import requests
from kestra_sim_client import SimClient, flow_source, parse_sse, return_task, sleep_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def sim() -> Iterator[KestraSimulator]:
    with KestraSimulator(seed=7) as simulator:
        yield simulator


def test_next_n_requests_fail_with_503_then_recover(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    rule = sim.faults.fail(503, count=2, path=r"/flows/search$")
    statuses = [client.request("GET", "/flows/search").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert rule.fired == 2


def test_429_carries_retry_after_and_respects_method(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    sim.faults.throttle(retry_after=3, method="POST", count=1)
    assert client.request("GET", "/flows/search").status_code == 200
    response = client.request("POST", "/flows/validate", data="")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_rates_are_deterministic_with_a_seed() -> None:
    def pattern() -> list[int]:
        with KestraSimulator(seed=42) as sim:
            sim.faults.fail(500, rate=0.5)
            client = SimClient(sim)
            return [client.request("GET", "/flows/search").status_code for _ in range(12)]

    first = pattern()
    assert first == pattern()
    assert {500, 200} == set(first)


def test_latency_rule_fires(sim: KestraSimulator) -> None:
    rule = sim.faults.latency(0.05, count=1)
    assert SimClient(sim).request("GET", "/flows/search").status_code == 200
    assert rule.fired == 1 and sim.faults.rules == []


def test_dropped_connection_has_no_answer(sim: KestraSimulator) -> None:
    sim.faults.drop(count=1)
    with pytest.raises(requests.ConnectionError):
        SimClient(sim).request("GET", "/flows/search")


def test_drop_after_response_still_creates_the_execution(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    sim.faults.drop(after_response=True, method="POST", path=r"/executions/", count=1)
    with pytest.raises(requests.ConnectionError):
        client.request("POST", f"/executions/company.team/{flow_id}", params={"labels": "key:once"})
    found = client.request(
        "GET", "/executions/search", params={"filters[labels][EQUALS][key]": "once"}
    ).json()
    assert found["total"] == 1


def test_cut_stream_ends_before_the_end_event(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    flow_id = unique()
    client.deploy(flow_source(flow_id, sleep_task(duration="PT0.3S")))
    execution_id = client.run("company.team", flow_id)["id"]
    sim.faults.cut_streams(after_events=2, path=r"/follow$", count=1)
    response = client.request("GET", f"/executions/{execution_id}/follow", stream=True)
    frames: list[tuple[str, dict]] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        frames.extend(parse_sse(response.iter_lines(decode_unicode=True)))
    assert "end" not in [frame_id for frame_id, _ in frames]


def test_admin_endpoints_manage_faults_over_http(sim: KestraSimulator) -> None:
    admin = sim.url + "/_simulator/faults"
    created = requests.post(admin, json={"kind": "error", "status": 502, "count": 1, "path": "search"})
    assert created.status_code == 201
    assert [r["status"] for r in requests.get(admin).json()] == [502]
    assert SimClient(sim).request("GET", "/flows/search").status_code == 502
    requests.post(admin, json={"kind": "error", "status": 500})
    assert requests.delete(admin).status_code == 204
    assert SimClient(sim).request("GET", "/flows/search").status_code == 200
    assert requests.post(admin, json={"kind": "meteor"}).status_code == 400
    assert requests.get(sim.url + "/_simulator/info").json()["simulator"] is True


def test_admin_paths_are_never_faulted_and_not_under_api(sim: KestraSimulator) -> None:
    sim.faults.fail(500)
    assert requests.get(sim.url + "/_simulator/info").status_code == 200
    assert requests.get(sim.url + "/api/v1/_simulator/info").status_code == 500


def _search_ids(client: SimClient, flow_id: str) -> list[str]:
    response = client.request("GET", "/executions/search", params={"filters[flowId][EQUALS]": flow_id})
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["results"]]


@pytest.mark.parametrize("kestra_version", ["0.22", "1.3", "2.0"])
def test_search_lag_hides_young_executions_until_they_are_old_enough(kestra_version: str) -> None:
    with KestraSimulator(kestra_version=kestra_version) as sim:
        client = SimClient(sim)
        flow_id = unique()
        client.deploy(flow_source(flow_id, return_task()))
        older = client.run("company.team", flow_id)["id"]
        time.sleep(0.6)
        rule = sim.faults.search_lag(0.5)
        newer = client.run("company.team", flow_id)["id"]
        assert _search_ids(client, flow_id) == [older]
        assert client.get(newer)["id"] == newer  # only the search index lags
        assert sim.requests.last is not None and sim.requests.last.faults == ()
        time.sleep(0.6)
        assert sorted(_search_ids(client, flow_id)) == sorted([older, newer])
        assert rule.fired == 1
        assert sim.requests.count(path=r"/executions/search$", fault="search_lag") == 1


def test_read_after_write_lag_answers_404_like_an_unknown_execution(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    sim.faults.read_after_write_lag(0.5)
    execution_id = client.run("company.team", flow_id)["id"]
    lagging = client.request("GET", f"/executions/{execution_id}")
    sim.faults.clear()
    unknown = client.request("GET", f"/executions/{execution_id[:-1]}")
    assert (lagging.status_code, lagging.json()["message"]) == (404, unknown.json()["message"])
    sim.faults.read_after_write_lag(0.5)
    assert execution_id in _search_ids(client, flow_id)  # the search is not lagging here
    time.sleep(0.6)
    assert client.request("GET", f"/executions/{execution_id}").status_code == 200
    assert [r.status for r in sim.requests.filter(fault="read_after_write_lag")] == [404]


def test_lag_rule_count_and_http_admin(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    admin = sim.url + "/_simulator/faults"
    created = requests.post(admin, json={"kind": "read_after_write_lag", "lag": 30, "count": 2})
    assert created.status_code == 201 and created.json()["lag"] == 30
    execution_id = client.run("company.team", flow_id)["id"]
    statuses = [client.request("GET", f"/executions/{execution_id}").status_code for _ in range(3)]
    assert statuses == [404, 404, 200]
    assert requests.get(admin).json() == []
    assert requests.post(admin, json={"kind": "search_lag", "lag": 30}).status_code == 201
    assert _search_ids(client, flow_id) == []
    assert requests.post(admin, json={"kind": "search_lag"}).status_code == 400  # lag is required
    assert requests.delete(admin).status_code == 204
    assert _search_ids(client, flow_id) == [execution_id]
