"""Counts the HTTP requests the simulator answered, from its request journal (``GET /_simulator/requests``).

The simulator records every request it answers (``airflow_provider_kestra.testing.journal``); this reads
that journal over HTTP, since the benchmarks run the simulator in its own process. Counting at the server
replaces wrapping ``httpx.AsyncClient.send`` in the measured process: nothing is patched in the client,
and retries, SSE streams and fault-injected answers are counted as the server saw them. A count covers
every client of the simulator, so read it only around phases where the measured code is the one talking.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import requests

EXECUTION_PATHS = r"/executions/"
FOLLOW_PATHS = r"/follow$"


class HttpRequestCounter:
    """Requests the simulator answered since :meth:`start`: all of them, execution reads, SSE follows."""

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/") + "/_simulator/requests"
        self.session = session or requests.Session()
        self._since = 0
        self._dropped = 0

    def _journal(self, path: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"since": self._since, "limit": 0, **({"path": path} if path else {})}
        response = self.session.get(self.url, params=params, timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if answer["dropped"] > self._dropped:
            raise RuntimeError(
                "the simulator's request journal forgot requests during the measure: "
                "start kestra-sim with a larger --journal-size"
            )
        return answer

    def start(self) -> HttpRequestCounter:
        """Count from now on; returns self."""
        answer = self._journal()
        self._since, self._dropped = int(answer["total"]), int(answer["dropped"])
        return self

    def _count(self, path: str | None = None) -> int:
        return int(self._journal(path)["count"])

    @property
    def total(self) -> int:
        """Every request answered since :meth:`start`."""
        return self._count()

    @property
    def execution_reads(self) -> int:
        """Requests on ``/executions/...`` paths since :meth:`start` (reads, follows, actions)."""
        return self._count(EXECUTION_PATHS)

    @property
    def follows(self) -> int:
        """SSE follow requests since :meth:`start`."""
        return self._count(FOLLOW_PATHS)


# --------------------------------------------------------------------------------------- issue 12 helpers
_ROUTE_PATTERNS = (
    (re.compile(r"^/api/v1(?:/[^/]+)?/configs$"), "/configs"),
    (re.compile(r"^/api/v1/[^/]+/logs/search$"), "/logs/search"),
    (re.compile(r"^/api/v1/[^/]+/logs/[^/]+/follow$"), "/logs/{id}/follow"),
    (re.compile(r"^/api/v1/[^/]+/logs/[^/]+/download$"), "/logs/{id}/download"),
    (re.compile(r"^/api/v1/[^/]+/logs/[^/]+$"), "/logs/{id}"),
    (re.compile(r"^/api/v1/[^/]+/executions/search$"), "/executions/search"),
    (re.compile(r"^/api/v1/[^/]+/executions/[^/]+/follow$"), "/executions/{id}/follow"),
    (
        re.compile(r"^/api/v1/[^/]+/executions/[^/]+/(kill|restart|resume|outputs|file)(/.*)?$"),
        "/executions/{id}/\\1",
    ),
    (re.compile(r"^/api/v1/[^/]+/executions/[^/]+/[^/]+$"), "/executions/{namespace}/{flowId}"),
    (re.compile(r"^/api/v1/[^/]+/executions/[^/]+$"), "/executions/{id}"),
    (re.compile(r"^/api/v1/[^/]+/flows/.*$"), "/flows/..."),
)


def route_of(method: str, path: str) -> str:
    """``GET /executions/{id}``: a journal entry's method and path with ids and the tenant taken out."""
    for pattern, template in _ROUTE_PATTERNS:
        if pattern.match(path):
            return f"{method} {pattern.sub(template, path)}"
    return f"{method} {path}"


def journal_entries(counter: HttpRequestCounter, since: int | None = None) -> list[dict[str, Any]]:
    """The journal entries recorded since :meth:`HttpRequestCounter.start` (or journal position ``since``)."""
    params = {"since": counter._since if since is None else since, "limit": 1_000_000}
    response = counter.session.get(counter.url, params=params, timeout=60)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


def by_route(entries: list[dict[str, Any]]) -> Counter[str]:
    """How many journal entries went to each route (:func:`route_of`)."""
    return Counter(route_of(entry["method"], entry["path"]) for entry in entries)


def format_routes(routes: Counter[str]) -> str:
    """``3 GET /logs/{id}, 2 GET /configs``: the busiest routes first."""
    return ", ".join(f"{n} {route}" for route, n in routes.most_common()) or "none"


class ResponseByteCounter:
    """Response-body bytes the measured process received, per route, for httpx (sync and async
    transports) and requests (urllib3 responses): a counting transport installed in the process.

    Bytes are counted as they come off the connection (after de-chunking, before JSON decoding), so a
    body the client stops reading early counts only what was read. Install once per process, in the
    measured subprocess only.
    """

    def __init__(self) -> None:
        self.bytes: Counter[str] = Counter()

    def snapshot(self) -> Counter[str]:
        """A copy of the per-route totals so far."""
        return Counter(self.bytes)

    def install(self) -> ResponseByteCounter:
        """Wrap httpx's transports and requests' adapter; returns self."""
        import httpx
        import requests.adapters

        counts = self.bytes

        class CountingAsyncStream(httpx.AsyncByteStream):
            def __init__(self, inner: Any, route: str) -> None:
                self.inner, self.route = inner, route

            async def __aiter__(self) -> Any:
                async for chunk in self.inner:
                    counts[self.route] += len(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await self.inner.aclose()

        class CountingSyncStream(httpx.SyncByteStream):
            def __init__(self, inner: Any, route: str) -> None:
                self.inner, self.route = inner, route

            def __iter__(self) -> Any:
                for chunk in self.inner:
                    counts[self.route] += len(chunk)
                    yield chunk

            def close(self) -> None:
                self.inner.close()

        async_send = httpx.AsyncHTTPTransport.handle_async_request
        sync_send = httpx.HTTPTransport.handle_request

        async def handle_async_request(transport: Any, request: Any) -> Any:
            response = await async_send(transport, request)
            response.stream = CountingAsyncStream(response.stream, route_of(request.method, request.url.path))
            return response

        def handle_request(transport: Any, request: Any) -> Any:
            response = sync_send(transport, request)
            response.stream = CountingSyncStream(response.stream, route_of(request.method, request.url.path))
            return response

        httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign,assignment]
        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign,assignment]

        build_response = requests.adapters.HTTPAdapter.build_response

        def counting_build_response(adapter: Any, req: Any, resp: Any) -> Any:
            route = route_of(req.method, req.path_url.split("?", 1)[0])
            read, read_chunked = resp.read, resp.read_chunked

            def counted_read(*args: Any, **kwargs: Any) -> bytes:
                data: bytes = read(*args, **kwargs)
                counts[route] += len(data)
                return data

            def counted_read_chunked(*args: Any, **kwargs: Any) -> Any:
                for data in read_chunked(*args, **kwargs):
                    counts[route] += len(data)
                    yield data

            resp.read, resp.read_chunked = counted_read, counted_read_chunked
            return build_response(adapter, req, resp)

        requests.adapters.HTTPAdapter.build_response = counting_build_response  # type: ignore[method-assign,assignment]
        return self
