"""KestraHook flows: get/list/create/update/delete, validate, upsert and namespace deploy."""

from __future__ import annotations

from typing import Any

import pytest
from kestra_hook_payloads import FLOW_SOURCE, flow_with_source, violation

from airflow_provider_kestra.exceptions import (
    KestraConfigError,
    KestraFlowValidationError,
    KestraValidationError,
)
from airflow_provider_kestra.hooks.kestra import KestraFlowDeployError, KestraHook

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


def test_deploy_creates_updates_and_deletes_missing(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source(revision=3))
    http.get(f"{api}/flows/company.team/other", status_code=404)
    http.post(f"{api}/flows", json=flow_with_source(OTHER, flow_id="other"))
    http.get(
        f"{api}/flows/company.team", json=[flow_with_source(), flow_with_source(flow_id="old", revision=7)]
    )
    http.delete(f"{api}/flows/company.team/old", status_code=204)
    results = hook.deploy_flows([FLOW_SOURCE, OTHER], namespace="company.team", delete_missing=True)
    assert [(r["flow_id"], r["action"], r["revision"]) for r in results] == [
        ("hello", "unchanged", 3),
        ("other", "created", 1),
        ("old", "deleted", None),
    ]


def test_deploy_dry_run_changes_nothing(hook: KestraHook, http: Any, api: str) -> None:
    changed = FLOW_SOURCE + "description: x\n"
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team/hello", json=flow_with_source(revision=3))
    http.get(f"{api}/flows/company.team/other", status_code=404)
    http.get(f"{api}/flows/company.team", json=[flow_with_source(flow_id="old")])
    results = hook.deploy_flows([changed, OTHER], namespace="company.team", delete_missing=True, dry_run=True)
    assert [r["action"] for r in results] == ["would-update", "would-create", "would-delete"]
    assert not [
        r for r in http.request_history if r.method in ("PUT", "DELETE") or r.path == "/api/v1/main/flows"
    ]


def test_deploy_failure_midway_lists_what_was_deployed(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/flows/validate", json=[violation(0, "hello", None), violation(1, "other", None)])
    http.get(f"{api}/flows/company.team/hello", status_code=404)
    http.get(f"{api}/flows/company.team/other", status_code=404)
    http.post(
        f"{api}/flows", [{"json": flow_with_source()}, {"status_code": 500, "json": {"message": "boom"}}]
    )
    with pytest.raises(KestraFlowDeployError) as info:
        hook.deploy_flows([FLOW_SOURCE, OTHER])
    assert info.value.deployed == [
        {"namespace": "company.team", "flow_id": "hello", "revision": 1, "action": "created"}
    ]
    assert info.value.not_deployed == ["company.team.other"]
    assert "Already deployed: company.team.hello (created)" in str(info.value)
    assert "Not deployed: company.team.other" in str(info.value)
