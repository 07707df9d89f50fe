"""One ``httpx.AsyncClient`` per connection settings and event loop, shared by every ``KestraAsyncHook``.

A triggerer runs hundreds of Kestra triggers on one loop. With a client each, every trigger paid its own
client, and httpx's 5 s keep-alive equalled the 5 s poll interval, so every poll opened a new connection.
:data:`ASYNC_CLIENTS` lends one client to every hook with the same settings on the same loop (counted
leases); when the last lease ends, the client stays open :data:`IDLE_CLOSE_SECONDS` more, so trigger
churn does not reopen connections, then it is closed. Clients of a loop that shuts down are closed with
it (``loop.shutdown_asyncgens()``, which ``asyncio.run`` and ``asyncio.Runner`` call); a closed loop's
clients are dropped. httpx is imported by the hook that builds the client, not here. Internal to the
hooks package.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable

    import httpx

log = logging.getLogger(__name__)

IDLE_CLOSE_SECONDS = 30.0
"""How long a client nobody uses stays open (a trigger that ends is often followed by another)."""
KEEPALIVE_SECONDS = 30.0
"""How long an idle connection of a client is kept: longer than the 5 s poll interval, so polls reuse it."""
MAX_KEEPALIVE_CONNECTIONS = 100
"""Idle connections a client keeps. There is no cap on open connections: every waiting trigger holds an
event stream, and a cap would queue polls behind streams."""


def client_fingerprint(parts: Iterable[object]) -> str:
    """A digest of everything a client is built with; secrets (the auth header) go in only hashed."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(eq=False)
class KestraClientLease:
    """One hook's use of a shared client: returned by :meth:`KestraAsyncClientRegistry.acquire`, handed
    back to :meth:`KestraAsyncClientRegistry.release` once."""

    loop: asyncio.AbstractEventLoop
    fingerprint: str
    client: httpx.AsyncClient


@dataclass(eq=False)
class _KestraSharedClient:
    client: httpx.AsyncClient
    users: int = 0
    idle: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _KestraLoopClients:
    """The clients of one event loop, and what closes them when the loop shuts down."""

    clients: dict[str, _KestraSharedClient] = field(default_factory=dict)
    closing: set[asyncio.Task[None]] = field(default_factory=set)
    keeper: AsyncGenerator[None, None] | None = None


class KestraAsyncClientRegistry:
    """Shared ``httpx.AsyncClient``s by (event loop, settings fingerprint), with lease counts."""

    def __init__(self, idle_seconds: float = IDLE_CLOSE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KestraLoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def open_clients(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """How many clients are open on ``loop`` (default: the running one), leased or idle."""
        clients = self._loops.get(loop or asyncio.get_running_loop())
        return len(clients.clients) if clients is not None else 0

    def users(self, client: httpx.AsyncClient) -> int:
        """How many leases ``client`` has (0 for an idle or unknown client)."""
        for clients in list(self._loops.values()):
            for shared in clients.clients.values():
                if shared.client is client:
                    return shared.users
        return 0

    async def acquire(self, fingerprint: str, build: Callable[[], httpx.AsyncClient]) -> KestraClientLease:
        """Lease the running loop's client of these settings (``build()`` makes it when there is none)."""
        loop = asyncio.get_running_loop()
        self._drop_closed_loops()
        clients = self._loops.get(loop)
        if clients is None:
            clients = self._loops[loop] = _KestraLoopClients()
            clients.keeper = self._keeper(clients)
            await clients.keeper.__anext__()  # registered with the loop: its shutdown closes the clients
        shared = clients.clients.get(fingerprint)
        if shared is None or shared.client.is_closed:
            shared = clients.clients[fingerprint] = _KestraSharedClient(build())
        if shared.idle is not None:
            shared.idle.cancel()
            shared.idle = None
        shared.users += 1
        return KestraClientLease(loop, fingerprint, shared.client)

    def release(self, lease: KestraClientLease) -> None:
        """End a lease; the client's last lease starts its idle countdown. A lease of a closed loop (or a
        client closed meanwhile) ends without anything else to do."""
        clients = self._loops.get(lease.loop)
        shared = clients.clients.get(lease.fingerprint) if clients is not None else None
        if shared is None or shared.client is not lease.client:
            return
        shared.users = max(0, shared.users - 1)
        if shared.users or lease.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            if _running_loop() is lease.loop:
                self._count_down(lease.loop, lease.fingerprint, shared)
            else:
                lease.loop.call_soon_threadsafe(self._count_down, lease.loop, lease.fingerprint, shared)

    async def aclose_all(self) -> None:
        """Close every client of the running loop now, leased or not (tests, and a loop shutting down)."""
        clients = self._loops.get(asyncio.get_running_loop())
        if clients is not None:
            await self._close_all(clients)

    # ------------------------------------------------------------------------------------- internals
    def _count_down(
        self, loop: asyncio.AbstractEventLoop, fingerprint: str, shared: _KestraSharedClient
    ) -> None:
        if shared.users == 0 and shared.idle is None and not loop.is_closed():
            shared.idle = loop.call_later(self.idle_seconds, self._expire, loop, fingerprint, shared)

    def _expire(self, loop: asyncio.AbstractEventLoop, fingerprint: str, shared: _KestraSharedClient) -> None:
        """The idle countdown ended: close the client unless it was leased again."""
        shared.idle = None
        clients = self._loops.get(loop)
        if shared.users or clients is None or clients.clients.get(fingerprint) is not shared:
            return
        del clients.clients[fingerprint]
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
        shared_clients = list(clients.clients.values())
        clients.clients.clear()
        for shared in shared_clients:
            if shared.idle is not None:
                shared.idle.cancel()
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
