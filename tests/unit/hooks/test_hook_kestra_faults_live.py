"""Issue 10 against the simulator, through the fault proxy of ``tests/reliability`` (real HTTP, real
time): malformed and trickling event streams, unreadable create answers with a lagging search, outages,
Retry-After against a deadline, big executions on the async hook's event loop. Each wait runs on both
hooks. Time bounds are generous (functional checks, not benchmarks).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_fault_proxy import KestraFaultProxy

from airflow_provider_kestra.exceptions import KestraWaitTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator

TRANSPORTS = ["sync", "async"]
FLOWS = "---\n".join(
    f"id: {flow_id}\nnamespace: issue10\ntasks:\n  - id: {task}\n    type: io.kestra.plugin.core.{kind}\n"
    for flow_id, task, kind in [
        ("nap", "nap", "flow.Sleep\n    duration: PT2S"),
        ("long", "nap", "flow.Sleep\n    duration: PT60S"),
        ("quick", "hello", "log.Log\n    message: hello"),
    ]
)
HOOK = {"retry_limit": 1, "retry_delay": 0.2, "request_timeout": 3}


@pytest.fixture(scope="module")
def kestra() -> Iterator[tuple[KestraSimulator, KestraFaultProxy]]:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as sim, KestraFaultProxy(sim.url) as proxy:
        yield sim, proxy


@pytest.fixture
def proxy(
    kestra: tuple[KestraSimulator, KestraFaultProxy], monkeypatch: pytest.MonkeyPatch
) -> KestraFaultProxy:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    sim, fault_proxy = kestra
    fault_proxy.clear()
    sim.faults.clear()
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", fault_proxy.connection_uri(sim.connection_uri()))
    with KestraHook() as hook:
        hook.deploy_flows(FLOWS)
    return fault_proxy


def start(flow_id: str, **labels: str) -> str:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    with KestraHook(**HOOK) as hook:  # type: ignore[arg-type]
        return str(hook.create_execution("issue10", flow_id, labels=labels or None)["id"])


def wait(kind: str, execution_id: str, *, timeout: float | None = 60, poll_interval: float = 1.0) -> Any:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    if kind == "sync":
        with KestraHook(**HOOK) as hook:  # type: ignore[arg-type]
            return hook.wait_for_execution(execution_id, timeout=timeout, poll_interval=poll_interval)

    async def run() -> Any:
        async with KestraAsyncHook(**HOOK) as ahook:  # type: ignore[arg-type]
            deadline = time.time() + timeout if timeout is not None else None
            return await ahook.wait_for_execution(
                execution_id, deadline=deadline, poll_interval=poll_interval
            )

    return asyncio.run(run())


# --------------------------------------------------------------------------- 2. malformed stream frames
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_pings_and_frames_split_anywhere_never_fail_the_wait(proxy: KestraFaultProxy, kind: str) -> None:
    proxy.sse_inject(r"/follow$", frame=b"data: ping\n\n: keep-alive\n\n")
    proxy.sse_split(r"/follow$", chunk=(1, 7))
    final = wait(kind, start("nap"))
    assert final["state"]["current"] == "SUCCESS"
    assert proxy.count("sse_inject") >= 1


# -------------------------------------------------------------------------- 6. trickling event streams
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_trickling_stream_sees_the_end_within_the_poll_interval(proxy: KestraFaultProxy, kind: str) -> None:
    proxy.sse_comments_only(r"/follow$", every=0.3)
    execution_id = start("nap")
    began = time.monotonic()
    final = wait(kind, execution_id, poll_interval=1.0)
    assert final["state"]["current"] == "SUCCESS"
    assert time.monotonic() - began < 2 + 1 + 8  # the 2 s flow + one poll interval + slack


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_trickling_stream_does_not_outlive_the_deadline(proxy: KestraFaultProxy, kind: str) -> None:
    proxy.sse_comments_only(r"/follow$", every=0.3)
    execution_id = start("long")
    began = time.monotonic()
    with pytest.raises(KestraWaitTimeout):
        wait(kind, execution_id, timeout=3, poll_interval=30)
    assert time.monotonic() - began < 3 + HOOK["request_timeout"] + 5


# ----------------------------------------------------------------------------------------- 4. outages
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_an_outage_longer_than_the_retries_is_waited_out(proxy: KestraFaultProxy, kind: str) -> None:
    execution_id = start("nap")
    outages = proxy.count("outage")
    proxy.outage(5, mode="refuse")  # retry_limit=1 would give up in well under a second
    final = wait(kind, execution_id, timeout=60)
    assert final["state"]["current"] == "SUCCESS"
    assert proxy.count("outage") == outages + 1


# ------------------------------------------------------------------ 13. never sleep past the deadline
@pytest.mark.parametrize("kind", TRANSPORTS)
def test_retry_after_never_pushes_the_wait_past_its_deadline(proxy: KestraFaultProxy, kind: str) -> None:
    execution_id = start("long")
    proxy.status(r"/executions/", code=503, retry_after=120)
    began = time.monotonic()
    with pytest.raises(KestraWaitTimeout):
        wait(kind, execution_id, timeout=3)
    assert time.monotonic() - began < 3 + HOOK["request_timeout"] + 2


# ------------------------------------------------------------ 5. unknown outcome of the create request
@pytest.mark.parametrize(("answer", "lag"), [("html_200", 15), ("empty_200", 4), ("garbage_json", 4)])
def test_an_unreadable_create_answer_is_resolved_by_a_lagging_label_search(
    kestra: tuple[KestraSimulator, KestraFaultProxy], proxy: KestraFaultProxy, lag: float, answer: str
) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    sim = kestra[0]
    label = f"{answer}-{lag}-{time.time_ns()}"
    getattr(proxy, answer)(r"/executions/issue10/quick$", method="POST", forward=True, count=1)
    proxy.search_lag(lag)
    before = sim.requests.count("POST", r"/executions/issue10/quick$")
    with KestraHook(**HOOK) as hook:  # type: ignore[arg-type]
        created = hook.create_execution(
            "issue10", "quick", labels={"airflow.try_id": label}, idempotency_label_key="airflow.try_id"
        )
        assert created["id"]
        found = hook.search_executions(namespace="issue10", flow_id="quick", labels={"airflow.try_id": label})
    assert sim.requests.count("POST", r"/executions/issue10/quick$") - before == 1  # never sent twice
    assert [e["id"] for e in found] == [created["id"]]


def test_a_404_just_after_create_is_read_after_write_lag(
    kestra: tuple[KestraSimulator, KestraFaultProxy], proxy: KestraFaultProxy
) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    kestra[0].faults.read_after_write_lag(3)
    with KestraHook(**HOOK) as hook:  # type: ignore[arg-type]
        created = hook.create_execution("issue10", "quick")
        assert hook.get_execution(created["id"])["id"] == created["id"]
    proxy.lag_404(seconds=3)
    assert wait("async", start("quick"))["state"]["current"] == "SUCCESS"


# ----------------------------------------------------- 9. a big execution does not stall the event loop
def test_a_big_execution_is_decoded_off_the_event_loop(
    proxy: KestraFaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    values = ", ".join(f'"v{i}"' for i in range(1500))
    flow = f"""id: big
namespace: issue10
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    concurrencyLimit: 0
    values: [{values}]
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ taskrun.value }}}}"
"""
    with KestraHook() as hook:
        hook.deploy_flows(flow)
        execution_id = str(hook.create_execution("issue10", "big")["id"])
    threads: list[str] = []
    real_to_thread = asyncio.to_thread

    async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        def spy() -> Any:
            threads.append(threading.current_thread().name)
            return func(*args, **kwargs)

        return await real_to_thread(spy)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)

    async def run() -> tuple[Any, float]:
        worst = 0.0
        done = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal worst
            while not done.is_set():
                began = time.perf_counter()
                await asyncio.sleep(0.05)
                worst = max(worst, time.perf_counter() - began - 0.05)

        beat = asyncio.create_task(heartbeat())
        async with KestraAsyncHook(**HOOK) as ahook:  # type: ignore[arg-type]
            final = await ahook.wait_for_execution(execution_id, deadline=time.time() + 120, poll_interval=1)
            await ahook.get_execution(execution_id)
        done.set()
        await beat
        return final, worst

    final, worst = asyncio.run(run())
    assert final["state"]["current"] == "SUCCESS" and len(final["taskRunList"]) == 1501
    assert threads and all(name != threading.main_thread().name for name in threads)
    assert worst < 1.0  # generous: a blocking decode of every frame on the loop would show more
