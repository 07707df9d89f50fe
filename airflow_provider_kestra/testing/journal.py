"""The request journal: every request the simulator answered, in the style of respx's and responses' calls.

``sim.requests`` records method, path, query, status, arrival time, duration and the injected faults of
every request to Kestra's API, fault-injected answers and dropped connections included (a dropped request
has ``status`` None). A test then asserts on what the client really sent, instead of wrapping the client::

    sim.requests.count(method="GET", path=r"/follow$")
    [r.status for r in sim.requests.filter(path=r"/executions/")]
    sim.requests.clear()

It is recorded by the outermost ASGI layer (:class:`KestraSimJournalMiddleware`), so a 503 from
``sim.faults`` counts like any answer. Requests to the ``/_simulator/`` admin endpoints are not Kestra's
API and are not recorded. The journal keeps the newest ``max_entries`` requests (``dropped`` counts the
ones it forgot) and survives ``sim.restart()``; over HTTP it is ``GET``/``DELETE /_simulator/requests``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Scope key where the fault middleware lists the kinds of the rules that fired for a request.
FAULTS_SCOPE_KEY = "kestra_sim.faults"
#: Scope key holding the connection's asyncio transport, for the inner fault layer that drops connections
#: (it cannot find it through the journal's wrapped ``send``).
TRANSPORT_SCOPE_KEY = "kestra_sim.transport"


def connection_transport(send: Send) -> Any:
    """The asyncio transport behind uvicorn's ``send`` (to drop a connection like a crashed server)."""
    cycle = getattr(send, "__self__", None)
    return getattr(cycle, "transport", None)


@dataclass(frozen=True)
class KestraSimRequest:
    """One request and how it was answered."""

    #: Position in the journal since it was created or cleared (0-based, never reused).
    seq: int
    method: str
    path: str
    #: Raw query string, without ``?`` (empty when there was none).
    query: str
    #: Status sent, or None when the connection was dropped before any answer.
    status: int | None
    #: Arrival, in seconds since the epoch.
    time: float
    #: Seconds from arrival to the start of the answer (to the drop, for dropped requests).
    duration: float
    #: Kinds of the fault rules that fired for it (``error``, ``latency``, ``drop``...), empty if none.
    faults: tuple[str, ...] = ()


class KestraSimJournal:
    """The recorded requests, oldest first (thread-safe: the server records, the test reads)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: deque[KestraSimRequest] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        self._next_seq = 0
        self._dropped = 0

    def record(
        self,
        method: str,
        path: str,
        query: str,
        status: int | None,
        started: float,
        duration: float,
        faults: tuple[str, ...] = (),
    ) -> KestraSimRequest:
        """Append one request (called by the HTTP layer); the oldest entry goes when the journal is full."""
        with self._lock:
            entry = KestraSimRequest(self._next_seq, method, path, query, status, started, duration, faults)
            self._next_seq += 1
            if len(self._entries) == self.max_entries:
                self._dropped += 1
            self._entries.append(entry)
        return entry

    @property
    def total(self) -> int:
        """Requests recorded since creation or the last :meth:`clear`, forgotten ones included."""
        return self._next_seq

    @property
    def dropped(self) -> int:
        """Requests forgotten because the journal was full (counts computed from it miss those)."""
        return self._dropped

    def filter(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        fault: str | None = None,
        since: int = 0,
    ) -> list[KestraSimRequest]:
        """Recorded requests matching every given criterion, oldest first.

        ``method`` is compared case-insensitively, ``path`` is a regular expression searched in the path
        (as fault rules match), ``status`` an exact status, ``fault`` a fault kind that fired, ``since``
        the first ``seq`` to consider.
        """
        pattern = re.compile(path) if path is not None else None
        wanted = method.upper() if method is not None else None
        with self._lock:
            entries = list(self._entries)
        return [
            entry
            for entry in entries
            if entry.seq >= since
            and (wanted is None or entry.method == wanted)
            and (pattern is None or pattern.search(entry.path) is not None)
            and (status is None or entry.status == status)
            and (fault is None or fault in entry.faults)
        ]

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        fault: str | None = None,
        since: int = 0,
    ) -> int:
        """How many recorded requests match (same criteria as :meth:`filter`)."""
        return len(self.filter(method, path, status=status, fault=fault, since=since))

    @property
    def last(self) -> KestraSimRequest | None:
        """The newest recorded request, or None."""
        with self._lock:
            return self._entries[-1] if self._entries else None

    def clear(self) -> None:
        """Forget everything; ``seq`` and :attr:`total` start again from 0."""
        with self._lock:
            self._entries.clear()
            self._next_seq = 0
            self._dropped = 0

    def to_json(self, entries: list[KestraSimRequest]) -> list[dict[str, Any]]:
        """``entries`` as JSON objects (for ``GET /_simulator/requests``)."""
        return [{**asdict(entry), "faults": list(entry.faults)} for entry in entries]

    def __iter__(self) -> Iterator[KestraSimRequest]:
        with self._lock:
            entries = list(self._entries)
        return iter(entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __getitem__(self, index: int) -> KestraSimRequest:
        with self._lock:
            return self._entries[index]


class KestraSimJournalMiddleware:
    """Outermost ASGI layer: records each request when its answer starts (or when it ends unanswered).

    Recording at the start of the answer puts never-ending streams (log follow) in the journal as soon as
    they are accepted, with their status.
    """

    def __init__(self, app: ASGIApp, journal: KestraSimJournal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_simulator/"):
            await self.app(scope, receive, send)
            return
        started, clock = time.time(), time.monotonic()
        recorded = False
        scope[TRANSPORT_SCOPE_KEY] = connection_transport(send)

        def record(status: int | None) -> None:
            nonlocal recorded
            recorded = True
            query = bytes(scope.get("query_string", b"")).decode("latin-1")
            faults = tuple(scope.get(FAULTS_SCOPE_KEY, ()))
            duration = time.monotonic() - clock
            self.journal.record(scope["method"], scope["path"], query, status, started, duration, faults)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if not recorded:
                record(None)
