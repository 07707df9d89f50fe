"""The request journal (``sim.requests``): what it records, how it filters, faults and drops included."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import requests
from kestra_sim_client import SimClient, flow_source, return_task, unique

from airflow_provider_kestra.testing.journal import KestraSimJournal
from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def sim() -> Iterator[KestraSimulator]:
    with KestraSimulator(seed=3) as simulator:
        yield simulator


def test_records_method_path_query_status_and_time_of_each_request(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    before = time.time()
    client.request("GET", "/flows/search", params={"page": 1, "size": 5})
    client.request("GET", "/executions/nope")
    entries = list(sim.requests)
    assert [(e.method, e.path, e.query, e.status) for e in entries] == [
        ("GET", "/api/v1/main/flows/search", "page=1&size=5", 200),
        ("GET", "/api/v1/main/executions/nope", "", 404),
    ]
    assert [e.seq for e in entries] == [0, 1]
    assert all(e.time >= before and e.duration >= 0 and e.faults == () for e in entries)
    assert len(sim.requests) == 2 and sim.requests[-1] == entries[-1] == sim.requests.last


def test_count_and_filter_by_method_path_regex_and_status(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    execution = client.run("company.team", flow_id)
    client.wait(execution["id"])
    client.request("GET", f"/executions/{execution['id']}/follow").close()
    assert sim.requests.count(method="POST", path=r"/flows$") == 1
    assert sim.requests.count(method="post", path=rf"/executions/company\.team/{flow_id}$") == 1
    assert sim.requests.count(path=r"/follow$") == 1
    assert sim.requests.count(method="GET", path=rf"/executions/{execution['id']}$") >= 1
    assert sim.requests.count(status=404) == 0
    assert {e.method for e in sim.requests.filter(path=r"/flows")} == {"POST"}
    tail = sim.requests.filter(since=sim.requests.total - 1)
    assert len(tail) == 1 and tail[0].path.endswith("/follow")


def test_fault_injected_answers_and_dropped_connections_are_recorded(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    sim.faults.fail(503, count=2, path=r"/flows/search$")
    sim.faults.drop(count=1, path=r"/flows/validate$")
    for _ in range(3):
        client.request("GET", "/flows/search")
    with pytest.raises(requests.ConnectionError):
        SimClient(sim).request("POST", "/flows/validate", data="")
    assert [e.status for e in sim.requests.filter(path=r"/flows/search$")] == [503, 503, 200]
    assert sim.requests.count(fault="error") == 2
    dropped = sim.requests.filter(path=r"/flows/validate$")
    assert [(e.status, e.faults) for e in dropped] == [(None, ("drop",))]


def test_admin_endpoints_are_not_recorded_and_http_api_reads_and_clears(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    client.request("GET", "/flows/search")
    client.request("GET", "/executions/missing")
    answer = requests.get(sim.url + "/_simulator/requests", params={"status": 404}, timeout=10).json()
    assert answer["total"] == 2 and answer["dropped"] == 0 and answer["count"] == 1
    assert answer["requests"][0]["path"] == "/api/v1/main/executions/missing"
    assert answer["requests"][0]["faults"] == []
    bad = requests.get(sim.url + "/_simulator/requests", params={"path": "("}, timeout=10)
    assert bad.status_code == 400
    assert requests.delete(sim.url + "/_simulator/requests", timeout=10).status_code == 204
    assert len(sim.requests) == 0 and sim.requests.total == 0


def test_journal_survives_a_restart_and_clear_restarts_numbering(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    client.request("GET", "/flows/search")
    sim.restart()
    client.request("GET", "/flows/search")
    assert sim.requests.count(path=r"/flows/search$") == 2
    sim.requests.clear()
    client.request("GET", "/flows/search")
    assert [e.seq for e in sim.requests] == [0]


def test_a_full_journal_forgets_the_oldest_and_says_how_many() -> None:
    journal = KestraSimJournal(max_entries=2)
    for index in range(3):
        journal.record("GET", f"/p{index}", "", 200, 0.0, 0.0)
    assert [e.path for e in journal] == ["/p1", "/p2"]
    assert journal.total == 3 and journal.dropped == 1
    with pytest.raises(ValueError):
        KestraSimJournal(max_entries=0)


def test_never_ending_log_streams_are_recorded_when_accepted(sim: KestraSimulator) -> None:
    client = SimClient(sim)
    response = client.request("GET", "/logs/unknown-execution/follow", stream=True)
    try:
        assert response.status_code == 200
        assert [(e.path, e.status) for e in sim.requests.filter(path=r"/follow$")] == [
            ("/api/v1/main/logs/unknown-execution/follow", 200)
        ]
    finally:
        response.close()
