"""Counts the HTTP requests the provider's async hook sends, by wrapping ``httpx.AsyncClient.send``.

The simulator exposes no request counter, so the client side is counted instead: every request any
``httpx.AsyncClient`` in the process sends (retries and SSE streams included) passes through ``send``.
"""

from __future__ import annotations

from typing import Any

import httpx


class HttpRequestCounter:
    """Totals of requests sent while installed: all of them, execution reads, and SSE follows."""

    def __init__(self) -> None:
        self.total = 0
        self.execution_reads = 0
        self.follows = 0
        self._original = httpx.AsyncClient.send

    def install(self) -> HttpRequestCounter:
        """Start counting (idempotent per instance); returns self."""
        original = self._original

        async def counting_send(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
            path = request.url.path
            self.total += 1
            if "/executions/" in path:
                self.execution_reads += 1
            if path.endswith("/follow"):
                self.follows += 1
            return await original(client, request, **kwargs)

        httpx.AsyncClient.send = counting_send  # type: ignore[method-assign,assignment]
        return self

    def uninstall(self) -> None:
        """Put the original ``send`` back."""
        httpx.AsyncClient.send = self._original  # type: ignore[method-assign]
