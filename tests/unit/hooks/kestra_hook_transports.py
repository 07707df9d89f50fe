"""The ``transport`` adapter of the hook tests: one scenario, run through ``KestraHook`` (requests-mock) and
``KestraAsyncHook`` (respx) alike (the fixture is in conftest.py)."""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import requests
from support.kestra_payloads import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


@dataclass(frozen=True)
class Reply:
    """One mocked answer, translated for requests-mock (sync) or respx (async).

    ``fault``: ``"reset"`` (connection dropped after sending), ``"refused"`` (never sent), ``"idle"``
    (headers sent, then a body that times out as a silent event stream does).
    """

    status: int = 200
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None


class _IdleBody:
    """A requests-mock body whose read times out."""

    closed = False

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        raise TimeoutError("timed out")

    def close(self) -> None:
        pass


class _IdleStream(httpx.AsyncByteStream):
    """An httpx body whose read times out."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        raise httpx.ReadTimeout("timed out")
        yield b""  # pragma: no cover - makes this an async generator


class MockedRoute:
    """What a test asks of a mocked route, the same for both transports."""

    def __init__(self, calls: Callable[[], list[Any]]) -> None:
        self._calls = calls

    @property
    def call_count(self) -> int:
        return len(self._calls())

    def params(self, index: int = -1) -> dict[str, str]:
        """The query parameters of one request (last by default), single values."""
        request = self._calls()[index]
        if isinstance(request, httpx.Request):
            return dict(request.url.params)
        return {key: values[-1] for key, values in parse_qs(urlsplit(request.url).query).items()}

    def read_timeout(self, index: int = 0) -> float:
        request = self._calls()[index]
        if isinstance(request, httpx.Request):
            return float(request.extensions["timeout"]["read"])
        return float(request.timeout[1])

    def header(self, name: str, index: int = -1) -> str:
        return str(self._calls()[index].headers[name])


class KestraTransport:
    """One hook (sync or async) and its HTTP mock behind the same small API, so a scenario is written once.

    ``await t.call("get_execution", id)`` runs either hook's method; ``await t.collect(...)`` drains a
    sync or async generator; ``t.reply(method, path, *replies)`` mocks an endpoint below ``/api/v1/main``
    (the last reply repeats); ``t.sleeps`` lists the pauses the hook asked for (none are slept).
    """

    def __init__(self, name: str, hook: Any, mock: Any) -> None:
        self.name = name
        self.hook = hook
        self.mock = mock
        self.sleeps: list[float] = []
        # Pauses are recorded, not slept; the hook's clock moves on by them (plus the real time spent).
        hook._clock = lambda: time.time() + sum(self.sleeps)
        if name == "sync":
            hook._sleep = self.sleeps.append
        else:

            async def record(seconds: float) -> None:
                self.sleeps.append(seconds)

            hook._asleep = record

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.hook, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        produced = getattr(self.hook, method)(*args, **kwargs)
        if hasattr(produced, "__aiter__"):
            return [item async for item in produced]
        return list(produced)

    def reply(self, method: str, path: str, *replies: Reply) -> MockedRoute:
        url = f"{BASE}/api/v1/main/{path.lstrip('/')}"
        if self.name == "sync":
            matcher = self.mock.register_uri(method, url, [self._requests_reply(r) for r in replies])
            return MockedRoute(lambda: matcher.request_history)
        queue = list(replies)

        def answer(request: httpx.Request) -> httpx.Response:
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            return self._httpx_reply(reply)

        route = self.mock.route(method=method, url=url).mock(side_effect=answer)
        return MockedRoute(lambda: [call.request for call in route.calls])

    def clock(self) -> float:
        """The hook's clock: real time plus every pause the hook asked for."""
        return float(self.hook._clock())

    def reply_with(self, method: str, path: str, choose: Callable[[], Reply]) -> MockedRoute:
        """Mock an endpoint whose answer ``choose()`` picks at each request (e.g. from :meth:`clock`);
        ``path`` is below ``/api/v1/main`` unless it starts with ``/``."""
        url = f"{BASE}{path}" if path.startswith("/") else f"{BASE}/api/v1/main/{path}"
        if self.name == "sync":

            def content(request: Any, context: Any) -> bytes:
                reply = choose()
                answer = self._requests_reply(reply)
                if "exc" in answer:
                    raise answer["exc"]
                context.status_code, context.headers = reply.status, dict(reply.headers)
                if reply.json is not None:
                    context.headers["Content-Type"] = "application/json"
                    return json.dumps(reply.json).encode()
                return reply.content or b""

            matcher = self.mock.register_uri(method, url, content=content)
            return MockedRoute(lambda: matcher.request_history)
        route = self.mock.route(method=method, url=url).mock(
            side_effect=lambda _: self._httpx_reply(choose())
        )
        return MockedRoute(lambda: [call.request for call in route.calls])

    @staticmethod
    def _requests_reply(reply: Reply) -> dict[str, Any]:
        if reply.fault == "reset":
            return {"exc": requests.exceptions.ConnectionError("connection reset")}
        if reply.fault == "refused":
            return {"exc": requests.exceptions.ConnectTimeout("connection refused")}
        if reply.fault == "idle":
            return {"status_code": 200, "body": _IdleBody()}
        body: dict[str, Any] = {"status_code": reply.status, "headers": reply.headers}
        if reply.json is not None:
            body["json"] = reply.json
        elif reply.content is not None:
            body["content"] = reply.content
        return body

    @staticmethod
    def _httpx_reply(reply: Reply) -> httpx.Response:
        if reply.fault == "reset":
            raise httpx.ReadError("connection reset")
        if reply.fault == "refused":
            raise httpx.ConnectError("connection refused")
        if reply.fault == "idle":
            return httpx.Response(200, stream=_IdleStream())
        if reply.json is not None:
            return httpx.Response(reply.status, json=reply.json, headers=reply.headers)
        return httpx.Response(reply.status, content=reply.content or b"", headers=reply.headers)
