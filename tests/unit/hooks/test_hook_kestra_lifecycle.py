"""KestraHook's lifecycle calls against the simulator: restart (on a revision too, finding the new execution
on 2.0 where the answer is the original), delete with options, webhook (the key never leaks), and the
create-execution options ``breakpoints`` and ``kind``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_provider_kestra.exceptions import (
    KestraConfigError,
    KestraConnectionError,
    KestraError,
    KestraNotFoundError,
)
from airflow_provider_kestra.hooks import kestra_base as base

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.testing import KestraSimulator

NS = "airflow.lifecycle"
SECRET_KEY = "s3cr3t k#y+42"
"""A webhook key with characters that URL-quoting changes: both forms must stay out of every message."""

LOG, FAIL = "io.kestra.plugin.core.log.Log", "io.kestra.plugin.core.execution.Fail"


def _flow(flow_id: str, tasks: list[dict[str, Any]], **extra: Any) -> str:
    """A flow's YAML source in the test namespace."""
    return yaml.safe_dump({"id": flow_id, "namespace": NS, **extra, "tasks": tasks}, sort_keys=False)


FIRST = {"id": "first", "type": LOG, "message": "first"}
FAILING = _flow("fixme", [FIRST, {"id": "boom", "type": FAIL, "errorMessage": "broken"}])
FIXED = _flow("fixme", [FIRST, {"id": "boom", "type": LOG, "message": "fixed"}])
WEBHOOK = _flow(
    "hooked",
    [{"id": "hello", "type": LOG, "message": "hello {{ trigger.body.who }}"}],
    triggers=[{"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "key": SECRET_KEY}],
)

PROFILES = [
    {"kestra_version": "0.22"},
    {"kestra_version": "1.3"},
    {"kestra_version": "2.0", "action_routes": "actions"},
    {"kestra_version": "2.0", "action_routes": "plain"},
]
ON_SIMULATOR = pytest.mark.parametrize(
    "kestra_simulator", PROFILES, indirect=True, ids=["0.22", "1.3", "2.0-actions", "2.0-plain"]
)


@pytest.fixture
def sim(kestra_simulator: KestraSimulator) -> KestraSimulator:
    return kestra_simulator


@pytest.fixture
def hook(kestra_simulator: KestraSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraHook]:
    """A hook on this test's own simulator (the plugin's ``kestra_simulator``, one profile each)."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", kestra_simulator.connection_uri())
    with KestraHook(retry_limit=1, retry_delay=0.05) as instance:
        yield instance


def _failed_execution(hook: KestraHook) -> dict[str, Any]:
    hook.upsert_flow(FAILING)
    started = hook.create_execution(NS, "fixme")
    return dict(hook.wait_for_execution(started["id"], timeout=20, poll_interval=0.1))


# -------------------------------------------------------------------------------------------- restart
@ON_SIMULATOR
def test_restart_without_revision_restarts_the_same_execution(hook: KestraHook) -> None:
    failed = _failed_execution(hook)
    assert failed["state"]["current"] == "FAILED"
    restarted = hook.restart_to_execution(failed["id"])
    assert restarted["id"] == failed["id"]
    final = hook.wait_for_execution(failed["id"], timeout=20, poll_interval=0.1)
    assert "RESTARTED" in [h["state"] for h in final["state"]["histories"]]


@ON_SIMULATOR
def test_restart_on_a_revision_returns_the_new_execution(hook: KestraHook, sim: KestraSimulator) -> None:
    """1.x answers the new execution; 2.0 answers the original, so the hook finds the new one."""
    failed = _failed_execution(hook)
    revision = hook.upsert_flow(FIXED)["revision"]
    since = sim.requests.total
    restarted = hook.restart_to_execution(failed["id"], revision=revision, find_timeout=10)
    assert restarted["id"] != failed["id"]
    assert restarted.get("parentId") == failed["id"]
    final = hook.wait_for_execution(restarted["id"], timeout=20, poll_interval=0.1)
    assert final["state"]["current"] == "SUCCESS"
    assert final["flowRevision"] == revision
    # One restart reached Kestra (on 2.0 "plain", after a 404 probe of the /actions/ path).
    assert sim.requests.count("POST", r"/restart$", status=200, since=since) == 1


@ON_SIMULATOR
def test_restart_on_a_revision_with_a_lost_answer_finds_the_new_execution(
    hook: KestraHook, sim: KestraSimulator
) -> None:
    """2.0 answers 504 when the awaited action times out although it happened: the hook does not restart
    again, it finds the new execution."""
    if not sim.kestra_version.startswith("2"):
        pytest.skip("the awaited action (504 on time-out) is 2.0's")
    failed = _failed_execution(hook)
    revision = hook.upsert_flow(FIXED)["revision"]
    sim.faults.action_timeout("restart", applied=True, count=1)
    since = sim.requests.total
    restarted = hook.restart_to_execution(failed["id"], revision=revision, find_timeout=10)
    assert restarted["id"] != failed["id"]
    assert sim.requests.count("POST", r"/restart$", status=504, since=since) == 1
    assert sim.requests.count("POST", r"/restart$", status=200, since=since) == 0


@ON_SIMULATOR
def test_restart_on_a_revision_not_found_in_time_fails_without_restarting_again(
    hook: KestraHook, sim: KestraSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = _failed_execution(hook)
    revision = hook.upsert_flow(FIXED)["revision"]
    monkeypatch.setattr(hook, "restart_execution", lambda execution_id, revision=None: failed)
    with pytest.raises(KestraError, match=r"made no new execution visible within 0\.3s"):
        hook.restart_to_execution(failed["id"], revision=revision, find_timeout=0.3)


def test_restart_copies_and_search() -> None:
    execution = {
        "id": "orig",
        "namespace": NS,
        "flowId": "f",
        "labels": [{"key": "system.correlationId", "value": "orig"}, {"key": "team", "value": "x"}],
    }
    query = base.restart_search(execution)  # type: ignore[arg-type]
    assert dict(query.labels) == {"system.correlationId": "orig"}
    found = [{"id": "orig"}, {"id": "a", "parentId": "orig"}, {"id": "b", "parentId": "other"}]
    assert base.restart_copies("orig", found) == {"a"}  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- delete
@ON_SIMULATOR
def test_delete_execution_sends_the_options(hook: KestraHook, sim: KestraSimulator) -> None:
    failed = _failed_execution(hook)
    since = sim.requests.total
    hook.delete_execution(failed["id"], delete_logs=False, delete_metrics=True, delete_storage=False)
    [request] = sim.requests.filter("DELETE", failed["id"] + "$", since=since)
    assert request.query == "deleteLogs=false&deleteMetrics=true&deleteStorage=false"
    assert hook.get_logs(failed["id"])[0], "deleteLogs=false kept the logs"
    with pytest.raises(KestraNotFoundError):
        hook.get_execution(failed["id"])
    with pytest.raises(KestraNotFoundError):
        hook.delete_execution(failed["id"])


# -------------------------------------------------------------------------------------------- webhook
@ON_SIMULATOR
def test_trigger_webhook_starts_an_execution(hook: KestraHook, sim: KestraSimulator) -> None:
    hook.upsert_flow(WEBHOOK)
    answer = hook.trigger_webhook(NS, "hooked", SECRET_KEY, {"who": "airflow"})
    assert answer["id"] and answer["flowId"] == "hooked"
    final = hook.wait_for_execution(answer["id"], timeout=20, poll_interval=0.1)
    assert final["state"]["current"] == "SUCCESS"
    assert final["trigger"]["variables"]["body"] == {"who": "airflow"}


@ON_SIMULATOR
def test_trigger_webhook_errors_never_show_the_key(hook: KestraHook, sim: KestraSimulator) -> None:
    hook.upsert_flow(WEBHOOK)
    wrong = SECRET_KEY + "-wrong"
    with pytest.raises(KestraNotFoundError) as caught:
        hook.trigger_webhook(NS, "hooked", wrong, method="PUT")
    text = str(caught.value) + caught.value.path
    assert "***" in caught.value.path and "webhook" in text
    for form in (wrong, base.quote(wrong, safe=""), "s3cr3t"):
        assert form not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    sim.faults.fail(503, path="/webhook/")
    with pytest.raises(KestraError) as server:
        hook.trigger_webhook(NS, "hooked", SECRET_KEY)
    assert "s3cr3t" not in str(server.value)
    assert sim.requests.count(path="/webhook/", status=503) == 1, "a webhook is never sent twice"


def test_trigger_webhook_connection_error_hides_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", "kestra://u:p@127.0.0.1:9/http?api_version=1")
    with KestraHook(retry_limit=0) as hook, pytest.raises(KestraConnectionError) as caught:
        hook.trigger_webhook(NS, "hooked", SECRET_KEY)
    assert "s3cr3t" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [({"a": 1}, "application/json"), ("text", "text/plain; charset=utf-8"), (b"\x00", None), (None, None)],
)
def test_webhook_call_bodies(body: Any, content_type: str | None) -> None:
    call = base.webhook_call(NS, "f", "k", body, "post")
    assert call.route == "execution_webhook_post"
    assert "k" not in call.context.split()
    assert call.headers.get("Content-Type") == (
        content_type or ("application/octet-stream" if body is not None else None)
    )


def test_webhook_call_refuses_bad_method_and_body() -> None:
    with pytest.raises(KestraConfigError, match="method"):
        base.webhook_call(NS, "f", "k", None, "DELETE")
    with pytest.raises(KestraConfigError, match="body"):
        base.webhook_call(NS, "f", "k", {1, 2}, "POST")


# ------------------------------------------------------------------------------ breakpoints and kind
@ON_SIMULATOR
def test_create_with_kind_and_breakpoints(hook: KestraHook, sim: KestraSimulator) -> None:
    hook.upsert_flow(FIXED)
    if sim.kestra_version == "0.22":
        since = sim.requests.total
        with pytest.raises(KestraConfigError, match=r"Kestra 1\.x or 2\.x"):
            hook.create_execution(NS, "fixme", kind="TEST")
        with pytest.raises(KestraConfigError, match=r"Kestra 1\.x or 2\.x"):
            hook.create_execution(NS, "fixme", breakpoints=["boom"])
        assert sim.requests.count("POST", r"/executions/", since=since) == 0
        return
    since = sim.requests.total
    execution = hook.create_execution(NS, "fixme", kind="test", breakpoints=["first", "boom.x"])
    assert execution.get("kind") == "TEST"
    [request] = sim.requests.filter("POST", r"/executions/airflow\.lifecycle/fixme$", since=since)
    assert "kind=TEST" in request.query and "breakpoints=first%2Cboom.x" in request.query
    with pytest.raises(KestraConfigError, match="kind must be one of"):
        hook.create_execution(NS, "fixme", kind="DRAFT")
    deadline = time.monotonic() + 10
    while hook.get_execution(execution["id"])["state"]["current"] not in ("SUCCESS", "FAILED", "WARNING"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
