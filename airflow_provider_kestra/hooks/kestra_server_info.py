"""What a Kestra server says about itself (``GET /api/v1/configs``), read once per process and server.

Every hook used to ask on its first call: six of the sixteen requests of one deferred task, and one per
trigger when a triggerer starts a thousand of them. :data:`SERVER_INFO_CACHE` keeps the answer per server
(the normalised base URL, never the credentials: the answer does not depend on them) for
:data:`SERVER_INFO_TTL_SECONDS`, so a Kestra upgrade is picked up, and only when the server answered.
Only the server's part is kept (:class:`KestraServerFacts`); what depends on a hook's settings (a pinned
``api_version``) is applied by each hook. Internal to the hooks package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_kestra.utils.routes import KestraApiVersion

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from airflow_provider_kestra.utils.models import KestraServerInfo

log = logging.getLogger(__name__)

SERVER_INFO_TTL_SECONDS = 600.0
"""How long an answer of ``/api/v1/configs`` is reused (a server upgraded meanwhile is seen after that)."""
SERVER_INFO_MAX_SERVERS = 64
"""How many servers the cache remembers (least recently used first out)."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
V = TypeVar("V")


@dataclass(frozen=True)
class KestraServerFacts:
    """The server's own answer to ``/api/v1/configs``, the same for every hook of the same server."""

    version: str | None
    edition: str | None
    api_version: KestraApiVersion
    """Detected from ``version`` (generation 1 when the server does not say)."""
    is_simulator: bool

    def info(self, pinned: KestraApiVersion | None) -> KestraServerInfo:
        """What a hook reports: these facts, with its pinned API generation when it has one."""
        return {
            "version": self.version,
            "edition": self.edition,
            "api_version": (pinned or self.api_version).value,
            "is_simulator": self.is_simulator,
        }


def server_facts(data: Any, headers: Mapping[str, str]) -> KestraServerFacts:
    """Read an answer of ``/api/v1/configs`` (anything but a JSON object counts as empty)."""
    if not isinstance(data, dict):
        data = {}
    version = data.get("version")
    version_text = str(version) if version else None
    if version_text:
        try:
            api = KestraApiVersion.from_server_version(version_text)
        except ValueError:
            api = KestraApiVersion.V1
    else:
        log.warning(
            "Kestra did not report its version; assuming API generation 1 (pin api_version to avoid this)"
        )
        api = KestraApiVersion.V1
    simulator_header = str(headers.get("X-Kestra-Simulator", "")).lower() in ("1", "true", "yes")
    return KestraServerFacts(
        version=version_text,
        edition=str(data["edition"]) if data.get("edition") else None,
        api_version=api,
        is_simulator=bool(data.get("simulator") or data.get("isSimulator") or simulator_header),
    )


def server_key(base_url: str) -> str:
    """The cache key of a server: scheme, host and port (the default one written out) and path prefix,
    lower-cased where URLs are case-insensitive; no user info (``build_base_url`` drops it anyway)."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return urlunsplit((scheme, f"{host}:{port}" if port else host, parts.path.rstrip("/"), "", ""))


class KestraProcessCache(Generic[V]):
    """Answers shared by the hooks of one process, by key, for ``ttl`` seconds (at most ``max_entries``,
    least recently used out first). Only answers are stored, never failures.

    Thread-safe (one ``threading.Lock`` around the table: the sync hook runs in worker threads). The async
    hook asks through :meth:`afetch`: one request in flight per key and event loop, which every concurrent
    coroutine of that loop awaits.
    """

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._in_flight: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[V]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)

    def get(self, key: str) -> V | None:
        """The stored answer, None when there is none or it expired."""
        with self._lock:
            stored = self._answers.get(key)
            if stored is None:
                return None
            if self._clock() - stored[0] >= self.ttl:
                del self._answers[key]
                return None
            self._answers.move_to_end(key)
            return stored[1]

    def put(self, key: str, answer: V) -> None:
        """Store an answer (the least recently used one goes when full)."""
        with self._lock:
            self._answers[key] = (self._clock(), answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop the answer of ``key`` (the next caller asks again)."""
        with self._lock:
            self._answers.pop(key, None)

    def clear(self) -> None:
        """Forget everything (tests; a process that must see a change at once)."""
        with self._lock:
            self._answers.clear()

    def fetch(self, key: str, ask: Callable[[], V]) -> V:
        """The stored answer, else ``ask()``'s, stored. Threads that miss together each ask (a worker runs
        one task; holding a lock over a request that may be retried for an hour would block the others)."""
        answer = self.get(key)
        if answer is None:
            answer = ask()
            self.put(key, answer)
        return answer

    async def afetch(self, key: str, ask: Callable[[], Awaitable[V]], patience: float | None = None) -> V:
        """The stored answer, else the answer of the one request in flight for ``key`` in this event loop,
        else ``ask()``'s (this coroutine's request, which the others then await), stored.

        A failed request is not stored: its own caller gets the error, and so does every coroutine that
        awaited it (each retries as its own wait decides). A coroutine whose own deadline (``patience``,
        seconds) comes before the request in flight ends asks by itself, under its own retry budget.
        When the coroutine that asked is cancelled, the others ask again.
        """
        loop = asyncio.get_running_loop()
        while True:
            answer = self.get(key)
            if answer is not None:
                return answer
            flight = self._in_flight.get((loop, key))
            if flight is None:
                return await self._ask(loop, key, ask)
            try:
                return await asyncio.wait_for(asyncio.shield(flight), patience)
            except asyncio.TimeoutError:
                return await self._ask(loop, key, ask, own=False)
            except asyncio.CancelledError:
                if not flight.cancelled() or _being_cancelled():
                    raise

    async def _ask(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        ask: Callable[[], Awaitable[V]],
        *,
        own: bool = True,
    ) -> V:
        """Send the request; with ``own``, as the one in flight that the other coroutines await."""
        flight: asyncio.Future[V] | None = None
        if own:
            flight = loop.create_future()
            self._in_flight[(loop, key)] = flight
        try:
            answer = await ask()
        except BaseException as err:
            if flight is not None:
                if isinstance(err, asyncio.CancelledError):
                    flight.cancel()
                else:
                    flight.set_exception(err)
                    flight.exception()  # retrieved: nobody awaiting it is not an "unretrieved" error
            raise
        else:
            self.put(key, answer)
            if flight is not None:
                flight.set_result(answer)
            return answer
        finally:
            if flight is not None:
                with contextlib.suppress(KeyError):
                    if self._in_flight[(loop, key)] is flight:
                        del self._in_flight[(loop, key)]


class KestraServerInfoCache(KestraProcessCache[KestraServerFacts]):
    """Answers of ``/api/v1/configs`` by server (:func:`server_key`), for the whole process."""

    def __init__(
        self,
        ttl: float = SERVER_INFO_TTL_SECONDS,
        max_servers: int = SERVER_INFO_MAX_SERVERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl, max_servers, clock)


def _being_cancelled() -> bool:
    """Whether the running task itself is being cancelled (known from Python 3.11 on; before, a task whose
    awaited request was cancelled is taken as cancelled too)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return True if cancelling is None else bool(cancelling())


SERVER_INFO_CACHE = KestraServerInfoCache()
"""The process's answers of ``/api/v1/configs`` (both hooks)."""
