"""``LogController`` routes: list per execution, download as text, search, delete (follow: api_streams)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from airflow_provider_kestra.testing.backend.search import paginate, parse_filters
from airflow_provider_kestra.testing.http.endpoint import empty, page_params, query_int, query_items
from airflow_provider_kestra.testing.http.errors import bad_request
from airflow_provider_kestra.testing.http.views import json_response

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext


def _entries(ctx: KestraSimContext, request: Request, tenant: str) -> list[dict[str, Any]]:
    """The execution's LogEntries filtered by ``minLevel``, ``taskRunId``, ``taskId`` and ``attempt``."""
    return ctx.backend.execution_logs(
        tenant,
        request.path_params["executionId"],
        min_level=request.query_params.get("minLevel"),
        task_run_id=request.query_params.get("taskRunId"),
        task_id=request.query_params.get("taskId"),
        attempt=query_int(request, "attempt", None),
    )


async def list_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/{executionId}`` -> LogEntry[] (not paged; unknown execution -> [])."""
    return json_response(_entries(ctx, request, tenant))


async def download_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/{executionId}/download``: ``<instant> <LEVEL> <message>`` lines, no trailing newline."""
    execution_id = request.path_params["executionId"]
    text = "\n".join(f"{e['timestamp']} {e['level']} {e['message']}" for e in _entries(ctx, request, tenant))
    headers = {"Content-Disposition": f'attachment; filename="{execution_id}.log"'}
    if ctx.backend.is_running(tenant, execution_id):
        headers["Cache-Control"] = "no-cache"
    return Response(text.encode(), media_type="text/plain", headers=headers)


#: ``@Format("yyyy-MM-dd'T'HH:mm[:ss][.SSS][XXX]") ZonedDateTime`` of the deprecated ``startDate`` and
#: ``endDate``: at most milliseconds, and a zone (a ZonedDateTime cannot be built without one).
_LEGACY_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{3})?)?(?:Z|[+-]\d{2}:\d{2})$")


async def search_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /logs/search`` with ``filters[...]`` or the deprecated parameters: PagedResults (2.0: with
    ``type``). A deprecated date off its ``@Format`` is a 400 conversion error."""
    for name in ("startDate", "endDate"):
        raw = request.query_params.get(name)
        if raw is not None and not _LEGACY_DATE.match(raw):
            raise bad_request(f"Failed to convert argument [{name}] for value [{raw}]")
    filters = parse_filters(query_items(request), "LOG", legacy_mapping=ctx.profile.logs_search_query_filters)
    entries = ctx.backend.search_logs(tenant, filters, request.query_params.getlist("sort"))
    page = paginate(*page_params(request), entries, "searchLogs")
    if ctx.profile.logs_search_cursor:
        page["type"] = "OFFSET"
    return json_response(page)


async def delete_logs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /logs/{executionId}`` -> 200 with no body (a void method; LogControllerTest expects OK)."""
    ctx.backend.delete_logs(tenant, request.path_params["executionId"])
    return empty(200)
