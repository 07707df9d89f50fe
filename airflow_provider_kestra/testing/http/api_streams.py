"""Server-sent event endpoints framed as Micronaut frames them: ``id:`` and ``data:`` lines, no ``event:``.

Execution follow: ``start`` stub, ``progress`` per update, ``end`` then close. Log follow: ``start`` with an
empty LogEntry (1.x), every stored line and live lines as ``progress``; it never ends by itself.
Streams are async generators woken by :class:`KestraSimHub`; no thread and no polling per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from airflow_provider_kestra.testing.backend.clock import now_instant
from airflow_provider_kestra.testing.backend.engine import is_stop_follow, level_at_least
from airflow_provider_kestra.testing.http.views import execution_bytes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_provider_kestra.testing.context import KestraSimContext

_SSE_HEADERS = {"Cache-Control": "no-cache"}


def sse_frame(event_id: str, data: Any) -> bytes:
    """One SSE frame: ``id: <id>\\ndata: <json>\\n\\n``."""
    return f"id: {event_id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def execution_frame(ctx: KestraSimContext, event_id: str, execution: dict[str, Any]) -> bytes:
    """An execution frame from the cached serialized body (thousands of followers share it)."""
    return b"id: " + event_id.encode() + b"\ndata: " + execution_bytes(ctx, execution) + b"\n\n"


def _stream(body: AsyncIterator[bytes]) -> Response:
    return StreamingResponse(body, media_type="text/event-stream", headers=_SSE_HEADERS)


async def _wait(ctx: KestraSimContext, event: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait for a hub event; False on timeout."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        return False
    return not ctx.closing


async def follow_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}/follow``."""
    execution_id = request.path_params["executionId"]

    async def frames() -> AsyncIterator[bytes]:
        if ctx.profile.follow_start_event:
            # Follow frames are ``Execution`` in every line (not 2.0's ``ApiExecution``): it has ``deleted``.
            stub: dict[str, Any] = {"id": execution_id, "labels": [], "originalId": execution_id}
            stub["deleted"] = False
            stub["metadata"] = {"attemptNumber": 1, "originalCreatedDate": now_instant()}
            yield sse_frame("start", stub)
        deadline = time.monotonic() + ctx.follow_missing_timeout
        execution = ctx.backend.store.execution(tenant, execution_id)
        while execution is None:
            event = ctx.hub.event(execution_id)
            execution = ctx.backend.store.execution(tenant, execution_id)
            if execution is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or ctx.closing:
                return
            await _wait(ctx, event, min(remaining, 0.5))
            execution = ctx.backend.store.execution(tenant, execution_id)
        if is_stop_follow(execution):
            yield execution_frame(ctx, "end", execution)
            return
        while not ctx.closing:
            event = ctx.hub.event(execution_id)
            if is_stop_follow(execution) or execution.get("deleted"):
                yield execution_frame(ctx, "end", execution)
                return
            yield execution_frame(ctx, "progress", execution)
            await _wait(ctx, event)

    return _stream(frames())


async def follow_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/{executionId}/follow?minLevel=``: history then live lines; never completes."""
    execution_id = request.path_params["executionId"]
    min_level = request.query_params.get("minLevel")

    async def frames() -> AsyncIterator[bytes]:
        if ctx.profile.log_follow_start_event:
            # 1.x: an empty LogEntry (attemptNumber is @JsonInclude ALWAYS); 2.0: an empty FollowLogEvent.
            yield b"id: start\ndata: " + ctx.profile.log_follow_start_payload.encode() + b"\n\n"
        sent = 0
        key = "logs:" + execution_id
        while not ctx.closing:
            event = ctx.hub.event(key)
            entries = ctx.backend.stored_logs(tenant, execution_id)
            for entry in entries[sent:]:
                if level_at_least(entry["level"], min_level):
                    yield sse_frame("progress", entry)
            sent = len(entries)
            await _wait(ctx, event)

    return _stream(frames())


async def close_streams(ctx: KestraSimContext) -> None:
    """Make every open stream finish (server shutdown)."""
    ctx.closing = True
    ctx.hub.notify_all()
    with contextlib.suppress(Exception):
        await asyncio.sleep(0)
