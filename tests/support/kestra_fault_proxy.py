"""A small HTTP/1.1 fault proxy to put between the provider and a Kestra server (or the simulator).

Why: the simulator's own fault injection happens *inside* Kestra's API (5xx, dropped connections, cut
streams). What lies *between* Airflow and Kestra in production fails differently: a load balancer that
refuses connections during a fail-over, a corporate proxy answering ``200 text/html`` with a login or
maintenance page, an answer cut short with its ``Content-Length`` kept, a stream that only ever carries
keep-alive comments, an SSE frame split across reads, or a replica that does not know an execution yet
(read-after-write lag). :class:`KestraFaultProxy` reproduces those so tests can check the rule of issue 10:
a Kestra execution ends for Airflow only when Kestra reports a terminal state, the task's deadline
passes, or a person acts on the task; anything else means keep watching.

It is self-contained (asyncio from the standard library): a reverse proxy on ``127.0.0.1`` (a free port)
running its event loop in a daemon thread, so sync tests use it as a context manager::

    with KestraSimulator() as sim, KestraFaultProxy(sim.url) as proxy:
        conn_uri = proxy.connection_uri(sim.connection_uri())
        proxy.html_200(r"/executions/[A-Za-z0-9]+$", method="GET", count=3)
        ...
        assert proxy.count("html_200") == 3

Without a rule every request is forwarded and every answer streamed back unchanged (status, headers, body,
``Content-Length`` or chunked framing, SSE streams as they arrive, client keep-alive). Rules match by
``method`` and a regular expression searched in the path (no query string); ``count`` limits how many
requests a rule affects, ``seconds`` how long it stays active. At most one rule acts on a request: the
first one added that applies. Every fault that really happened is appended to :attr:`faults_injected`
(kind, method, path, time); a rule's ``fired`` counter makes it a fault source for the reliability
recorder (``reliability.faults(rule)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

__all__ = [
    "KestraFaultProxy",
    "KestraProxyFault",
    "KestraProxyFaultSource",
    "KestraProxyRequest",
    "KestraProxyRule",
]

MAX_HEAD_BYTES = 1 << 20
"""Largest request or response head accepted (request line or status line plus headers)."""
CREATE_LIKE_POST = re.compile(r"/executions/")
"""POST answers under this path are inspected for new execution ids (``lag_404`` and ``search_lag``)."""
EXECUTION_GET = r"/executions/[A-Za-z0-9]+$"
"""The default path of :meth:`KestraFaultProxy.lag_404`: ``GET /executions/{id}``."""
EXECUTION_SEARCH = r"/executions(/search)?$"
"""The default path of :meth:`KestraFaultProxy.search_lag`: Kestra's two execution search routes."""
HTML_LOGIN_PAGE = "<html><head><title>Sign in</title></head><body><form>login</form></body></html>"
HOP_BY_HOP = frozenset({"transfer-encoding", "content-length", "connection", "keep-alive"})
"""Headers the proxy rewrites itself when it changes a body's framing."""


@dataclass(frozen=True)
class KestraProxyFault:
    """One fault the proxy really injected: its kind, the request it hit and when (``time.time()``)."""

    kind: str
    method: str
    path: str
    time: float
    detail: str = ""


@dataclass(frozen=True)
class KestraProxyRequest:
    """One request the proxy saw, with the status it answered (0 when it answered none)."""

    method: str
    path: str
    status: int
    time: float
    fault: str | None = None


@dataclass
class KestraProxyRule:
    """One programmed fault. ``fired`` counts the requests it acted on (a reliability fault source)."""

    kind: str
    path: str | None = None
    method: str | None = None
    count: int | None = None
    seconds: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    fired: int = 0
    created: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path) if self.path else None

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule applies to this request now (method, path, count and lifetime)."""
        if self.method and self.method.upper() != method.upper():
            return False
        if self._pattern is not None and self._pattern.search(path) is None:
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        return self.seconds is None or time.monotonic() - self.created < self.seconds


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)

    def wants_close(self) -> bool:
        connection = (self.header("connection") or "").lower()
        return "close" in connection or (self.version == "HTTP/1.0" and "keep-alive" not in connection)

    def encode(self, target: str | None = None) -> bytes:
        headers = [
            (k, v) for k, v in self.headers if k.lower() not in ("transfer-encoding", "content-length")
        ]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(self.body))))
        return _head(f"{self.method} {target or self.target} HTTP/1.1", headers) + self.body


@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    reader: asyncio.StreamReader
    framing: str  # "length", "chunked", "close" or "none"
    length: int = 0

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)

    @property
    def is_sse(self) -> bool:
        return (self.header("content-type") or "").lower().startswith("text/event-stream")

    def body(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, de-chunked."""
        return _read_body(self.reader, self.framing, self.length)

    async def read_all(self) -> bytes:
        return b"".join([piece async for piece in self.body()])


class KestraProxyFaultSource:
    """The number of faults (of one kind, or all) a proxy injected so far, as ``fired``."""

    def __init__(self, proxy: KestraFaultProxy, kind: str | None) -> None:
        self._proxy = proxy
        self._kind = kind

    @property
    def fired(self) -> int:
        return self._proxy.count(self._kind)


class _ClientGone(Exception):
    """The client closed its connection (or the proxy aborted it)."""


class KestraFaultProxy:
    """An HTTP/1.1 reverse proxy on ``127.0.0.1`` in front of ``upstream``, with programmable faults.

    Use it as a context manager (or :meth:`start` / :meth:`stop`); :attr:`url` is its base URL. Fault
    methods are thread-safe and return the :class:`KestraProxyRule` (see the module docstring).
    """

    def __init__(self, upstream: str, *, port: int = 0, seed: int | None = 10) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.port = port
        self.rules: list[KestraProxyRule] = []
        self.faults_injected: list[KestraProxyFault] = []
        self.requests: list[KestraProxyRequest] = []
        self.upstream_errors = 0
        self.connections_accepted = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._first_seen: dict[str, float] = {}
        self._not_found: dict[str, tuple[str, bytes, str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._outage_mode = ""
        self._outage_timer: asyncio.TimerHandle | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: point the Kestra connection here instead of at ``upstream``."""
        return f"http://127.0.0.1:{self.port}"

    def connection_uri(self, upstream_uri: str) -> str:
        """``upstream_uri`` (e.g. ``sim.connection_uri()``) with its host and port replaced by the proxy's."""
        parts = urlsplit(upstream_uri)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def __enter__(self) -> KestraFaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> KestraFaultProxy:
        """Start the event loop thread and listen (on a free port unless ``port`` was given)."""
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kestra-fault-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then stop the loop thread."""
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop, self._thread = None, None

    def _call(self, coro: Any, timeout: float = 30) -> Any:
        assert self._loop is not None, "the proxy is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_client, "127.0.0.1", self.port, limit=MAX_HEAD_BYTES, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._outage_timer is not None:
            self._outage_timer.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        self._abort_clients()
        # The loop is the proxy's own: every other task on it is a connection or a timer of this proxy.
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _abort_clients(self) -> None:
        for writer in list(self._clients):
            _reset(writer)
        self._clients.clear()

    # ------------------------------------------------------------------------------------- outages
    def down(self, mode: str = "refuse") -> None:
        """Stop answering: every open connection is reset (RST), streams included; new connections are
        refused (``mode="refuse"``: the listener is closed, ``ECONNREFUSED``) or accepted and reset at once
        (``mode="reset"``: each one is recorded as a fault). Lasts until :meth:`up`."""
        if mode not in ("refuse", "reset"):
            raise ValueError("mode is 'refuse' or 'reset'")
        self._call(self._down(mode))

    def up(self) -> None:
        """Listen again on the same port after :meth:`down` or during an :meth:`outage`."""
        self._call(self._up())

    def outage(self, seconds: float, mode: str = "refuse") -> None:
        """:meth:`down` now and :meth:`up` after ``seconds``, without blocking the caller."""
        self._call(self._down(mode, seconds))

    @property
    def is_down(self) -> bool:
        """Whether an outage is in progress."""
        return bool(self._outage_mode)

    async def _down(self, mode: str, seconds: float | None = None) -> None:
        self._record("outage", "*", "*", f"{mode}, {seconds}s" if seconds is not None else mode)
        self._outage_mode = mode
        if mode == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        self._abort_clients()
        if self._outage_timer is not None:
            self._outage_timer.cancel()
            self._outage_timer = None
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self._outage_timer = loop.call_later(seconds, lambda: self._track(self._up()))
        await asyncio.sleep(0)

    async def _up(self) -> None:
        self._outage_mode = ""
        if self._outage_timer is not None:
            self._outage_timer.cancel()
            self._outage_timer = None
        if self._server is None:
            await self._listen()

    def _track(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------------------------- rules
    def add(self, kind: str, path: str | None = None, **options: Any) -> KestraProxyRule:
        """Add a rule (the typed helpers below are the documented way); returns it."""
        rule = KestraProxyRule(
            kind=kind,
            path=path,
            method=options.pop("method", None),
            count=options.pop("count", None),
            seconds=options.pop("seconds", None),
            options=options,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule (recorded faults stay)."""
        with self._lock:
            self.rules.clear()

    def count(self, kind: str | None = None) -> int:
        """How many faults (of ``kind``) were injected so far."""
        return sum(1 for fault in list(self.faults_injected) if kind is None or fault.kind == kind)

    def source(self, kind: str | None = None) -> KestraProxyFaultSource:
        """A live counter of the faults (of ``kind``) injected, with the ``fired`` attribute the reliability
        recorder reads: ``with reliability.faults(proxy.source("outage")): ...``."""
        return KestraProxyFaultSource(self, kind)

    @property
    def open_connections(self) -> int:
        """Client connections open right now (a stream the client left must not stay open)."""
        return len(self._clients)

    def html_200(
        self, path: str | None = None, body: str = HTML_LOGIN_PAGE, *, forward: bool = False, **match: Any
    ) -> KestraProxyRule:
        """Answer ``200 text/html`` (a proxy's login or maintenance page). ``forward=True`` sends the
        request to Kestra first (so a create POST really starts an execution) and throws its answer away."""
        return self.add("html_200", path, body=body.encode(), forward=forward, **match)

    def empty_200(self, path: str | None = None, *, forward: bool = True, **match: Any) -> KestraProxyRule:
        """Answer ``200 application/json`` with an empty body (after forwarding unless ``forward=False``)."""
        return self.add("empty_200", path, forward=forward, **match)

    def garbage_json(
        self, path: str | None = None, body: bytes = b'{"id": "', *, forward: bool = True, **match: Any
    ) -> KestraProxyRule:
        """Answer ``200 application/json`` that is not JSON (forwarded first unless ``forward=False``)."""
        return self.add("garbage_json", path, body=body, forward=forward, **match)

    def truncate(self, path: str | None = None, after_bytes: int = 0, **match: Any) -> KestraProxyRule:
        """Forward, send the answer's head unchanged (its ``Content-Length`` or chunked framing kept), then
        only ``after_bytes`` of its body, and close the connection."""
        return self.add("truncate", path, after_bytes=after_bytes, **match)

    def status(
        self,
        path: str | None = None,
        code: int = 503,
        count: int | None = None,
        retry_after: float | None = None,
        *,
        body: bytes | None = None,
        content_type: str = "text/html",
        forward: bool = False,
        **match: Any,
    ) -> KestraProxyRule:
        """Answer ``code`` (with ``Retry-After`` when given) instead of Kestra; by default with the kind of
        HTML page a load balancer sends. ``seconds=`` instead of ``count`` makes it last a while."""
        page = body if body is not None else _status_page(code)
        return self.add(
            "status",
            path,
            count=count,
            code=code,
            retry_after=retry_after,
            body=page,
            content_type=content_type,
            forward=forward,
            **match,
        )

    def sse_inject(
        self, path: str | None = None, frame: bytes = b"data: ping\n\n", **match: Any
    ) -> KestraProxyRule:
        """On event-stream answers, write ``frame`` first and after every frame of the real stream."""
        return self.add("sse_inject", path, frame=frame, **match)

    def sse_comments_only(
        self, path: str | None = None, every: float = 1.0, comment: bytes = b": keep-alive\n\n", **match: Any
    ) -> KestraProxyRule:
        """On event-stream answers, hold the real stream open but send only ``comment`` every ``every``
        seconds, never an event, until the client leaves (a trickling stream)."""
        return self.add("sse_comments_only", path, every=every, comment=comment, **match)

    def sse_split(
        self, path: str | None = None, chunk: int | tuple[int, int] = 1, delay: float = 0.0, **match: Any
    ) -> KestraProxyRule:
        """On event-stream answers, re-send the bytes in HTTP chunks of ``chunk`` bytes (a ``(low, high)``
        pair: random sizes, seeded), each flushed alone, ``delay`` seconds apart: frames split anywhere."""
        return self.add("sse_split", path, chunk=chunk, delay=delay, **match)

    def lag_404(
        self, path: str | None = EXECUTION_GET, seconds: float = 5.0, **match: Any
    ) -> KestraProxyRule:
        """Answer Kestra's own 404 (same body as for an unknown id) to requests whose path holds an execution
        id for ``seconds`` after the proxy first saw that id in a create answer (read-after-write lag)."""
        match.setdefault("method", "GET")
        return self.add("lag_404", path, lag=seconds, **match)

    def search_lag(
        self, seconds: float = 5.0, path: str | None = EXECUTION_SEARCH, **match: Any
    ) -> KestraProxyRule:
        """Hide executions younger than ``seconds`` from execution search answers (``results`` and
        ``total`` rewritten): a search index that lags behind the execution store."""
        match.setdefault("method", "GET")
        return self.add("search_lag", path, lag=seconds, **match)

    # ------------------------------------------------------------------------------- bookkeeping
    def _record(self, kind: str, method: str, path: str, detail: str = "") -> None:
        with self._lock:
            self.faults_injected.append(KestraProxyFault(kind, method, path, time.time(), detail))

    def _take(self, method: str, path: str, kinds: Iterable[str] | None = None) -> KestraProxyRule | None:
        """Reserve the first applicable rule for this request (its ``fired`` is incremented)."""
        wanted = set(kinds) if kinds is not None else None
        with self._lock:
            for rule in self.rules:
                if (wanted is None or rule.kind in wanted) and rule.matches(method, path):
                    if rule.kind == "lag_404" and self._lagging_id(rule, path) is None:
                        continue
                    rule.fired += 1
                    return rule
        return None

    def _release(self, rule: KestraProxyRule) -> None:
        """Give back a reservation for a rule that finally did nothing (e.g. ``sse_*`` on plain JSON)."""
        with self._lock:
            rule.fired -= 1

    def _lagging_id(self, rule: KestraProxyRule, path: str) -> str | None:
        now = time.monotonic()
        for segment in path.split("/"):
            seen = self._first_seen.get(segment)
            if seen is not None and now - seen < float(rule.options["lag"]):
                return segment
        return None

    def _note_request(self, request: _Request, status: int, fault: str | None) -> None:
        with self._lock:
            self.requests.append(KestraProxyRequest(request.method, request.path, status, time.time(), fault))

    # --------------------------------------------------------------------------------- serving
    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._outage_mode:
            self._record("outage", "*", "*", "connection reset")
            _reset(writer)
            return
        self.connections_accepted += 1
        self._clients.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                keep_alive = await self._handle(request, reader, writer)
                if not keep_alive or request.wants_close():
                    break
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Proxy shutdown. Not re-raised: asyncio's stream callback would log the cancelled task.
            _reset(writer)
        finally:
            self._clients.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; returns whether the client connection can carry another one."""
        method, path = request.method, request.path
        rule = self._take(method, path)
        kind = rule.kind if rule is not None else None
        if rule is not None and kind in ("html_200", "empty_200", "garbage_json", "status", "lag_404"):
            if kind == "lag_404":
                status, headers, body = await self._not_found_answer(request)
            else:
                status, headers, body = _synthetic(rule)
            if rule.options.get("forward"):
                await self._forward_and_discard(request)
            self._record(str(kind), method, path)
            await _send(writer, status, headers, body)
            self._note_request(request, status, kind)
            return True

        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=MAX_HEAD_BYTES
            )
        except OSError:
            return await self._upstream_failed(request, writer, rule)
        try:
            up_writer.write(request.encode())
            await up_writer.drain()
            response = await _read_response_head(up_reader, method)
            if response is None:
                return await self._upstream_failed(request, writer, rule)
            return await self._relay(request, response, reader, writer, rule)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            # Upstream broke mid-answer: pass the cut on to the client as is.
            _reset(writer)
            return False
        finally:
            _reset(up_writer)

    async def _upstream_failed(
        self, request: _Request, writer: asyncio.StreamWriter, rule: KestraProxyRule | None
    ) -> bool:
        """Upstream refused or dropped the request: answer 502 as a reverse proxy does."""
        if rule is not None:
            self._release(rule)
        self.upstream_errors += 1
        body = _status_page(502)
        await _send(writer, 502, [("Content-Type", "text/html")], body)
        self._note_request(request, 502, None)
        return True

    async def _forward_and_discard(self, request: _Request) -> None:
        """Send the request to Kestra and read (and drop) the head and, unless it streams, the body."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=MAX_HEAD_BYTES
            )
            try:
                up_writer.write(request.encode())
                await up_writer.drain()
                response = await _read_response_head(up_reader, request.method)
                if response is not None and not response.is_sse:
                    body = await response.read_all()
                    self._watch_created(request, response, body)
            finally:
                _reset(up_writer)

    async def _not_found_answer(self, request: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        """Kestra's 404 for this request: the upstream's answer for an id that does not exist (so the body
        has the profile's shape: Micronaut JsonError or problem+json), with the real path put back."""
        path = request.path
        execution_id = next((s for s in path.split("/") if s in self._first_seen), "")
        prefix = path.split("/executions/", 1)[0]
        if prefix not in self._not_found:
            fake_id = "0proxy0lag0404"
            probe = _Request("GET", f"{prefix}/executions/{fake_id}", "HTTP/1.1", request.headers, b"")
            content_type, body = "application/json", b""
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
                try:
                    up_writer.write(probe.encode())
                    await up_writer.drain()
                    response = await _read_response_head(up_reader, "GET")
                    if response is not None and response.status == 404:
                        content_type = response.header("content-type") or content_type
                        body = await response.read_all()
                finally:
                    _reset(up_writer)
            if not body:
                body = json.dumps({"message": "Not Found", "_links": {"self": {"href": probe.path}}}).encode()
            self._not_found[prefix] = (content_type, body, probe.path)
        content_type, template, probe_path = self._not_found[prefix]
        body = template.replace(probe_path.encode(), path.encode())
        body = body.replace(b"0proxy0lag0404", execution_id.encode())
        return 404, [("Content-Type", content_type)], body

    def _watch_created(self, request: _Request, response: _Response, body: bytes) -> None:
        """Remember when each execution id was first seen in a POST answer (start of the lag windows)."""
        if request.method != "POST" or not CREATE_LIKE_POST.search(request.path) or response.status >= 300:
            return
        try:
            data = json.loads(body)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("id"), str) and "state" in data:
            with self._lock:
                self._first_seen.setdefault(data["id"], time.monotonic())

    # ---------------------------------------------------------------------------------- relaying
    async def _relay(
        self,
        request: _Request,
        response: _Response,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rule: KestraProxyRule | None,
    ) -> bool:
        kind = rule.kind if rule is not None else None
        method, path = request.method, request.path
        if rule is not None and kind is not None and kind.startswith("sse_") and not response.is_sse:
            self._release(rule)
            rule, kind = None, None
        if rule is not None and kind == "truncate":
            self._record("truncate", method, path, f"after {rule.options['after_bytes']} bytes")
            await self._relay_truncated(response, writer, int(rule.options["after_bytes"]))
            self._note_request(request, response.status, kind)
            return False
        if rule is not None and kind is not None and kind.startswith("sse_"):
            self._record(kind, method, path)
            self._note_request(request, response.status, kind)
            await self._relay_sse(response, reader, writer, rule)
            return True  # the mutated stream ended with its last chunk: the connection can be reused
        if rule is not None and kind == "search_lag":
            body = await response.read_all()
            rewritten, hidden = self._hide_young(body, float(rule.options["lag"]))
            if hidden:
                self._record("search_lag", method, path, f"{hidden} execution(s) hidden")
            else:
                self._release(rule)
            headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
            await _send(writer, response.status, headers, rewritten, reason=response.reason)
            self._note_request(request, response.status, kind if hidden else None)
            return True
        if response.is_sse or response.framing == "close":
            self._note_request(request, response.status, None)
            await self._relay_stream(response, reader, writer)
            return response.framing != "close"
        body = await response.read_all()
        self._watch_created(request, response, body)
        writer.write(_response_head(response) + _framed(body, response.framing))
        await writer.drain()
        self._note_request(request, response.status, None)
        return (response.header("connection") or "").lower() != "close"

    async def _relay_stream(
        self, response: _Response, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Pass a streaming body through as it arrives, until it ends or the client leaves."""
        writer.write(_response_head(response))
        await writer.drain()

        async def pump() -> None:
            async for piece in response.body():
                writer.write(_framed_piece(piece, response.framing))
                await writer.drain()
            if response.framing == "chunked":
                writer.write(b"0\r\n\r\n")
                await writer.drain()

        await _until_client_leaves(pump(), reader)

    async def _relay_truncated(self, response: _Response, writer: asyncio.StreamWriter, after: int) -> None:
        writer.write(_response_head(response))
        sent = 0
        async for piece in response.body():
            piece = piece[: max(0, after - sent)]
            if piece:
                writer.write(_framed_piece(piece, response.framing))
                sent += len(piece)
            if sent >= after:
                break
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _relay_sse(
        self,
        response: _Response,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rule: KestraProxyRule,
    ) -> None:
        """An event stream re-sent chunked, mutated by an ``sse_*`` rule."""
        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
        headers.append(("Transfer-Encoding", "chunked"))
        writer.write(_head(f"HTTP/1.1 {response.status} {response.reason}", headers))
        await writer.drain()
        options = rule.options

        async def write(data: bytes) -> None:
            if data:
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()

        async def inject() -> None:
            frame: bytes = options["frame"]
            await write(frame)
            pending = b""
            async for piece in response.body():
                pending += piece
                while b"\n\n" in pending:
                    complete, pending = pending.split(b"\n\n", 1)
                    await write(complete + b"\n\n" + frame)
            await write(pending)
            await write(b"")
            writer.write(b"0\r\n\r\n")
            await writer.drain()

        async def comments_only() -> None:
            async def discard() -> None:
                async for _ in response.body():
                    pass

            drain = asyncio.ensure_future(discard())
            try:
                while True:
                    await write(options["comment"])
                    await asyncio.sleep(float(options["every"]))
            finally:
                drain.cancel()

        async def split() -> None:
            chunk = options["chunk"]
            async for piece in response.body():
                while piece:
                    size = chunk if isinstance(chunk, int) else self._random.randint(chunk[0], chunk[1])
                    part, piece = piece[: max(1, size)], piece[max(1, size) :]
                    await write(part)
                    if options["delay"]:
                        await asyncio.sleep(float(options["delay"]))
            writer.write(b"0\r\n\r\n")
            await writer.drain()

        mutate = {"sse_inject": inject, "sse_comments_only": comments_only, "sse_split": split}[rule.kind]
        await _until_client_leaves(mutate(), reader)

    def _hide_young(self, body: bytes, lag: float) -> tuple[bytes, int]:
        """The search answer without executions younger than ``lag`` seconds, and how many were hidden."""
        try:
            data = json.loads(body)
        except ValueError:
            return body, 0
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            return body, 0
        now_wall, now_mono = time.time(), time.monotonic()
        kept = []
        for execution in data["results"]:
            seen = self._first_seen.get(str(execution.get("id"))) if isinstance(execution, dict) else None
            if seen is not None:
                age = now_mono - seen
            else:
                created = _created_at(execution)
                age = now_wall - created if created is not None else lag
            if age >= lag:
                kept.append(execution)
        hidden = len(data["results"]) - len(kept)
        if not hidden:
            return body, 0
        data["results"] = kept
        if isinstance(data.get("total"), int):
            data["total"] = max(0, data["total"] - hidden)
        return json.dumps(data, separators=(",", ":")).encode(), hidden


# ------------------------------------------------------------------------------------------ HTTP helpers
def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _head(start_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [start_line] + [f"{key}: {value}" for key, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    start, *lines = raw.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = []
    for line in lines:
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return start, headers


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """The next request on a client connection, or None when the client closed it between requests."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if err.partial.strip():
            raise
        return None
    start, headers = _parse_head(raw)
    method, target, version = start.split(" ", 2)
    framing, length = _framing(headers, method, 200, request=True)
    body = b"".join([piece async for piece in _read_body(reader, framing, length)])
    return _Request(method.upper(), target, version, headers, body)


async def _read_response_head(reader: asyncio.StreamReader, method: str) -> _Response | None:
    """The upstream answer's status line and headers (1xx answers skipped); None if it closed first."""
    while True:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        start, headers = _parse_head(raw)
        _, code, *reason = start.split(" ", 2)
        status = int(code)
        if 100 <= status < 200:
            continue
        framing, length = _framing(headers, method, status)
        return _Response(status, reason[0] if reason else "", headers, reader, framing, length)


def _framing(
    headers: list[tuple[str, str]], method: str, status: int, request: bool = False
) -> tuple[str, int]:
    if "chunked" in (_header(headers, "transfer-encoding") or "").lower():
        return "chunked", 0
    length = _header(headers, "content-length")
    if length is not None:
        return "length", int(length)
    if request or method == "HEAD" or status in (204, 304):
        return "none", 0
    return "close", 0


async def _read_body(reader: asyncio.StreamReader, framing: str, length: int) -> AsyncIterator[bytes]:
    if framing == "length":
        left = length
        while left > 0:
            piece = await reader.read(min(left, 65536))
            if not piece:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(piece)
            yield piece
    elif framing == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
    elif framing == "close":
        while True:
            piece = await reader.read(65536)
            if not piece:
                return
            yield piece


def _response_head(response: _Response) -> bytes:
    return _head(f"HTTP/1.1 {response.status} {response.reason}", response.headers)


def _framed_piece(piece: bytes, framing: str) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" and piece else piece


def _framed(body: bytes, framing: str) -> bytes:
    if framing == "chunked":
        return _framed_piece(body, framing) + b"0\r\n\r\n"
    return body


async def _send(
    writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes, reason: str = ""
) -> None:
    reason = reason or _reason(status)
    headers = [*headers, ("Content-Length", str(len(body)))]
    writer.write(_head(f"HTTP/1.1 {status} {reason}", headers) + body)
    await writer.drain()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _status_page(code: int) -> bytes:
    text = f"{code} {_reason(code)}"
    page = f"<html><head><title>{text}</title></head><body><center><h1>{text}</h1></center></body></html>"
    return page.encode()


def _synthetic(rule: KestraProxyRule) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, headers and body a request-side rule answers with."""
    options = rule.options
    if rule.kind == "html_200":
        return 200, [("Content-Type", "text/html; charset=utf-8")], options["body"]
    if rule.kind == "empty_200":
        return 200, [("Content-Type", "application/json")], b""
    if rule.kind == "garbage_json":
        return 200, [("Content-Type", "application/json")], options["body"]
    headers = [("Content-Type", options["content_type"])]
    if options.get("retry_after") is not None:
        retry_after = options["retry_after"]
        headers.append(
            ("Retry-After", str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after))
        )
    return int(options["code"]), headers, options["body"]


def _created_at(execution: Any) -> float | None:
    """An execution's creation time (epoch seconds) from its state history, if readable."""
    try:
        state = execution["state"]
        text = (state.get("histories") or [{}])[0].get("date") or state.get("startDate")
        text = str(text).replace("Z", "+00:00")
        if "." in text:
            head, _, rest = text.partition(".")
            digits = re.match(r"\d*", rest)
            frac = digits.group(0) if digits else ""
            text = f"{head}.{(frac + '000000')[:6]}{rest[len(frac) :]}"
        return datetime.fromisoformat(text).timestamp()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection abruptly: an RST, not a FIN (SO_LINGER 0), as a crashed peer would."""
    with contextlib.suppress(Exception):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def _until_client_leaves(work: Any, reader: asyncio.StreamReader, check_every: float = 0.2) -> None:
    """Run ``work`` (a streaming relay) until it ends or the client closes its side of the connection.

    A client that goes away from a silent stream is only noticed by reading: without this the upstream
    stream would stay open for ever.
    """
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=check_every)
            if not task.done() and reader.at_eof():
                task.cancel()
                raise _ClientGone
        task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
