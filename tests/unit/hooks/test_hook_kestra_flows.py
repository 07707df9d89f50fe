"""KestraHook flows: get/list/create/update/delete, validate, upsert and namespace deploy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_payloads import FLOW_SOURCE, flow_with_source, violation

from airflow_provider_kestra.exceptions import (
    KestraConfigError,
    KestraFlowDeployError,
    KestraFlowValidationError,
    KestraValidationError,
)

if TYPE_CHECKING:
    from airflow_provider_kestra.hooks.kestra import KestraHook

OTHER = FLOW_SOURCE.replace("id: hello\n", "id: other\n", 1)


def yaml_bodies(http: Any, method: str = "POST") -> list[str]:
    return [r.body.decode() for r in http.request_history if r.method == method]


def test_flow_crud(hook: KestraHook, http: Any, api: str) -> None:
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source())
    http.get(f"{api}/flows/company.team", json=[flow_with_source()])
    http.post(f"{api}/flows", json=flow_with_source())
    http.put(f"{api}/flows/company.team/hello", json=flow_with_source(revision=2))
    http.delete(f"{api}/flows/company.team/hello", status_code=204)
    assert hook.get_flow("company.team", "hello")["source"] == FLOW_SOURCE
    assert http.last_request.qs["source"] == ["true"]
    assert [f["id"] for f in hook.list_flows("company.team")] == ["hello"]
    assert hook.create_flow(FLOW_SOURCE)["revision"] == 1
    assert http.last_request.headers["Content-Type"] == "application/x-yaml"
    assert http.last_request.body.decode() == FLOW_SOURCE, "the source must reach Kestra untouched"
    assert hook.update_flow("company.team", "hello", FLOW_SOURCE)["revision"] == 2
    hook.delete_flow("company.team", "hello")
    assert http.last_request.method == "DELETE"


def test_create_duplicate_flow_names_the_flow(hook: KestraHook, http: Any, api: str) -> None:
    http.post(
        f"{api}/flows",
        status_code=422,
        json={
            "message": "Invalid entity: flow.id: Flow id already exists",
            "_embedded": {"errors": [{"message": "Flow id already exists", "path": "flow.id"}]},
        },
    )
    with pytest.raises(
        KestraValidationError, match=r"Creating flow company.team.hello: .*Flow id already exists"
    ):
        hook.create_flow(FLOW_SOURCE)


def test_validate_flows_returns_only_problems(hook: KestraHook, http: Any, api: str) -> None:
    http.post(
        f"{api}/flows/validate",
        json=[
            violation(0, "hello", None),
            violation(1, "other", "tasks[0].type: Invalid type: io.kestra.nope"),
        ],
    )
    problems = hook.validate_flows([FLOW_SOURCE, OTHER], filenames=["hello.yml", "other.yml"])
    assert problems == [
        {
            "filename": "other.yml",
            "index": 0,
            "namespace": "company.team",
            "flow_id": "other",
            "message": "tasks[0].type: Invalid type: io.kestra.nope",
        }
    ]
    (body,) = yaml_bodies(http)
    assert body == FLOW_SOURCE + "---\n" + OTHER
    assert http.last_request.headers["Content-Type"] == "application/x-yaml"


def test_validate_sends_flows_with_dashes_alone(hook: KestraHook, http: Any, api: str) -> None:
    dashed = OTHER.replace('"Hello {{ inputs.name }}"', '"a --- b"')
    http.post(
        f"{api}/flows/validate",
        [{"json": [violation(0, "hello", None)]}, {"json": [violation(0, "other", None)]}],
    )
    assert hook.validate_flows([FLOW_SOURCE, dashed]) == []
    assert yaml_bodies(http) == [FLOW_SOURCE, dashed]


def test_validate_detects_kestra_splitting_differently(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, None, "bad")])  # type: ignore[arg-type]
    problems = hook.validate_flows(FLOW_SOURCE.replace("Hello", "a---b"))
    assert len(problems) == 1 and "split" in problems[0]["message"]


def test_validate_reports_local_problems(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None)])
    problems = hook.validate_flows(
        [FLOW_SOURCE, "id: x\ntasks: []\n", "a: [b"], filenames=["a.yml", "b.yml", "c.yml"]
    )
    assert [(p["filename"], p["message"].split(":")[0]) for p in problems] == [
        ("b.yml", "b.yml#0"),
        ("c.yml", "c.yml"),
    ]
    assert "no namespace" in problems[0]["message"]
    assert "invalid YAML" in problems[1]["message"]


def test_upsert_creates_when_missing(hook: KestraHook, http: Any, api: str) -> None:
    http.get(
        f"{api}/flows/company.team/hello", status_code=404, json={"message": "Not Found: Flow not found"}
    )
    http.post(f"{api}/flows", json=flow_with_source())
    assert hook.upsert_flow(FLOW_SOURCE) == {
        "namespace": "company.team",
        "flow_id": "hello",
        "revision": 1,
        "action": "created",
    }


def test_upsert_identical_source_is_unchanged_without_put(hook: KestraHook, http: Any, api: str) -> None:
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source(revision=4))
    assert hook.upsert_flow(FLOW_SOURCE)["action"] == "unchanged"
    assert not [r for r in http.request_history if r.method in ("PUT", "POST")]


def test_upsert_updates_changed_source(hook: KestraHook, http: Any, api: str) -> None:
    new = FLOW_SOURCE + "description: new\n"
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source(revision=4))
    http.put(f"{api}/flows/company.team/hello", json=flow_with_source(new, revision=5))
    assert hook.upsert_flow(new) == {
        "namespace": "company.team",
        "flow_id": "hello",
        "revision": 5,
        "action": "updated",
    }
    assert http.last_request.body.decode() == new


def test_upsert_invalid_source_raises_before_sending(hook: KestraHook, http: Any) -> None:
    with pytest.raises(KestraFlowValidationError, match="no id"):
        hook.upsert_flow("namespace: a\ntasks: []\n")
    assert http.call_count == 0


def test_deploy_validates_everything_before_deploying(hook: KestraHook, http: Any, api: str) -> None:
    http.post(
        f"{api}/flows/validate",
        json=[
            violation(0, "hello", "tasks: must not be empty"),
            violation(1, "other", "inputs[0].type: bad"),
        ],
    )
    with pytest.raises(KestraFlowValidationError) as info:
        hook.deploy_flows(FLOW_SOURCE + "---\n" + OTHER, filenames=["flows.yml"])
    message = str(info.value)
    assert "flows.yml#0 flow company.team.hello: tasks: must not be empty" in message
    assert "flows.yml#1 flow company.team.other: inputs[0].type: bad" in message
    assert len(info.value.problems) == 2
    assert not [r for r in http.request_history if r.method in ("PUT", "DELETE")]
    assert [r.path for r in http.request_history if r.method == "POST"] == ["/api/v1/main/flows/validate"]


def test_deploy_checks_namespace_and_duplicates_locally(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "hello", None)])
    with pytest.raises(KestraFlowValidationError) as info:
        hook.deploy_flows([FLOW_SOURCE, FLOW_SOURCE, "id: x\n"], namespace="company.other")
    text = str(info.value)
    assert "belongs to namespace 'company.team', not 'company.other'" in text
    assert "defined twice" in text
    assert "no namespace" in text, "every problem is reported at once"
    assert [r.path for r in http.request_history if r.method != "GET"] == ["/api/v1/main/flows/validate"]


def test_delete_missing_needs_namespace(hook: KestraHook, http: Any) -> None:
    with pytest.raises(KestraConfigError, match="explicit namespace"):
        hook.deploy_flows(FLOW_SOURCE, delete_missing=True)
    assert http.call_count == 0


def bulk_requests(http: Any) -> list[Any]:
    return [r for r in http.request_history if r.path == "/api/v1/main/flows/bulk"]


def test_deploy_is_one_listing_and_one_bulk_write_per_namespace(
    hook: KestraHook, http: Any, api: str
) -> None:
    changed = FLOW_SOURCE + "description: new\n"
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(
        f"{api}/flows/company.team",
        json=[flow_with_source(revision=3), flow_with_source(flow_id="old", revision=7)],
    )
    http.post(
        f"{api}/flows/bulk",
        json=[
            flow_with_source(flow_id="old", revision=7),  # deleted ones come first, as they were
            flow_with_source(changed, revision=4),
            flow_with_source(OTHER, flow_id="other"),
        ],
    )
    results = hook.deploy_flows([changed, OTHER], namespace="company.team", delete_missing=True)
    assert [(r["flow_id"], r["action"], r["revision"]) for r in results] == [
        ("hello", "updated", 4),
        ("other", "created", 1),
        ("old", "deleted", None),
    ]
    (bulk,) = bulk_requests(http)
    assert bulk.qs == {"namespace": ["company.team"], "delete": ["true"]}
    assert bulk.body.decode() == changed + "---" + OTHER, "Kestra's split('---') gives each source back whole"
    assert bulk.headers["Content-Type"] == "application/x-yaml"
    assert [(r.method, r.path) for r in http.request_history if r.path != "/api/v1/configs"] == [
        ("POST", "/api/v1/main/flows/validate"),
        ("GET", "/api/v1/main/flows/company.team"),
        ("POST", "/api/v1/main/flows/bulk"),
    ]


def test_deploy_always_sends_delete_false_without_delete_missing(
    hook: KestraHook, http: Any, api: str
) -> None:
    """Kestra's ``delete`` defaults to true: leaving it out would prune the namespace."""
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None)])
    http.get(f"{api}/flows/company.team", json=[flow_with_source(revision=3)])
    http.post(f"{api}/flows/bulk", json=[flow_with_source(revision=3)])
    assert hook.deploy_flows(FLOW_SOURCE)[0]["action"] == "unchanged"
    assert bulk_requests(http)[0].qs == {"namespace": ["company.team"], "delete": ["false"]}


def test_deploy_writes_flows_holding_dashes_alone(hook: KestraHook, http: Any, api: str) -> None:
    dashed = OTHER.replace('"Hello {{ inputs.name }}"', '"a --- b"')
    http.post(
        f"{api}/flows/validate",
        [{"json": [violation(0, "hello", None)]}, {"json": [violation(0, "other", None)]}],
    )
    http.get(f"{api}/flows/company.team", json=[flow_with_source(flow_id="old")])
    http.post(f"{api}/flows/bulk", json=[flow_with_source()])
    http.post(f"{api}/flows", json=flow_with_source(dashed, flow_id="other"))
    http.delete(f"{api}/flows/company.team/old", status_code=204)
    results = hook.deploy_flows([FLOW_SOURCE, dashed], namespace="company.team", delete_missing=True)
    assert [(r["flow_id"], r["action"]) for r in results] == [
        ("hello", "created"),
        ("other", "created"),
        ("old", "deleted"),
    ]
    (bulk,) = bulk_requests(http)
    assert bulk.qs["delete"] == ["false"], "a bulk delete would remove the flow written alone"
    assert bulk.body.decode() == FLOW_SOURCE
    assert [r.body.decode() for r in http.request_history if r.path == "/api/v1/main/flows"] == [dashed]


def test_deploy_falls_back_to_one_write_per_flow_without_bulk_route(
    hook: KestraHook, http: Any, api: str
) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team", json=[flow_with_source(revision=3)])
    http.post(f"{api}/flows/bulk", status_code=404, json={"message": "Page Not Found"})
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source(revision=3))
    http.post(f"{api}/flows", json=flow_with_source(OTHER, flow_id="other"))
    results = hook.deploy_flows([FLOW_SOURCE, OTHER])
    assert [(r["flow_id"], r["action"], r["revision"]) for r in results] == [
        ("hello", "unchanged", 3),
        ("other", "created", 1),
    ]
    assert not [r for r in http.request_history if r.method == "PUT"]


def test_deploy_dry_run_changes_nothing(hook: KestraHook, http: Any, api: str) -> None:
    changed = FLOW_SOURCE + "description: x\n"
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source(revision=3))
    http.get(
        f"{api}/flows/company.team", json=[flow_with_source(revision=3), flow_with_source(flow_id="old")]
    )
    results = hook.deploy_flows([changed, OTHER], namespace="company.team", delete_missing=True, dry_run=True)
    assert [r["action"] for r in results] == ["would-update", "would-create", "would-delete"]
    assert [r.method for r in http.request_history if r.path != "/api/v1/configs"] == ["POST", "GET", "GET"]


def test_deploy_lost_bulk_answer_names_unknown_flows(hook: KestraHook, http: Any, api: str) -> None:
    """A 500 to a bulk write: Kestra writes flow by flow, without a transaction, so any may be written."""
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team", json=[])
    http.post(f"{api}/flows/bulk", status_code=500, json={"message": "boom"})
    with pytest.raises(KestraFlowDeployError) as info:
        hook.deploy_flows([FLOW_SOURCE, OTHER])
    assert info.value.deployed == []
    assert info.value.not_deployed == []
    assert info.value.unknown == ["company.team.hello", "company.team.other"]
    assert "Unknown (written, but Kestra's answer was lost or partial" in str(info.value)
    assert len(bulk_requests(http)) == 1, "a 500 is not retried"


def test_deploy_refused_bulk_write_deployed_nothing(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None)])
    http.get(f"{api}/flows/company.team", json=[])
    http.post(f"{api}/flows/bulk", status_code=403, json={"message": "Forbidden"})
    with pytest.raises(KestraFlowDeployError) as info:
        hook.deploy_flows(FLOW_SOURCE)
    assert (info.value.not_deployed, info.value.unknown) == (["company.team.hello"], [])


def test_deploy_failure_midway_lists_what_was_deployed(hook: KestraHook, http: Any, api: str) -> None:
    """Flow by flow (here: no bulk route): a refused write is not deployed, a 500 is unknown."""
    third = OTHER.replace("id: other\n", "id: third\n", 1)
    http.post(
        f"{api}/flows/validate",
        json=[violation(0, "hello", None), violation(1, "other", None), violation(2, "third", None)],
    )
    http.get(f"{api}/flows/company.team", json=[])
    http.post(f"{api}/flows/bulk", status_code=405, json={"message": "Method Not Allowed"})
    http.post(
        f"{api}/flows", [{"json": flow_with_source()}, {"status_code": 500, "json": {"message": "boom"}}]
    )
    with pytest.raises(KestraFlowDeployError) as info:
        hook.deploy_flows([FLOW_SOURCE, OTHER, third])
    assert info.value.deployed == [
        {"namespace": "company.team", "flow_id": "hello", "revision": 1, "action": "created"}
    ]
    assert info.value.unknown == ["company.team.other"]
    assert info.value.not_deployed == ["company.team.third"]
    assert "Already deployed: company.team.hello (created)" in str(info.value)
    assert "Not deployed: company.team.third" in str(info.value)


def test_deploy_parses_each_file_once_with_the_c_loader(
    hook: KestraHook, http: Any, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from airflow_provider_kestra.utils import flows

    loaders: list[Any] = []
    load_all = yaml.load_all

    def counting_load_all(stream: str, Loader: Any) -> Any:
        loaders.append(Loader)
        return load_all(stream, Loader=Loader)

    monkeypatch.setattr(flows.yaml, "load_all", counting_load_all)
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team", json=[])
    http.post(f"{api}/flows/bulk", json=[flow_with_source(), flow_with_source(OTHER, flow_id="other")])
    hook.deploy_flows([FLOW_SOURCE, OTHER], filenames=["a.yml", "b.yml"])
    assert loaders == [yaml.CSafeLoader, yaml.CSafeLoader], "one parse per file, with libyaml"
