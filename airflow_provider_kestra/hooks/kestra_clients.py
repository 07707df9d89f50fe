"""Shared ``httpx.AsyncClient``s per connection settings and event loop, for every ``KestraAsyncHook``.

A triggerer runs hundreds of Kestra triggers on one loop. With a client each, every trigger paid its own
client, and httpx's 5 s keep-alive equalled the 5 s poll interval, so every poll opened a new connection.
:data:`ASYNC_CLIENTS` lends a client to every hook with the same settings on the same loop (counted
leases, up to :data:`HOOKS_PER_CLIENT` hooks per client). When a client's last lease ends, it stays
open :data:`IDLE_CLOSE_SECONDS` more, so trigger churn does not reopen connections, then it is closed.
Clients of a loop that shuts down are closed with it (``loop.shutdown_asyncgens()``, which
``asyncio.run`` and ``asyncio.Runner`` call); a closed loop's clients are dropped. httpx is imported by
the hook that builds the client, not here. :data:`START_PACER` lets hooks that start together begin one
per turn of the loop. Internal to the hooks package.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable

    import httpx

IDLE_CLOSE_SECONDS = 30.0
"""How long a client nobody uses stays open (a trigger that ends is often followed by another)."""
KEEPALIVE_SECONDS = 30.0
"""How long an idle connection of a client is kept: longer than the 5 s poll interval, so polls reuse it."""
MAX_KEEPALIVE_CONNECTIONS = 100
"""Idle connections a client keeps. There is no cap on open connections: every waiting trigger holds an
event stream, and a cap would queue polls behind streams."""
STARTS_PER_TURN = 1
"""How many async hooks may begin (settings, client, first request) per turn of the event loop (see
:class:`KestraStartPacer`)."""
HOOKS_PER_CLIENT = 16
"""How many hooks share one client (see :class:`KestraAsyncClientRegistry`): enough to reuse connections,
few enough that httpcore's walk over a pool's connections stays short. httpcore walks every connection of
the pool (and polls each idle one's socket) on each request and each response closed; every waiting trigger
holds one streaming connection, so with 64 per client the walks were a quarter of the triggerer's CPU while
5,000 triggers started (bench 12.2, issue 12)."""


def client_fingerprint(parts: Iterable[object]) -> str:
    """A digest of everything a client is built with; secrets (the auth header) go in only hashed."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(eq=False)
class KestraSharedClient:
    """One shared client and how many hooks hold it."""

    client: httpx.AsyncClient
    users: int = 0
    idle: asyncio.TimerHandle | None = None
    """The countdown to its close, while nobody holds it."""


@dataclass(eq=False)
class KestraClientLease:
    """One hook's use of a shared client: returned by :meth:`KestraAsyncClientRegistry.acquire`, handed
    back to :meth:`KestraAsyncClientRegistry.release` once."""

    loop: asyncio.AbstractEventLoop
    fingerprint: str
    shared: KestraSharedClient

    @property
    def client(self) -> httpx.AsyncClient:
        return self.shared.client


@dataclass(eq=False)
class _KestraLoopClients:
    """The clients of one event loop by settings fingerprint, and what closes them at the loop's end."""

    clients: dict[str, list[KestraSharedClient]] = field(default_factory=dict)
    closing: set[asyncio.Task[None]] = field(default_factory=set)
    keeper: AsyncGenerator[None, None] | None = None


class KestraAsyncClientRegistry:
    """Shared ``httpx.AsyncClient``s by (event loop, settings fingerprint), with lease counts.

    A client serves at most ``hooks_per_client`` hooks; more hooks of the same settings get a further
    client. httpcore's pool walks all of its connections whenever a request starts or a response ends,
    and every waiting trigger holds an event stream open: one client for 5,000 triggers made each request
    walk 5,000 connections (quadratic at start-up, and a steady cost for every poll).
    """

    def __init__(
        self, idle_seconds: float = IDLE_CLOSE_SECONDS, hooks_per_client: int = HOOKS_PER_CLIENT
    ) -> None:
        self.idle_seconds = idle_seconds
        self.hooks_per_client = hooks_per_client
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KestraLoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def open_clients(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """How many clients are open on ``loop`` (default: the running one), held or idle."""
        clients = self._loops.get(loop or asyncio.get_running_loop())
        return sum(len(shared) for shared in clients.clients.values()) if clients is not None else 0

    def users(self, client: httpx.AsyncClient) -> int:
        """How many hooks hold ``client`` (0 for an idle or unknown client)."""
        for clients in list(self._loops.values()):
            for shards in clients.clients.values():
                for shared in shards:
                    if shared.client is client:
                        return shared.users
        return 0

    async def acquire(self, fingerprint: str, build: Callable[[], httpx.AsyncClient]) -> KestraClientLease:
        """Lease a client of these settings on the running loop: one with room (idle ones included), else
        a new one from ``build()``."""
        loop = asyncio.get_running_loop()
        self._drop_closed_loops()
        clients = self._loops.get(loop)
        if clients is None:
            clients = self._loops[loop] = _KestraLoopClients()
            clients.keeper = self._keeper(clients)
            await clients.keeper.__anext__()  # registered with the loop: its shutdown closes the clients
        shards = clients.clients.setdefault(fingerprint, [])
        shards[:] = [shared for shared in shards if not shared.client.is_closed]
        shared = next((s for s in shards if s.users < self.hooks_per_client), None)
        if shared is None:
            shared = KestraSharedClient(build())
            shards.append(shared)
        if shared.idle is not None:
            shared.idle.cancel()
            shared.idle = None
        shared.users += 1
        return KestraClientLease(loop, fingerprint, shared)

    def release(self, lease: KestraClientLease) -> None:
        """End a lease; a client's last lease starts its idle countdown. A lease of a closed loop (or of a
        client closed meanwhile) ends without anything else to do."""
        shared = lease.shared
        shared.users = max(0, shared.users - 1)
        if shared.users or lease.loop.is_closed() or shared.client.is_closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            if _running_loop() is lease.loop:
                self._count_down(lease)
            else:
                lease.loop.call_soon_threadsafe(self._count_down, lease)

    async def aclose_all(self) -> None:
        """Close every client of the running loop now, held or not (tests, and a loop shutting down)."""
        clients = self._loops.get(asyncio.get_running_loop())
        if clients is not None:
            await self._close_all(clients)

    # ------------------------------------------------------------------------------------- internals
    def _count_down(self, lease: KestraClientLease) -> None:
        shared = lease.shared
        if shared.users == 0 and shared.idle is None and not lease.loop.is_closed():
            shared.idle = lease.loop.call_later(self.idle_seconds, self._expire, lease)

    def _expire(self, lease: KestraClientLease) -> None:
        """The idle countdown ended: close the client unless it was leased again."""
        shared, loop = lease.shared, lease.loop
        shared.idle = None
        clients = self._loops.get(loop)
        shards = clients.clients.get(lease.fingerprint, []) if clients is not None else []
        if shared.users or clients is None or shared not in shards:
            return
        shards.remove(shared)
        if not shards:
            del clients.clients[lease.fingerprint]
        task = loop.create_task(shared.client.aclose())
        clients.closing.add(task)
        task.add_done_callback(clients.closing.discard)

    async def _keeper(self, clients: _KestraLoopClients) -> AsyncGenerator[None, None]:
        """Suspended for the loop's life; the loop's ``shutdown_asyncgens()`` resumes it to close its
        clients while the loop still runs (a client closed after its loop would leak its sockets)."""
        try:
            yield
        finally:
            await self._close_all(clients)
            self._loops.pop(asyncio.get_running_loop(), None)

    async def _close_all(self, clients: _KestraLoopClients) -> None:
        shared_clients = [shared for shards in clients.clients.values() for shared in shards]
        clients.clients.clear()
        for shared in shared_clients:
            if shared.idle is not None:
                shared.idle.cancel()
                shared.idle = None
            with contextlib.suppress(Exception):
                await shared.client.aclose()
        if clients.closing:
            await asyncio.gather(*clients.closing, return_exceptions=True)

    def _drop_closed_loops(self) -> None:
        for loop in [loop for loop in list(self._loops) if loop.is_closed()]:
            self._loops.pop(loop, None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


ASYNC_CLIENTS = KestraAsyncClientRegistry()
"""The process's shared async clients (every ``KestraAsyncHook``)."""


@dataclass(eq=False)
class _KestraLoopStarts:
    waiting: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    started: int = 0
    """Hooks let through in this turn of the loop."""
    turn_ends: bool = False
    """Whether the end of this turn is scheduled (it lets the next hooks through)."""


class KestraStartPacer:
    """Lets at most ``per_turn`` async hooks begin (settings, client, first request) per turn of
    the event loop; the others wait for the next turns, in order.

    A triggerer that starts 5,000 Kestra triggers at once runs each one's first steps (client, first
    request, first answer: about a millisecond of CPU each) in the same turn of its loop, which then
    answers nothing else for seconds. Paced, a turn holds a few of them, so the loop keeps serving the
    triggers already waiting; the start-up takes about as long in total.
    """

    def __init__(self, per_turn: int = STARTS_PER_TURN) -> None:
        self.per_turn = per_turn
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KestraLoopStarts] = (
            weakref.WeakKeyDictionary()
        )

    async def turn(self) -> None:
        """Return once this hook may start (at once while few start in this turn)."""
        loop = asyncio.get_running_loop()
        starts = self._loops.get(loop)
        if starts is None:
            starts = self._loops[loop] = _KestraLoopStarts()
        if not starts.turn_ends:
            starts.turn_ends = True
            loop.call_soon(self._next_turn, loop, starts)
        if not starts.waiting and starts.started < self.per_turn:
            starts.started += 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        starts.waiting.append(waiter)
        await waiter

    def _next_turn(self, loop: asyncio.AbstractEventLoop, starts: _KestraLoopStarts) -> None:
        """Let the next hooks through (they run in the coming turn); again next turn while any wait."""
        starts.started = 0
        while starts.waiting and starts.started < self.per_turn:
            waiter = starts.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                starts.started += 1
        starts.turn_ends = bool(starts.waiting)
        if starts.turn_ends:
            loop.call_soon(self._next_turn, loop, starts)


START_PACER = KestraStartPacer()
"""The process's pacing of async hooks' first requests, per event loop."""
