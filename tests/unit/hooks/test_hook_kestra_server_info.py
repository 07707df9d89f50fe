"""The per-process answer of ``GET /api/v1/configs`` (``hooks/kestra_server_info.py``): stored per server
for ten minutes (at most 64 servers), only when the server answered, never with a hook's own pin; asked
once by concurrent coroutines of one loop; a pinned ``api_version`` still sends nothing; the connection
test still asks the server. Scenarios that apply to both hooks run through the ``transport`` fixture."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import respx
from kestra_hook_transports import Reply
from support.kestra_payloads import BASE, CONN_URI_V1

from airflow_provider_kestra.exceptions import KestraAuthenticationError, KestraServerError
from airflow_provider_kestra.hooks.kestra_server_info import (
    SERVER_INFO_CACHE,
    KestraServerFacts,
    KestraServerInfoCache,
    server_key,
)
from airflow_provider_kestra.utils.routes import KestraApiVersion

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from kestra_hook_transports import KestraTransport

    from airflow_provider_kestra.testing import KestraSimulator

CONFIGS = "/api/v1/configs"
V1 = KestraServerFacts("1.3.25", "OSS", KestraApiVersion.V1, False)
V2 = KestraServerFacts("2.0.0", "OSS", KestraApiVersion.V2, False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------- the cache itself
def test_servers_are_told_apart_by_scheme_host_port_and_path_only() -> None:
    assert server_key("http://Kestra.Test:80/") == server_key("http://kestra.test") == "http://kestra.test:80"
    assert server_key("https://kestra.test") == "https://kestra.test:443"
    assert server_key("http://kestra.test:8080/base/") == "http://kestra.test:8080/base"
    assert len({server_key(u) for u in ("http://k:1", "https://k:1", "http://k:2", "http://k:1/p")}) == 4


def test_hit_miss_and_expiry() -> None:
    clock = FakeClock()
    cache = KestraServerInfoCache(ttl=600, clock=clock)
    assert cache.get("a") is None
    cache.put("a", V1)
    clock.now += 599
    assert cache.get("a") == V1
    clock.now += 1
    assert cache.get("a") is None and len(cache) == 0, "an expired answer is dropped"


def test_the_least_recently_used_server_goes_first() -> None:
    cache = KestraServerInfoCache(max_servers=2)
    cache.put("a", V1)
    cache.put("b", V2)
    assert cache.get("a") == V1  # a is now the most recently used
    cache.put("c", V1)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (V1, None, V1)


def test_facts_carry_no_pin_and_a_hook_applies_its_own() -> None:
    assert V2.info(None)["api_version"] == "2"
    assert V2.info(KestraApiVersion.V1) == {
        "version": "2.0.0",
        "edition": "OSS",
        "api_version": "1",
        "is_simulator": False,
    }


# ------------------------------------------------------------------------------------ through both hooks
def configs_route(transport: KestraTransport, *replies: Reply) -> Any:
    """Replace the fixture's ``/configs`` mock with ``replies`` (the last one repeats)."""
    queue = list(replies)
    return transport.reply_with("GET", CONFIGS, lambda: queue.pop(0) if len(queue) > 1 else queue[0])


async def server_info_of_new_hook(transport: KestraTransport, conn_id: str = "kestra_default") -> Any:
    """``server_info()`` of a second hook of the transport's kind (no retries), closed afterwards."""
    hook = type(transport.hook)(conn_id, retry_limit=0)
    try:
        result = hook.server_info()
        return await result if asyncio.iscoroutine(result) else result
    finally:
        closing = hook.aclose() if hasattr(hook, "aclose") else hook.close()
        if asyncio.iscoroutine(closing):
            await closing


@pytest.mark.parametrize("kestra_version", ["2.0.0"])
async def test_a_second_hook_of_the_same_server_sends_nothing(transport: KestraTransport) -> None:
    configs = configs_route(transport, Reply(json={"version": "2.0.0", "edition": "OSS"}))
    first = await transport.call("server_info")
    second = await server_info_of_new_hook(transport)
    assert first == second and first["api_version"] == "2"
    assert configs.call_count == 1


async def test_a_failed_answer_is_not_stored(transport: KestraTransport) -> None:
    configs = configs_route(transport, Reply(401), Reply(json={"version": "1.3.25"}))
    with pytest.raises(KestraAuthenticationError):
        await transport.call("server_info")
    assert len(SERVER_INFO_CACHE) == 0
    assert (await server_info_of_new_hook(transport))["version"] == "1.3.25"
    assert configs.call_count == 2 and len(SERVER_INFO_CACHE) == 1


@pytest.mark.parametrize("kestra_version", ["2.0.0"])
async def test_a_pinned_connection_sends_nothing_and_reports_its_pin(
    transport: KestraTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_PINNED", CONN_URI_V1)
    configs = configs_route(transport, Reply(json={"version": "2.0.0"}))
    pinned = type(transport.hook)("kestra_pinned")
    version = pinned.api_version() if transport.name == "async" else pinned.api_version
    assert (await version if asyncio.iscoroutine(version) else version) is KestraApiVersion.V1
    assert configs.call_count == 0, "a pinned api_version never asks"
    assert (await transport.call("server_info"))["api_version"] == "2"
    assert (await server_info_of_new_hook(transport, "kestra_pinned"))["api_version"] == "1"
    assert configs.call_count == 1, "the pinned hook's server_info used the stored answer"
    assert SERVER_INFO_CACHE.get(server_key(BASE)) == KestraServerFacts(
        "2.0.0", None, KestraApiVersion.V2, False
    )
    if transport.name == "async":
        await pinned.aclose()


async def test_an_answer_older_than_ten_minutes_is_asked_again(
    transport: KestraTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(SERVER_INFO_CACHE, "_clock", clock)
    configs = configs_route(transport, Reply(json={"version": "1.3.25"}), Reply(json={"version": "2.0.0"}))
    assert (await transport.call("server_info"))["api_version"] == "1"
    clock.now += 599
    assert (await server_info_of_new_hook(transport))["api_version"] == "1"
    clock.now += 1
    assert (await server_info_of_new_hook(transport))["api_version"] == "2", "an upgrade is seen"
    assert configs.call_count == 2


def test_the_connection_test_asks_the_server_and_refreshes_the_answer(hook: Any, http: Any) -> None:
    SERVER_INFO_CACHE.put(server_key(BASE), KestraServerFacts("0.22.1", None, KestraApiVersion.V0_22, False))
    http.get(f"{BASE}/api/v1/main/flows/search", json={"results": [], "total": 0})
    ok, message = hook.test_connection()
    assert ok, message
    configs = [r for r in http.request_history if r.path == CONFIGS]
    assert len(configs) == 1
    stored = SERVER_INFO_CACHE.get(server_key(BASE))
    assert stored is not None and stored.version in ("1.3.25", "2.0.0-SNAPSHOT")


# -------------------------------------------------------------------------------- single flight (async)
@pytest.fixture
async def sim_hooks(kestra_sim: KestraSimulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    """Twenty async hooks of the simulator's connection, the journal emptied."""
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", kestra_sim.connection_uri())
    kestra_sim.faults.clear()
    hooks = [KestraAsyncHook() for _ in range(20)]
    kestra_sim.requests.clear()
    yield hooks
    for hook in hooks:
        await hook.aclose()


async def test_concurrent_hooks_send_one_request(kestra_sim: KestraSimulator, sim_hooks: list[Any]) -> None:
    versions = await asyncio.gather(*(hook.api_version() for hook in sim_hooks))
    assert len(set(versions)) == 1
    assert kestra_sim.requests.count("GET", r"/api/v1/configs$") == 1


async def test_concurrent_coroutines_of_one_hook_send_one_request(
    kestra_sim: KestraSimulator, sim_hooks: list[Any]
) -> None:
    hook = sim_hooks[0]
    await asyncio.gather(hook.api_version(), hook.server_info(), hook.api_version(), hook.server_info())
    assert kestra_sim.requests.count("GET", r"/api/v1/configs$") == 1


@pytest.fixture
def held_configs(kestra_conn: str) -> Any:
    """``/configs`` mocked with respx; each answer waits for ``release`` (503 first, then 1.3.25)."""
    with respx.mock(assert_all_called=False) as router:
        release, asked = asyncio.Event(), asyncio.Event()
        answers = [httpx.Response(503), httpx.Response(200, json={"version": "1.3.25"})]

        async def answer(request: httpx.Request) -> httpx.Response:
            asked.set()
            await release.wait()
            return answers.pop(0) if len(answers) > 1 else answers[0]

        route = router.get(f"{BASE}{CONFIGS}").mock(side_effect=answer)
        route.release, route.asked = release, asked  # type: ignore[attr-defined]
        yield route


async def asked(route: Any) -> None:
    """Until the first request reached the mocked server (a deadline against a hang, not a timing)."""
    await asyncio.wait_for(route.asked.wait(), 30)


async def test_a_failure_in_flight_reaches_every_waiter_and_is_not_stored(held_configs: Any) -> None:
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    hooks = [KestraAsyncHook(retry_limit=0) for _ in range(5)]
    asking = asyncio.gather(*(hook.server_info() for hook in hooks), return_exceptions=True)
    await asked(held_configs)
    for _ in range(50):  # the other hooks reach the request in flight and await it
        await asyncio.sleep(0)
    held_configs.release.set()
    results = await asking
    assert all(isinstance(result, KestraServerError) for result in results), results
    assert held_configs.call_count == 1 and len(SERVER_INFO_CACHE) == 0
    assert (await hooks[1].server_info())["version"] == "1.3.25"
    assert held_configs.call_count == 2
    for hook in hooks:
        await hook.aclose()


async def test_when_the_asking_coroutine_is_cancelled_a_waiter_asks(held_configs: Any) -> None:
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    owner, waiter = KestraAsyncHook(), KestraAsyncHook()
    asking = asyncio.ensure_future(owner.server_info())
    await asked(held_configs)
    waiting = asyncio.ensure_future(waiter.server_info())
    for _ in range(50):  # the waiter reaches the request in flight and awaits it
        await asyncio.sleep(0)
    assert not waiting.done() and held_configs.call_count == 0
    held_configs.side_effect = None
    held_configs.return_value = httpx.Response(200, json={"version": "1.3.25"})
    asking.cancel()
    assert (await waiting)["version"] == "1.3.25"
    assert asking.cancelled() and held_configs.call_count == 1, "the waiter's own request (answered)"
    await owner.aclose()
    await waiter.aclose()
