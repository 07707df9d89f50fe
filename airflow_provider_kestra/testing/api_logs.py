"""Log endpoints: list per execution, download as text, search, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from airflow_provider_kestra.testing.engine import level_at_least
from airflow_provider_kestra.testing.http import empty, query_int
from airflow_provider_kestra.testing.search import paginate, parse_filters
from airflow_provider_kestra.testing.store import TERMINAL_STATES
from airflow_provider_kestra.testing.views import json_response

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext


def _entries(ctx: KestraSimContext, request: Request, tenant: str) -> list[dict[str, Any]]:
    execution_id = request.path_params["executionId"]
    execution = ctx.store.executions.get(execution_id)
    if execution is None or execution["tenantId"] != tenant:
        return []
    min_level = request.query_params.get("minLevel")
    task_run_id = request.query_params.get("taskRunId")
    task_id = request.query_params.get("taskId")
    attempt = query_int(request, "attempt", None)
    return [
        entry
        for entry in ctx.store.logs.get(execution_id, [])
        if level_at_least(entry["level"], min_level)
        and (task_run_id is None or entry.get("taskRunId") == task_run_id)
        and (task_id is None or entry.get("taskId") == task_id)
        and (attempt is None or entry.get("attemptNumber") == attempt)
    ]


async def list_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/{executionId}`` -> LogEntry[] (not paged; unknown execution -> [])."""
    return json_response(_entries(ctx, request, tenant))


async def download_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/{executionId}/download``: ``<instant> <LEVEL> <message>`` lines, no trailing newline."""
    execution_id = request.path_params["executionId"]
    text = "\n".join(f"{e['timestamp']} {e['level']} {e['message']}" for e in _entries(ctx, request, tenant))
    headers = {"Content-Disposition": f'attachment; filename="{execution_id}.log"'}
    execution = ctx.store.executions.get(execution_id)
    if execution is not None and execution["state"]["current"] not in TERMINAL_STATES:
        headers["Cache-Control"] = "no-cache"
    return Response(text.encode(), media_type="text/plain", headers=headers)


async def search_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/search`` with ``filters[...]``: PagedResults (2.0: with ``type``)."""
    filters = parse_filters(request, "LOG")
    entries = [
        entry
        for execution_id, logs in ctx.store.logs.items()
        if (execution := ctx.store.executions.get(execution_id)) is not None
        and execution["tenantId"] == tenant
        for entry in logs
        if filters.match_log(entry)
    ]
    entries.sort(key=lambda e: str(e["timestamp"]), reverse=True)
    page = paginate(request, entries, "searchLogs")
    if ctx.profile.logs_search_cursor:
        page["type"] = "OFFSET"
    return json_response(page)


async def delete_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /logs/{executionId}`` -> 200 with no body (a void method; LogControllerTest expects OK)."""
    execution = ctx.store.executions.get(request.path_params["executionId"])
    if execution is not None and execution["tenantId"] == tenant:
        ctx.store.logs.pop(execution["id"], None)
    return empty(200)
