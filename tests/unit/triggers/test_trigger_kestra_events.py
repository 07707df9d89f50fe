"""KestraExecutionEventTrigger against the simulator: payload, filters, sharing and the exactly-once ledger.

The trigger runs as Airflow 3.3's triggerer runs it: through ``SharedStreamManager`` (one poll loop, many
watchers) or standalone ``run()``; the asset state store is a dict-backed stand-in with the same
``aget``/``aset`` accessors Airflow injects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="event-driven scheduling needs Airflow 3")

NAMESPACE = "company.team"
FLOW = """id: {flow_id}
namespace: {namespace}
inputs:
  - id: fail
    type: BOOLEAN
    defaults: false
  - id: text
    type: STRING
    defaults: "ok"
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ inputs.fail }}}}"
outputs:
  - id: text
    type: STRING
    value: "{{{{ inputs.text }}}}"
"""


class FakeAccessor:
    """One asset's state: ``aget``/``aset`` as Airflow's ``AssetStateStoreAccessor`` has them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.writes += 1
        self.data[key] = value


class FakeStore:
    """``AssetStateStoreAccessors`` of a watcher of one or more assets."""

    def __init__(self, *names: str) -> None:
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in names}
        self._by_name = {name: FakeAccessor(table) for name, table in self.tables.items()}
        self._by_uri: dict[str, FakeAccessor] = {}


@pytest.fixture(params=["1.3", "2.0"], ids=["kestra1.3", "kestra2.0"])
def sim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[KestraSimulator]:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version=request.param) as simulator:
        monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", simulator.connection_uri())
        hook = KestraHook()
        for namespace, flow_id in [
            (NAMESPACE, "nightly"),
            (NAMESPACE, "other"),
            (f"{NAMESPACE}.sub", "nightly"),
            (f"{NAMESPACE}x", "nightly"),
        ]:
            hook.upsert_flow(FLOW.format(flow_id=flow_id, namespace=namespace))
        hook.close()
        yield simulator


@pytest.fixture(autouse=True)
def fast_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kestra.triggers import kestra_events

    monkeypatch.setattr(kestra_events, "COMMIT_DELAY_SECONDS", 0.2)


def run_flow(namespace: str = NAMESPACE, flow_id: str = "nightly", **inputs: Any) -> str:
    """Start an execution outside Airflow and wait until it has ended; returns its id."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    hook = KestraHook()
    try:
        labels = inputs.pop("labels", None)
        execution_id = str(hook.create_execution(namespace, flow_id, inputs=inputs, labels=labels)["id"])
        hook.wait_for_execution(execution_id, timeout=20, poll_interval=0.05)
        return execution_id
    finally:
        hook.close()


def make_trigger(**kwargs: Any) -> Any:
    from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger

    kwargs.setdefault("namespace", NAMESPACE)
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("hook_params", {"retry_limit": 0})
    return KestraExecutionEventTrigger(**kwargs)


class Watch:
    """A trigger's events collected in the background, like the triggerer does."""

    def __init__(self, trigger: Any, stream: AsyncIterator[Any] | None = None) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self._stream = stream if stream is not None else trigger.run()
        self.task = asyncio.ensure_future(self._collect())

    async def _collect(self) -> None:
        async for event in self._stream:
            self.events.append(event.payload)

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.05)
        return self.events

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.trigger.cleanup()


async def in_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(func, *args, **kwargs)


# ------------------------------------------------------------------------------------ construction


def test_serialize_round_trips_and_carries_no_secret(sim: KestraSimulator) -> None:
    from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger

    trigger = make_trigger(flow_id="nightly", states=["success", "WARNING"], labels={"team": "data"})
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_kestra.triggers.kestra_events.KestraExecutionEventTrigger"
    assert kwargs["states"] == ["SUCCESS", "WARNING"]
    assert KestraExecutionEventTrigger(**kwargs).serialize() == (path, kwargs)
    assert sim.password not in repr(kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": ""}, "namespace"),
        ({"states": []}, "state"),
        ({"poll_interval": 0}, "positive"),
        ({"look_back": -1}, "positive"),
    ],
)
def test_rejects_unusable_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_trigger(**kwargs)


def test_watchers_of_one_namespace_share_a_stream_key() -> None:
    base = make_trigger(flow_id="nightly").shared_stream_key()
    assert make_trigger(flow_id="other", labels={"a": "b"}, max_outputs_bytes=10).shared_stream_key() == base
    assert make_trigger(include_outputs=False).shared_stream_key() == base
    for different in (
        {"namespace": "company.other"},
        {"include_child_namespaces": True},
        {"states": ["FAILED"]},
        {"kestra_conn_id": "kestra_prod"},
        {"poll_interval": 60},
        {"look_back": 60},
    ):
        assert make_trigger(flow_id="nightly", **different).shared_stream_key() != base, different


def test_ledger_key_differs_per_filter_set() -> None:
    assert make_trigger(flow_id="a").state_key() != make_trigger(flow_id="b").state_key()
    assert make_trigger(flow_id="a").state_key() == make_trigger(flow_id="a", poll_interval=9).state_key()


# ------------------------------------------------------------------------------------ events


async def test_one_event_per_execution_with_its_payload(sim: KestraSimulator) -> None:
    before = await in_thread(run_flow)  # ended before the watcher existed: never fires
    watch = Watch(make_trigger(flow_id="nightly", labels={"team": "data"}))
    try:
        await asyncio.sleep(0.3)
        await in_thread(run_flow, fail=True, labels={"team": "data"})  # FAILED: not watched
        await in_thread(run_flow, flow_id="other", labels={"team": "data"})  # another flow
        await in_thread(run_flow, text="not ours")  # without the label
        wanted = await in_thread(run_flow, text="hello", labels={"team": "data"})
        events = await watch.wait_for(1)
        await asyncio.sleep(0.5)  # several more polls: still one event
    finally:
        await watch.stop()
    assert [e["execution_id"] for e in watch.events] == [wanted]
    assert before != wanted
    event = events[0]
    assert event["namespace"] == NAMESPACE
    assert event["flow_id"] == "nightly"
    assert event["state"] == "SUCCESS"
    assert event["labels"]["team"] == "data"
    assert event["outputs"] == {"text": "hello"}
    assert event["outputs_truncated"] is False
    assert event["start_date"] and event["end_date"] and event["end_date"] >= event["start_date"]
    assert event["url"] == f"{sim.url}/ui/main/executions/{NAMESPACE}/nightly/{wanted}"


async def test_outputs_above_the_limit_are_left_out_and_flagged(sim: KestraSimulator) -> None:
    watch = Watch(make_trigger(flow_id="nightly", max_outputs_bytes=20))
    try:
        await asyncio.sleep(0.3)
        small = await in_thread(run_flow, text="tiny")
        big = await in_thread(run_flow, text="x" * 100)
        await watch.wait_for(2)
    finally:
        await watch.stop()
    by_id = {e["execution_id"]: e for e in watch.events}
    assert by_id[small]["outputs"] == {"text": "tiny"} and by_id[small]["outputs_truncated"] is False
    assert by_id[big]["outputs"] is None and by_id[big]["outputs_truncated"] is True
    assert by_id[big]["outputs_size"] > 100


async def test_child_namespaces_only_when_asked(sim: KestraSimulator) -> None:
    exact = Watch(make_trigger(flow_id="nightly"))
    children = Watch(make_trigger(flow_id="nightly", include_child_namespaces=True))
    try:
        await asyncio.sleep(0.3)
        own = await in_thread(run_flow)
        child = await in_thread(run_flow, namespace=f"{NAMESPACE}.sub")
        await in_thread(run_flow, namespace=f"{NAMESPACE}x")  # a sibling with the same prefix text
        await children.wait_for(2)
        await exact.wait_for(1)
        await asyncio.sleep(0.4)
    finally:
        await exact.stop()
        await children.stop()
    assert [e["execution_id"] for e in exact.events] == [own]
    assert sorted(e["execution_id"] for e in children.events) == sorted([own, child])


async def test_watched_states_other_than_success(sim: KestraSimulator) -> None:
    watch = Watch(make_trigger(flow_id="nightly", states=["FAILED"]))
    try:
        await asyncio.sleep(0.3)
        await in_thread(run_flow)
        failed = await in_thread(run_flow, fail=True)
        await watch.wait_for(1)
        await asyncio.sleep(0.3)
    finally:
        await watch.stop()
    assert [(e["execution_id"], e["state"]) for e in watch.events] == [(failed, "FAILED")]


async def test_kestra_down_is_retried_not_fatal(sim: KestraSimulator) -> None:
    watch = Watch(make_trigger(flow_id="nightly"))
    try:
        await asyncio.sleep(0.3)
        sim.faults.fail(503, count=3, path="executions/search")
        execution_id = await in_thread(run_flow)
        await watch.wait_for(1)
    finally:
        await watch.stop()
    assert [e["execution_id"] for e in watch.events] == [execution_id]


# ------------------------------------------------------------------------------------ exactly once


async def test_restart_neither_duplicates_nor_loses(sim: KestraSimulator) -> None:
    store = FakeStore("kestra_nightly")
    first = make_trigger(flow_id="nightly")
    first.asset_state_store = store
    watch = Watch(first)
    await asyncio.sleep(0.3)
    one = await in_thread(run_flow)
    await watch.wait_for(1)
    await asyncio.sleep(0.6)  # past the commit delay: the event is recorded
    await watch.stop()

    two = await in_thread(run_flow)  # succeeds while no triggerer runs

    second = make_trigger(flow_id="nightly")
    second.asset_state_store = store
    again = Watch(second)
    try:
        await again.wait_for(1)
        await asyncio.sleep(0.5)
    finally:
        await again.stop()
    assert [e["execution_id"] for e in watch.events] == [one]
    assert [e["execution_id"] for e in again.events] == [two]
    ledger = store.tables["kestra_nightly"][first.state_key()]
    assert set(ledger["seen"]) == {one, two}


async def test_an_event_not_yet_recorded_fires_again_after_a_crash(sim: KestraSimulator) -> None:
    """Inside the commit delay the triggerer may not have stored the event: it must fire again (at least
    once), never be lost."""
    from airflow_provider_kestra.triggers import kestra_events

    kestra_events.COMMIT_DELAY_SECONDS = 30.0  # restored by the fast_commit fixture's monkeypatch
    store = FakeStore("kestra_nightly")
    first = make_trigger(flow_id="nightly")
    first.asset_state_store = store
    watch = Watch(first)
    await asyncio.sleep(0.3)
    one = await in_thread(run_flow)
    await watch.wait_for(1)
    await watch.stop()  # "crash" before the ledger write

    second = make_trigger(flow_id="nightly")
    second.asset_state_store = store
    again = Watch(second)
    try:
        await again.wait_for(1)
    finally:
        await again.stop()
    assert [e["execution_id"] for e in again.events] == [one]


async def test_every_watched_asset_gets_the_ledger(sim: KestraSimulator) -> None:
    store = FakeStore("asset_a", "asset_b")
    trigger = make_trigger(flow_id="nightly")
    trigger.asset_state_store = store
    watch = Watch(trigger)
    try:
        await asyncio.sleep(0.3)
        one = await in_thread(run_flow)
        await watch.wait_for(1)
        await asyncio.sleep(0.6)
    finally:
        await watch.stop()
    for table in store.tables.values():
        assert set(table[trigger.state_key()]["seen"]) == {one}


def test_ledger_prunes_what_no_search_can_return() -> None:
    from datetime import datetime, timedelta, timezone

    from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventLedger

    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    ledger = KestraExecutionEventLedger.from_documents([None], now - timedelta(hours=1))
    old = {"execution_id": "old", "start_date": "2026-01-01T00:00:00Z", "reached_at": "2026-01-02T00:00:00Z"}
    new = {"execution_id": "new", "start_date": "2026-01-01T23:30:00Z", "reached_at": "2026-01-02T00:00:00Z"}
    for event in (old, new):
        assert ledger.accepts(event)
        ledger.mark(event)
    assert not ledger.accepts(new)
    ledger.prune(now, look_back=3600)
    assert set(ledger.seen) == {"old", "new"}  # still pending: kept
    ledger.settle(time.monotonic() + 1)
    ledger.prune(now, look_back=3600)
    assert set(ledger.document()["seen"]) == {"new"}
    too_early = {"execution_id": "x", "start_date": "2026-01-01T22:00:00Z", "reached_at": "2026-01-01T22:59Z"}
    assert not ledger.accepts(too_early)  # reached its state before the watcher existed


# ------------------------------------------------------------------------------------ sharing


async def test_many_watchers_share_one_search_per_poll(sim: KestraSimulator) -> None:
    """Through Airflow's own SharedStreamManager: 20 watchers of one namespace, one search per interval."""
    import httpx
    from airflow.triggers.shared_stream import SharedStreamManager

    searches = 0
    original = httpx.AsyncClient.send

    async def counting_send(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        nonlocal searches
        if request.url.path.endswith("/executions/search"):
            searches += 1
        return await original(client, request, **kwargs)

    manager = SharedStreamManager()
    triggers = [make_trigger(flow_id="nightly" if i % 2 else "other", poll_interval=0.5) for i in range(20)]
    assert len({t.shared_stream_key() for t in triggers}) == 1
    httpx.AsyncClient.send = counting_send  # type: ignore[method-assign]
    watches = []
    try:
        for index, trigger in enumerate(triggers):
            shared = manager.subscribe(trigger_id=index, trigger=trigger, key=trigger.shared_stream_key())
            stream = trigger.filter_shared_stream(shared)
            watches.append(Watch(trigger, stream))
        started = time.monotonic()
        await asyncio.sleep(0.2)
        nightly = await in_thread(run_flow)
        other = await in_thread(run_flow, flow_id="other")
        for watch in watches:
            await watch.wait_for(1)
        elapsed = time.monotonic() - started
    finally:
        for watch in watches:
            await watch.stop()
        await manager.stop_all()
        httpx.AsyncClient.send = original  # type: ignore[method-assign]
    for index, watch in enumerate(watches):
        assert [e["execution_id"] for e in watch.events] == [nightly if index % 2 else other]
    assert searches <= elapsed / 0.5 + 2, (searches, elapsed)


def test_dag_files_using_the_trigger_stay_light() -> None:
    """DAG files import this module: it must not load HTTP clients, YAML, the hooks or the simulator."""
    import json
    import subprocess
    import sys

    probe = (
        "import sys; import airflow.sdk; from airflow.triggers.base import BaseEventTrigger;"
        "before = set(sys.modules);"
        "from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger;"
        "KestraExecutionEventTrigger(namespace='a', flow_id='b').shared_stream_key();"
        "import json; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    added = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = ("requests", "httpx", "yaml", "airflow_provider_kestra.hooks", "airflow_provider_kestra.testing")
    assert [m for m in added if m.split(".")[0] in heavy or m.startswith(heavy)] == []


@pytest.mark.parametrize(
    ("profile", "extra", "expected"),
    [
        ("1.3", "", "{url}/ui/main/executions/company.team/nightly/ex1"),
        ("1.3", "?ui_url=https%3A%2F%2Fkestra.example.com%2Fui", "https://kestra.example.com/ui/main/executions/company.team/nightly/ex1"),
        ("0.22", "", "{url}/ui/executions/company.team/nightly/ex1"),
    ],
)  # fmt: skip
async def test_event_url_is_the_hooks_ui_url(profile: str, extra: str, expected: str) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
    from airflow_provider_kestra.testing import KestraSimulator

    execution = {"id": "ex1", "namespace": "company.team", "flowId": "nightly"}
    with KestraSimulator(kestra_version=profile) as simulator, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", simulator.connection_uri() + extra)
        async with KestraAsyncHook() as hook:
            url = await hook.execution_ui_url(execution)
        sync_hook = KestraHook()
        assert url == sync_hook.execution_ui_url(execution) == expected.format(url=simulator.url)
        sync_hook.close()
