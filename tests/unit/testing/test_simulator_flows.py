"""Flow endpoints: Kestra's statuses, messages and revision rules (Gotchas 4, 5, 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kestra_sim_client import YAML, SimClient, flow_source, return_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def client() -> Iterator[SimClient]:
    with KestraSimulator() as sim:
        yield SimClient(sim)


def post_flow(client: SimClient, source: str) -> tuple[int, dict]:
    response = client.request("POST", "/flows", data=source, headers=YAML)
    return response.status_code, response.json()


def test_create_is_200_with_revision_1_and_source(client: SimClient) -> None:
    source = flow_source(unique(), return_task())
    status, body = post_flow(client, source)
    assert status == 200
    assert body["revision"] == 1
    assert body["source"] == source
    assert (body["deleted"], body["disabled"], body["tenantId"]) == (False, False, "main")


def test_duplicate_create_is_422_flow_id_already_exists(client: SimClient) -> None:
    source = flow_source(unique(), return_task())
    post_flow(client, source)
    status, body = post_flow(client, source)
    assert status == 422
    assert body["message"] == "Invalid entity: flow.id: Flow id already exists"
    assert body["_embedded"]["errors"] == [{"message": "Flow id already exists", "path": "flow.id"}]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("namespace: a.b\ntasks:\n" + return_task(), "id: must not be null"),
        ("id: x\ntasks:\n" + return_task(), "namespace: must not be null"),
        ("id: x\nnamespace: a.b\n", "tasks: must not be empty"),
        (
            "id: -bad\nnamespace: a.b\ntasks:\n" + return_task(),
            'id: must match "^[a-zA-Z0-9][a-zA-Z0-9._-]*"',
        ),
        ("id: x\nnamespace: A.B\ntasks:\n" + return_task(), "namespace: must match"),
        ("id: x\nnamespace: a.b\nfoo: 1\ntasks:\n" + return_task(), 'Unrecognized field "foo"'),
        (
            "id: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: io.kestra.invalid\n",
            "Invalid type: io.kestra.invalid",
        ),
        (
            "id: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n",
            "message: must not be null",
        ),
        ("id: kill\nnamespace: a.b\ntasks:\n" + return_task(), "Flow id is a reserved keyword: kill"),
        (
            "id: x\nnamespace: a.b\ntasks:\n" + return_task() + return_task(),
            "Duplicate task id with name [ret]",
        ),
        ("id: x\nnamespace: [a\n", "YAML parsing error"),
    ],
)
def test_invalid_flows_are_422_with_kestras_message(client: SimClient, source: str, expected: str) -> None:
    status, body = post_flow(client, source)
    assert status == 422
    assert body["message"].startswith("Invalid entity: ")
    assert expected in body["message"]


def test_unknown_task_type_lists_the_type_in_embedded_errors(client: SimClient) -> None:
    status, body = post_flow(
        client, "id: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: io.kestra.nope.Task\n"
    )
    assert status == 422
    assert body["_embedded"]["errors"][0]["message"] == "Invalid type: io.kestra.nope.Task"


def test_update_revisions_and_identical_source_keeps_revision(client: SimClient) -> None:
    flow_id = unique()
    source = flow_source(flow_id, return_task())
    client.deploy(source)
    same = client.request("PUT", f"/flows/company.team/{flow_id}", data=source, headers=YAML)
    assert (same.status_code, same.json()["revision"]) == (200, 1)
    changed = client.request(
        "PUT", f"/flows/company.team/{flow_id}", data=source + "description: x\n", headers=YAML
    )
    assert changed.json()["revision"] == 2
    revisions = client.request("GET", f"/flows/company.team/{flow_id}/revisions").json()
    assert [r["revision"] for r in revisions] == [1, 2]
    first = client.request("GET", f"/flows/company.team/{flow_id}", params={"revision": 1, "source": "true"})
    assert first.json()["source"] == source


def test_update_with_another_id_or_namespace_is_422(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    other = flow_source(unique(), return_task(), namespace="other.ns")
    response = client.request("PUT", f"/flows/company.team/{flow_id}", data=other, headers=YAML)
    assert response.status_code == 422
    message = response.json()["message"]
    assert "flow.id: Illegal flow id update" in message
    assert "flow.namespace: Illegal namespace update" in message


def test_update_of_missing_flow_is_404(client: SimClient) -> None:
    response = client.request(
        "PUT", "/flows/company.team/nothere", data=flow_source("nothere", return_task()), headers=YAML
    )
    assert response.status_code == 404


def test_get_source_only_when_asked_and_delete_is_soft(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    assert "source" not in client.request("GET", f"/flows/company.team/{flow_id}").json()
    assert client.request("DELETE", f"/flows/company.team/{flow_id}").status_code == 204
    assert client.request("GET", f"/flows/company.team/{flow_id}").status_code == 404
    assert client.request("DELETE", f"/flows/company.team/{flow_id}").status_code == 404
    recreated = client.deploy(flow_source(flow_id, return_task()))
    assert recreated["revision"] == 3


def test_list_and_search_flows(client: SimClient) -> None:
    namespace = "search." + unique("ns").replace("-", "")
    ids = sorted(unique() for _ in range(3))
    for flow_id in ids:
        client.deploy(flow_source(flow_id, return_task(), namespace=namespace))
    listed = client.request("GET", f"/flows/{namespace}").json()
    assert sorted(f["id"] for f in listed) == ids
    page = client.request(
        "GET", "/flows/search", params={"filters[namespace][EQUALS]": namespace, "size": 2}
    ).json()
    assert page["total"] == 3
    assert len(page["results"]) == 2


def test_delete_revisions_requires_the_parameter(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, return_task()))
    missing = client.request("DELETE", f"/flows/company.team/{flow_id}/revisions")
    assert missing.status_code == 400
    assert missing.json()["message"] == "Bad Request: Required QueryValue [revisions] not specified"
    assert client.request("DELETE", f"/flows/company.team/{flow_id}/revisions?revisions=0").status_code == 422


def test_validate_is_always_200_with_one_result_per_document(client: SimClient) -> None:
    body = "\n---\n".join(
        [
            flow_source("good", return_task()),
            "id: bad\nnamespace: a.b\ntasks:\n  - id: t\n    type: io.kestra.unknown\n",
        ]
    )
    response = client.request("POST", "/flows/validate", data=body, headers=YAML)
    assert response.status_code == 200
    good, bad = response.json()
    assert good["index"] == 0 and "constraints" not in good and good["flow"] == "good"
    assert bad["index"] == 1 and "Invalid type: io.kestra.unknown" in bad["constraints"]


def test_validate_multipart_files_keep_their_filename(client: SimClient) -> None:
    files = [("flows", ("a.yml", flow_source("a", return_task()), "application/x-yaml"))]
    result = client.request("POST", "/flows/validate", files=files).json()
    assert result[0]["filename"] == "a.yml"


def test_namespace_bulk_deploy_deletes_missing_flows_first(client: SimClient) -> None:
    namespace = "bulk." + unique("ns").replace("-", "")
    keep, drop, new = unique(), unique(), unique()
    client.deploy(flow_source(keep, return_task(), namespace=namespace))
    client.deploy(flow_source(drop, return_task(), namespace=namespace))
    body = "\n---\n".join(
        [
            flow_source(keep, return_task(), namespace=namespace),
            flow_source(new, return_task(), namespace=namespace),
        ]
    )
    response = client.request("POST", f"/flows/{namespace}", data=body, headers=YAML)
    assert response.status_code == 200
    assert [(f["id"], f["revision"]) for f in response.json()] == [(drop, 1), (keep, 1), (new, 1)]
    assert client.request("GET", f"/flows/{namespace}/{drop}").status_code == 404


def test_namespace_bulk_deploy_refuses_foreign_namespace_and_duplicates(client: SimClient) -> None:
    foreign = client.request(
        "POST", "/flows/a.b", data=flow_source("x", return_task(), namespace="c.d"), headers=YAML
    )
    assert foreign.status_code == 422
    assert "main_c.d_x - flow namespace is invalid" in foreign.json()["message"]
    twice = "\n---\n".join([flow_source("x", return_task(), namespace="a.b")] * 2)
    duplicate = client.request("POST", "/flows/a.b", data=twice, headers=YAML)
    assert duplicate.status_code == 422
    assert "Duplicate flow id" in duplicate.json()["message"]
