"""KestraHook.deploy_flows against the simulator, per Kestra line: request counts, idempotency, byte-exact
sources, pruning, dry runs, and what a lost bulk answer leaves known.

Kestra's bulk endpoint as pinned here is ``FlowController#bulkUpdateFlows`` / ``bulkUpdateOrCreate`` in
``webserver/src/main/java/io/kestra/webserver/controllers/api/FlowController.java`` at
kestra-io/kestra@044883a011f1d0531cba4f23987ab5799f1d46eb: ``flows.split("---")``, each piece stored as is;
``delete`` defaults to true and prunes the flows of ``namespace`` missing from the body; deletions first,
then one create/update per flow, without a transaction; an identical source keeps its revision
(``FlowInterface#isSameWithSource``). 0.22's ``bulkUpdate`` has no ``namespace`` (kestra-io/kestra@629ce96f),
so the hook writes flow by flow there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kestra.exceptions import KestraFlowDeployError, KestraFlowValidationError
from airflow_provider_kestra.hooks.kestra import KestraHook
from airflow_provider_kestra.testing import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

PROFILES = ("0.22", "1.3", "2.0")
BULK = r"/flows/bulk$"


@pytest.fixture(scope="module", params=PROFILES, ids=[f"kestra{p}" for p in PROFILES])
def sim(request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    with KestraSimulator(kestra_version=request.param) as simulator:
        yield simulator


@pytest.fixture
def hook(sim: KestraSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraHook]:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
    sim.faults.clear()
    instance = KestraHook(retry_limit=2, retry_delay=0.01)
    _ = instance.api_version  # the server is known before counting
    sim.requests.clear()
    yield instance
    instance.close()
    sim.faults.clear()


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    name = request.node.name.removeprefix("test_").split("[")
    suffix = "-" + name[1].split("-", 1)[1].rstrip("]") if "-" in name[-1] and len(name) > 1 else ""
    return "deploy." + (name[0] + suffix).replace("_", "-")


def source(namespace: str, flow_id: str, message: str = "Hello {{ inputs.name }}") -> str:
    return (
        f"id: {flow_id}\nnamespace: {namespace}\ninputs:\n  - id: name\n    type: STRING\n"
        f'tasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: "{message}"\n'
    )


def bulk_server(sim: KestraSimulator) -> bool:
    return sim.profile.tenant_in_path  # 1.x and 2.0 serve /flows/bulk with ``namespace``


def test_new_then_unchanged_in_three_requests_keeping_revisions(
    sim: KestraSimulator, hook: KestraHook, namespace: str
) -> None:
    sources = [source(namespace, f"f{n:02d}") for n in range(20)]
    sources[3] = sources[3].rstrip("\n")  # no final newline: still given back whole by split("---")
    created = hook.deploy_flows(sources, namespace=namespace)
    assert {(r["action"], r["revision"]) for r in created} == {("created", 1)}
    first = len(sim.requests)
    sim.requests.clear()
    again = hook.deploy_flows(sources, namespace=namespace)
    assert [r["flow_id"] for r in again] == [f"f{n:02d}" for n in range(20)]
    assert {(r["action"], r["revision"]) for r in again} == {("unchanged", 1)}
    if bulk_server(sim):
        assert (first, len(sim.requests)) == (3, 3)
        assert sim.requests.count("POST", BULK) == 1
    else:
        assert sim.requests.count("POST", BULK) == 0
        assert sim.requests.count("PUT") == 0
    for text, flow_id in ((sources[0], "f00"), (sources[3], "f03")):
        assert hook.get_flow(namespace, flow_id)["source"] == text, "stored byte for byte"


def test_changed_new_and_pruned_in_one_deployment(
    sim: KestraSimulator, hook: KestraHook, namespace: str
) -> None:
    hook.deploy_flows([source(namespace, n) for n in ("keep", "change", "gone")], namespace=namespace)
    sim.requests.clear()
    results = hook.deploy_flows(
        [source(namespace, "keep"), source(namespace, "change", "Bye"), source(namespace, "new")],
        namespace=namespace,
        delete_missing=True,
    )
    assert [(r["flow_id"], r["action"], r["revision"]) for r in results] == [
        ("keep", "unchanged", 1),
        ("change", "updated", 2),
        ("new", "created", 1),
        ("gone", "deleted", None),
    ]
    if bulk_server(sim):
        assert len(sim.requests) == 3
    assert [f["id"] for f in hook.list_flows(namespace)] == ["change", "keep", "new"]


def test_several_namespaces_are_one_bulk_each(sim: KestraSimulator, hook: KestraHook, namespace: str) -> None:
    sources = [source(f"{namespace}.{part}", f"f{n}") for part in ("a", "b") for n in range(3)]
    results = hook.deploy_flows(sources)
    assert {r["action"] for r in results} == {"created"}
    assert sim.requests.count("POST", BULK) == (2 if bulk_server(sim) else 0)


def test_dry_run_writes_nothing(sim: KestraSimulator, hook: KestraHook, namespace: str) -> None:
    hook.deploy_flows([source(namespace, "same"), source(namespace, "old")], namespace=namespace)
    sim.requests.clear()
    results = hook.deploy_flows(
        [source(namespace, "same"), source(namespace, "new")],
        namespace=namespace,
        delete_missing=True,
        dry_run=True,
    )
    assert [(r["flow_id"], r["action"]) for r in results] == [
        ("same", "unchanged"),
        ("new", "would-create"),
        ("old", "would-delete"),
    ]
    assert {entry.method for entry in sim.requests} == {"GET", "POST"}
    assert sim.requests.count("POST") == 1, "only the validation"


def test_one_invalid_flow_writes_nothing(sim: KestraSimulator, hook: KestraHook, namespace: str) -> None:
    bad = source(namespace, "bad").replace("core.log.Log", "core.log.Nope")
    with pytest.raises(KestraFlowValidationError, match="Invalid type"):
        hook.deploy_flows([source(namespace, "good"), bad], namespace=namespace)
    assert [entry.path.rsplit("/", 1)[-1] for entry in sim.requests] == ["validate"]


def test_dropped_bulk_write_leaves_its_flows_unknown(
    sim: KestraSimulator, hook: KestraHook, namespace: str
) -> None:
    """Per namespace: a flow written alone (it holds '---') is deployed, the dropped bulk write's flows are
    unknown, and the next namespace is not deployed."""
    if not bulk_server(sim):
        pytest.skip("0.22 writes flow by flow")
    hook.retry_limit = 0
    dashed = source(f"{namespace}.a", "dashed", "a --- b")
    sources = [
        dashed,
        source(f"{namespace}.b", "one"),
        source(f"{namespace}.b", "two"),
        source(f"{namespace}.c", "x"),
    ]
    sim.faults.drop(method="POST", path=BULK, count=1)
    with pytest.raises(KestraFlowDeployError) as info:
        hook.deploy_flows(sources)
    error = info.value
    assert [(r["flow_id"], r["action"]) for r in error.deployed] == [("dashed", "created")]
    assert error.unknown == [f"{namespace}.b.one", f"{namespace}.b.two"]
    assert error.not_deployed == [f"{namespace}.c.x"]
    message = str(error)
    assert f"Already deployed: {namespace}.a.dashed (created)" in message
    assert f"Not deployed: {namespace}.c.x" in message
    assert f"lost or partial; check these in Kestra): {namespace}.b.one, {namespace}.b.two." in message
    assert sim.requests.count("POST", BULK, fault="drop") == 1


@pytest.mark.parametrize("after_response", [False, True], ids=["dropped", "answer-lost"])
def test_bulk_write_is_sent_again_after_a_lost_answer(
    sim: KestraSimulator, hook: KestraHook, namespace: str, after_response: bool
) -> None:
    """Repeating a bulk write converges: flows written by the lost attempt are identical updates."""
    if not bulk_server(sim):
        pytest.skip("0.22 writes flow by flow")
    sim.faults.drop(method="POST", path=BULK, count=1, after_response=after_response)
    results = hook.deploy_flows([source(namespace, "one"), source(namespace, "two")], namespace=namespace)
    assert [(r["action"], r["revision"]) for r in results] == [("created", 1), ("created", 1)]
    assert sim.requests.count("POST", BULK) == 2


def test_operator_shaped_folder_of_500_flows(sim: KestraSimulator, hook: KestraHook, namespace: str) -> Any:
    """Issue 12 goal 4 on every line: 500 new flows, then an unchanged redeploy."""
    sources = [source(namespace, f"f{n:03d}") for n in range(500)]
    assert {r["action"] for r in hook.deploy_flows(sources, namespace=namespace)} == {"created"}
    created_requests = len(sim.requests)
    sim.requests.clear()
    assert {r["action"] for r in hook.deploy_flows(sources, namespace=namespace)} == {"unchanged"}
    if bulk_server(sim):
        assert (created_requests, len(sim.requests)) == (3, 3)
    else:
        assert (created_requests, len(sim.requests)) == (502, 502)  # validate, list, one write / read each
