"""A small ASGI router: Starlette's Router scans every route with a regex (25 regex calls for a GET of an
execution); this one buckets routes by their first literal segment after the API prefix, which keeps the
simulator's per-request cost low enough for thousands of requests per second on a busy 2-core machine.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_kestra.testing.http.endpoint import error_headers
from airflow_provider_kestra.testing.http.errors import KestraSimulatorHttpError

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from airflow_provider_kestra.testing.context import KestraSimContext

KestraSimEndpoint = Callable[[Request], Awaitable[Response]]
_PARAM = re.compile(r"\{(\w+)(?::path)?\}")
_SIMULATOR_HEADER = (b"x-kestra-simulator", b"true")


@dataclass
class KestraSimRoute:
    """One route: a path template like ``/api/v1/{tenant}/executions/{executionId}``."""

    template: str
    methods: frozenset[str]
    endpoint: KestraSimEndpoint

    def __post_init__(self) -> None:
        pattern = ""
        position = 0
        for match in _PARAM.finditer(self.template):
            pattern += re.escape(self.template[position : match.start()])
            pattern += (
                f"(?P<{match.group(1)}>.+)" if ":path}" in match.group(0) else f"(?P<{match.group(1)}>[^/]+)"
            )
            position = match.end()
        pattern += re.escape(self.template[position:])
        self.regex = re.compile(f"^{pattern}$")


class KestraSimRouter:
    """Dispatch by (API prefix, first segment); also speaks the ASGI lifespan protocol."""

    def __init__(
        self,
        ctx: KestraSimContext,
        prefix_segments: int,
        routes: list[KestraSimRoute],
        alias_tenant: bool,
        startup: Callable[[], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self.ctx = ctx
        self.prefix_segments = prefix_segments
        self.alias_tenant = alias_tenant
        self.startup = startup
        self.shutdown = shutdown
        self.exact: dict[str, list[KestraSimRoute]] = {}
        self.buckets: dict[str, list[KestraSimRoute]] = {}
        for route in routes:
            if "{" not in route.template:
                self.exact.setdefault(route.template, []).append(route)
            key = self._bucket(route.template)
            if key is not None and not key.startswith("{"):
                self.buckets.setdefault(key, []).append(route)

    def _bucket(self, path: str) -> str | None:
        parts = path.split("/", self.prefix_segments + 2)
        if len(parts) < self.prefix_segments + 2 or parts[1] != "api":
            return None
        return parts[self.prefix_segments + 1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        if await self._dispatch(path, scope, receive, send):
            return
        # Kestra OSS 0.23+ (TenantAliasingRooter): a request that matched no route is retried with /main.
        aliased = "/api/v1/main" + path[7:]
        if (
            self.alias_tenant
            and path.startswith("/api/v1/")
            and not path.startswith("/api/v1/main/")
            and path != "/api/v1/configs"
            and await self._dispatch(aliased, scope, receive, send)
        ):
            return
        allowed = self._allowed_methods(path)
        if allowed:
            # Micronaut's 405 (2.0: problem ``method-not-allowed``), with the methods the path does serve.
            detail = (
                f"Method [{scope['method']}] not allowed for URI [{path}]. "
                f"Allowed methods: [{', '.join(allowed)}]"
            )
            error = KestraSimulatorHttpError(405, detail, headers={"Allow": ", ".join(allowed)})
        else:
            # No route: 1.x ErrorController ``notFound`` ("Not Found"), 2.0 the ``not-found`` problem with
            # ``X-Kestra-Route-Matched: false`` (see :func:`~.endpoint.error_headers`).
            error = KestraSimulatorHttpError(404, reason="Not Found", empty=self.ctx.profile.problem_json)
        await self._answer(error, scope, receive, send, route_matched=False)

    def _candidates(self, path: str) -> list[KestraSimRoute]:
        candidates = self.exact.get(path)
        if candidates is None:
            key = self._bucket(path)
            candidates = self.buckets.get(key, []) if key is not None else []
        return candidates

    def _allowed_methods(self, path: str) -> list[str]:
        """The methods of the routes whose template matches ``path`` (empty: no route at all)."""
        methods = {m for route in self._candidates(path) if route.regex.match(path) for m in route.methods}
        return sorted(methods)

    async def _dispatch(self, path: str, scope: Scope, receive: Receive, send: Send) -> bool:
        candidates = self._candidates(path)
        for route in candidates:
            match = route.regex.match(path)
            if match is None or scope["method"] not in route.methods:
                continue
            scope["path_params"] = match.groupdict()
            await self._call(route.endpoint, scope, receive, send)
            return True
        return False

    async def _call(self, endpoint: KestraSimEndpoint, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except KestraSimulatorHttpError as known:
            await self._answer(known, scope, receive, send)
            return
        except Exception as exc:  # a simulator bug must be loud: 500, the cause in a header and on stderr
            traceback.print_exc(file=sys.stderr)
            cause = f"{type(exc).__name__}: {exc}"
            error = KestraSimulatorHttpError(
                500, cause, reason="Internal server error", headers={"X-Kestra-Simulator-Error": cause[:500]}
            )
            await self._answer(error, scope, receive, send)
            return
        response.raw_headers.append(_SIMULATOR_HEADER)
        await response(scope, receive, send)

    async def _answer(
        self,
        error: KestraSimulatorHttpError,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        route_matched: bool = True,
    ) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        body, media_type = error.render(self.ctx.profile, scope["path"], query)
        headers = error_headers(self.ctx, error, route_matched=route_matched)
        response = Response(body, status_code=error.status, media_type=media_type, headers=headers)
        response.raw_headers.append(_SIMULATOR_HEADER)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
