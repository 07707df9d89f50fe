"""One ``httpx.AsyncClient`` per settings and event loop (``hooks/kestra_clients.py``), shared by every
``KestraAsyncHook``: leases, the idle close after the last one, settings told apart, keep-alive limits,
verified TLS (also behind an http:// URL's redirects), nothing left open when a loop ends (with or without
``aclose``), and hooks starting together paced a few per loop turn."""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from support.kestra_payloads import CONN_URI_V1, TOKEN

from airflow_provider_kestra.hooks import kestra_async
from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
from airflow_provider_kestra.hooks.kestra_clients import (
    ASYNC_CLIENTS,
    KEEPALIVE_SECONDS,
    MAX_KEEPALIVE_CONNECTIONS,
    KestraAsyncClientRegistry,
    KestraStartPacer,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = pytest.mark.usefixtures("pinned_conn")


@pytest.fixture
def pinned_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test server with API version 1 pinned: these tests send no request unless they say so."""
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", CONN_URI_V1)
    return CONN_URI_V1


@pytest.fixture
def idle_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The idle countdown of a client with no lease is zero seconds (the next loop turn closes it)."""
    monkeypatch.setattr(ASYNC_CLIENTS, "idle_seconds", 0.0)
    yield


async def turns(n: int = 20) -> None:
    """Let the loop run ``n`` turns (timer callbacks, the close task)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_hooks_of_the_same_settings_share_one_client() -> None:
    first, second = KestraAsyncHook(), KestraAsyncHook()
    client = await first.client()
    assert await second.client() is client and await first.client() is client
    assert ASYNC_CLIENTS.users(client) == 2 and ASYNC_CLIENTS.open_clients() == 1
    await first.aclose()
    await first.aclose()  # a second aclose gives nothing back twice
    assert ASYNC_CLIENTS.users(client) == 1 and not client.is_closed
    await second.aclose()
    assert ASYNC_CLIENTS.users(client) == 0 and not client.is_closed, "kept open for the idle grace"


@pytest.mark.usefixtures("idle_now")
async def test_the_last_lease_closes_the_client_after_the_grace() -> None:
    hook = KestraAsyncHook()
    client = await hook.client()
    await hook.aclose()
    await turns()
    assert client.is_closed and ASYNC_CLIENTS.open_clients() == 0
    assert await hook.client() is not client, "a hook used again gets a new client"
    await hook.aclose()


async def test_a_hook_that_comes_within_the_grace_takes_the_open_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = KestraAsyncHook()
    client = await ended.client()
    await ended.aclose()
    monkeypatch.setattr(ASYNC_CLIENTS, "idle_seconds", 0.0)  # a countdown already running is not shortened
    await turns()
    follower = KestraAsyncHook()
    assert await follower.client() is client
    await turns()
    assert not client.is_closed, "the new lease stopped the countdown"
    await follower.aclose()


async def test_other_settings_get_other_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_TOKEN", f"kestra://kestra.test:8080?token={TOKEN}&api_version=1")
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_OTHER", f"{CONN_URI_V1}&tenant=acme")
    hooks = [
        KestraAsyncHook(),
        KestraAsyncHook(request_timeout=7),
        KestraAsyncHook("kestra_token"),
        KestraAsyncHook("kestra_other"),  # the tenant is in the path of each request, not in the client
    ]
    clients = [await hook.client() for hook in hooks]
    assert len({id(client) for client in clients[:3]}) == 3 and clients[3] is clients[0]
    assert clients[2].headers["Authorization"] == f"Bearer {TOKEN}"
    fingerprint = hooks[2]._client_fingerprint(await hooks[2].settings())
    assert TOKEN not in fingerprint and len(fingerprint) == 64
    for hook in hooks:
        await hook.aclose()


async def test_the_client_keeps_connections_for_polls_and_caps_none() -> None:
    async with KestraAsyncHook() as hook:
        client = await hook.client()
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_connections == sys.maxsize  # httpcore's "no cap"
        assert pool._max_keepalive_connections == MAX_KEEPALIVE_CONNECTIONS
        assert pool._keepalive_expiry == KEEPALIVE_SECONDS > 5.0, "longer than the 5 s poll interval"
        assert client.cookies.jar._policy.allowed_domains() == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_every_client_verifies_tls_with_the_shared_context(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """Also over ``http://``: the client follows redirects, and an ``https://`` hop must be checked."""
    made: list[object] = []
    real = kestra_async.shared_ssl_context

    def counted(verify: bool | str) -> Any:
        made.append(verify)
        return real(verify)

    monkeypatch.setattr(kestra_async, "shared_ssl_context", counted)
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_TLS", f"kestra://kestra.test/{scheme}?api_version=1")
    async with KestraAsyncHook("kestra_tls") as hook:
        assert (await hook.settings()).base_url.startswith(f"{scheme}://")
        await hook.client()
    assert made == [True]


def test_a_loop_that_ends_closes_its_clients_and_a_new_loop_gets_a_new_one() -> None:
    hook = KestraAsyncHook()
    first = asyncio.run(hook.client())  # never given back: the loop's shutdown closes it
    assert first.is_closed
    second = asyncio.run(hook.client())
    assert second is not first and second.is_closed


def test_the_registry_drops_the_clients_of_a_closed_loop() -> None:
    registry = KestraAsyncClientRegistry()
    loop = asyncio.new_event_loop()
    lease = loop.run_until_complete(registry.acquire("f", lambda: __import__("httpx").AsyncClient()))
    loop.run_until_complete(lease.client.aclose())
    loop.close()  # closed without shutdown_asyncgens: the entry stays until the next acquire
    registry.release(lease)  # a lease of a closed loop ends quietly

    async def other() -> int:
        async with __import__("httpx").AsyncClient() as client:
            again = await registry.acquire("f", lambda: client)
            registry.release(again)
            return len(registry._loops)

    assert asyncio.run(other()) == 1


async def test_no_socket_is_left_open_when_hooks_and_loops_end(
    kestra_sim: KestraSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", kestra_sim.connection_uri())

    async def use() -> None:
        hooks = [KestraAsyncHook() for _ in range(3)]
        await asyncio.gather(*(hook.server_info() for hook in hooks))
        await hooks[0].aclose()  # the others never give their client back

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await asyncio.to_thread(asyncio.run, use())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [
        str(w.message) for w in caught
    ]


# ------------------------------------------------------------------------------------ start-up pacing
async def test_hooks_starting_together_go_a_few_per_loop_turn_in_order() -> None:
    pacer = KestraStartPacer(per_turn=2)
    turn, passed = 0, []

    async def ticker() -> None:
        nonlocal turn
        while True:
            await asyncio.sleep(0)
            turn += 1

    async def start(index: int) -> None:
        await pacer.turn()
        passed.append((index, turn))

    ticking = asyncio.ensure_future(ticker())
    await asyncio.gather(*(start(i) for i in range(7)))
    ticking.cancel()
    assert [index for index, _ in passed] == list(range(7)), "first come, first started"
    per_turn = Counter(at for _, at in passed)
    assert max(per_turn.values()) <= 2 and len(per_turn) >= 4


async def test_a_lone_hook_starts_at_once_and_a_cancelled_one_blocks_nobody() -> None:
    pacer = KestraStartPacer(per_turn=1)
    await pacer.turn()  # nobody else: no wait for a turn
    waiting = [asyncio.ensure_future(pacer.turn()) for _ in range(3)]
    await asyncio.sleep(0)  # the first of them takes this turn, the two others queue
    assert waiting[0].done() and not waiting[1].done()
    waiting[1].cancel()
    await asyncio.wait_for(waiting[2], 30)
    assert waiting[1].cancelled()
