"""Fault injection: added latency, 5xx and 429 answers, dropped connections and cut SSE streams.

Rules are switchable per instance (``sim.faults.fail(503, count=2)``) and over HTTP for a running
``kestra-sim`` (``POST /_simulator/faults``). A rule matches a request by method and a regular expression
searched in the path, fires with probability ``rate`` (drawn from a seeded RNG, so runs are repeatable),
and stops after ``count`` firings: ``count=N, rate=1`` means exactly "the next N matching requests".
Admin endpoints under ``/_simulator/`` are never affected.

``action_timeout`` rules are not HTTP faults: they make the 2.0 line's awaited execution actions (kill,
restart, resume, pause, labels) time out in the executor, which Kestra answers 504 (``awaitBlockingAction``).
They match the action, not the request, and are decided by the backend (:meth:`decide_action`).

``search_lag`` and ``read_after_write_lag`` rules are not HTTP faults either: they reproduce an eventually
consistent store (Kestra's executions reach the search index, Elasticsearch in EE, after the write). The
backend asks :meth:`decide_lag` and hides from ``/executions/search`` the executions created less than
``lag`` seconds ago, or answers ``GET /executions/{id}`` 404 during that time, as Kestra answers an unknown
execution. Their ``count`` counts the answers they changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.journal import (
    FAULTS_SCOPE_KEY,
    TRANSPORT_SCOPE_KEY,
    connection_transport,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

FAULT_KINDS = (
    "latency", "error", "throttle", "drop", "drop_after_response", "cut_stream", "action_timeout",
    "search_lag", "read_after_write_lag",
)  # fmt: skip
#: Rule kinds decided by the backend, not by the HTTP middleware.
BACKEND_KINDS = frozenset({"action_timeout", "search_lag", "read_after_write_lag"})
#: The awaited actions an ``action_timeout`` rule can name.
ACTIONS = ("kill", "restart", "resume", "pause", "labels")


@dataclass
class KestraSimFaultRule:
    """One fault. ``kind``: latency | error | throttle | drop | drop_after_response | cut_stream |
    action_timeout (``action``: one of :data:`ACTIONS` or None for all; ``applied``: the command still takes
    effect, as a command the executor processes after the webserver gave up waiting) | search_lag |
    read_after_write_lag (``lag``: seconds during which a new execution is invisible)."""

    kind: str
    method: str | None = None
    path: str | None = None
    rate: float = 1.0
    count: int | None = None
    status: int = 503
    latency: float = 0.0
    retry_after: int = 1
    after_events: int = 1
    action: str | None = None
    applied: bool = True
    lag: float = 0.0
    fired: int = 0
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule applies to this request (ignoring rate and count)."""
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


@dataclass
class KestraSimulatorFaults:
    """The fault rules of one simulator (thread-safe: tests change them while the server runs)."""

    seed: int | None = None
    rules: list[KestraSimFaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._next_id = 1

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence (deterministic rates)."""
        with self._lock:
            self.seed = seed
            self._random = random.Random(seed)

    def add(self, rule: KestraSimFaultRule) -> KestraSimFaultRule:
        """Add a rule and return it (its ``fired`` counter shows how often it fired)."""
        if rule.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {rule.kind!r}; choose one of {FAULT_KINDS}")
        if rule.path:
            re.compile(rule.path)
        if rule.action is not None and rule.action not in ACTIONS:
            raise ValueError(f"Unknown action {rule.action!r}; choose one of {ACTIONS}")
        if rule.kind in ("search_lag", "read_after_write_lag") and not rule.lag > 0:
            raise ValueError(f"A {rule.kind} rule needs lag > 0 (seconds), not {rule.lag!r}")
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self.rules.append(rule)
        return rule

    def latency(self, seconds: float, **match: Any) -> KestraSimFaultRule:
        """Delay matching requests by ``seconds``."""
        return self.add(KestraSimFaultRule("latency", latency=seconds, **match))

    def fail(self, status: int = 503, **match: Any) -> KestraSimFaultRule:
        """Answer matching requests with a 5xx (or any) status instead of processing them."""
        return self.add(KestraSimFaultRule("error", status=status, **match))

    def throttle(self, retry_after: int = 1, **match: Any) -> KestraSimFaultRule:
        """Answer 429 with ``Retry-After: retry_after``."""
        return self.add(KestraSimFaultRule("throttle", status=429, retry_after=retry_after, **match))

    def drop(self, *, after_response: bool = False, **match: Any) -> KestraSimFaultRule:
        """Close the connection without an answer; ``after_response`` processes the request first."""
        return self.add(KestraSimFaultRule("drop_after_response" if after_response else "drop", **match))

    def cut_streams(self, after_events: int = 1, **match: Any) -> KestraSimFaultRule:
        """Cut SSE streams after ``after_events`` events (no ``end`` event, connection closed)."""
        return self.add(KestraSimFaultRule("cut_stream", after_events=after_events, **match))

    def action_timeout(
        self, action: str | None = None, *, applied: bool = True, **match: Any
    ) -> KestraSimFaultRule:
        """Make the next awaited ``action`` (2.0: kill, restart, resume, pause, labels; None: any) answer 504
        ``timeout``; ``applied`` says whether the action still happens. Takes ``rate=`` and ``count=``."""
        return self.add(KestraSimFaultRule("action_timeout", action=action, applied=applied, **match))

    def search_lag(self, seconds: float, **match: Any) -> KestraSimFaultRule:
        """Hide from ``/executions/search`` every execution created less than ``seconds`` ago (a search index
        that lags behind writes). Takes ``rate=`` and ``count=`` (answers changed)."""
        return self.add(KestraSimFaultRule("search_lag", lag=seconds, **match))

    def read_after_write_lag(self, seconds: float, **match: Any) -> KestraSimFaultRule:
        """Answer ``GET /executions/{id}`` 404 (Kestra's answer for an unknown execution) until the execution
        is ``seconds`` old (a read replica behind the writer). Takes ``rate=`` and ``count=`` (answers
        changed)."""
        return self.add(KestraSimFaultRule("read_after_write_lag", lag=seconds, **match))

    def decide_lag(self, kind: str) -> KestraSimFaultRule | None:
        """The ``search_lag`` or ``read_after_write_lag`` rule in force for one answer (rate drawn), if any;
        call :meth:`lag_fired` when it changed the answer."""
        if not self.rules:
            return None
        with self._lock:
            for rule in self.rules:
                if rule.kind != kind:
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                return rule
        return None

    def lag_fired(self, rule: KestraSimFaultRule) -> None:
        """Count an answer a lag rule changed (the rule goes once ``count`` answers were changed)."""
        with self._lock:
            rule.fired += 1
            if rule.count is not None and rule.fired >= rule.count and rule in self.rules:
                self.rules.remove(rule)

    def decide_action(self, action: str) -> KestraSimFaultRule | None:
        """The ``action_timeout`` rule that fires for ``action`` (consuming its count), if any."""
        if not self.rules:
            return None
        with self._lock:
            for rule in list(self.rules):
                if rule.kind != "action_timeout" or rule.action not in (None, action):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                if rule.count is not None and rule.fired >= rule.count:
                    self.rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self.rules.clear()

    def decide(self, method: str, path: str) -> list[KestraSimFaultRule]:
        """The rules that fire for this request (consuming their counts)."""
        if not self.rules:
            return []
        fired: list[KestraSimFaultRule] = []
        with self._lock:
            for rule in list(self.rules):
                if rule.kind in BACKEND_KINDS or not rule.matches(method, path):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                fired.append(rule)
                if rule.count is not None and rule.fired >= rule.count:
                    self.rules.remove(rule)
        return fired

    def to_json(self) -> list[dict[str, Any]]:
        """The active rules as JSON."""
        with self._lock:
            return [asdict(rule) for rule in self.rules]


class KestraSimDropLogFilter(logging.Filter):
    """Hide uvicorn's complaint about a response never started: that is what a dropped connection is."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without starting response" not in record.getMessage()


class KestraSimFaultMiddleware:
    """Outermost ASGI layer: applies fault rules (costs one dict lookup when there are none)."""

    def __init__(self, app: ASGIApp, faults: KestraSimulatorFaults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        rules = [] if path.startswith("/_simulator/") else self.faults.decide(scope["method"], path)
        if not rules:
            await self.app(scope, receive, send)
            return
        scope[FAULTS_SCOPE_KEY] = [rule.kind for rule in rules]
        transport = scope.get(TRANSPORT_SCOPE_KEY) or connection_transport(send)
        marked_send = send
        for rule in rules:
            if rule.kind == "latency":
                await asyncio.sleep(rule.latency)
        for rule in rules:
            if rule.kind == "drop" and transport is not None:
                transport.abort()
                return
            if rule.kind in ("error", "throttle"):
                await self._answer(rule, path, marked_send)
                return
        cut = next((r for r in rules if r.kind == "cut_stream"), None)
        drop_after = any(r.kind == "drop_after_response" for r in rules)
        if drop_after and transport is not None:
            await self.app(scope, receive, self._swallow(transport))
            return
        if cut is not None and transport is not None:
            await self.app(scope, receive, self._cutting(marked_send, transport, cut.after_events))
            return
        await self.app(scope, receive, marked_send)

    async def _answer(self, rule: KestraSimFaultRule, path: str, send: Send) -> None:
        reason = "Too Many Requests" if rule.status == 429 else "Simulated fault"
        body = json.dumps({"message": f"{reason}: injected by the Kestra simulator", "path": path}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if rule.kind == "throttle":
            headers.append((b"retry-after", str(rule.retry_after).encode()))
        headers.append((b"x-kestra-simulator-fault", rule.kind.encode()))
        headers.append((b"x-kestra-simulator", b"true"))
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _swallow(transport: Any) -> Send:
        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                transport.abort()

        return send

    @staticmethod
    def _cutting(send: Send, transport: Any, after_events: int) -> Send:
        seen = 0

        async def cutting_send(message: Message) -> None:
            nonlocal seen
            if transport.is_closing():
                return
            await send(message)
            if message["type"] == "http.response.body":
                seen += bytes(message.get("body", b"")).count(b"\n\n")
                if seen >= after_events:
                    transport.abort()

        return cutting_send
