"""Internal-storage file download of ``ExecutionController`` (``/file``, ``/file/metas``), with Kestra's
prefix rules: a file of another execution is redirected, anything else outside the prefix refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from airflow_provider_kestra.testing.backend.backend import KestraSimFileElsewhere, KestraSimStoredFile
from airflow_provider_kestra.testing.http.errors import bad_request
from airflow_provider_kestra.testing.http.views import json_response

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext


def _resolve(
    ctx: KestraSimContext, request: Request, tenant: str, suffix: str
) -> KestraSimStoredFile | Response:
    """The file named by ``path=``, or the redirect to the execution that owns it."""
    raw = request.query_params.get("path")
    if raw is None:
        raise bad_request("Required QueryValue [path] not specified")
    found = ctx.backend.execution_file(tenant, request.path_params["executionId"], raw)
    if isinstance(found, KestraSimFileElsewhere):
        tenant_part = f"{tenant}/" if ctx.profile.tenant_in_path else ""
        location = f"/api/v1/{tenant_part}executions/{found.execution_id}/{suffix}?path={raw}"
        return Response(b"", status_code=301, headers={"Location": location})
    return found


async def download_file(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}/file?path=kestra:///...`` -> octet-stream attachment."""
    found = _resolve(ctx, request, tenant, "file")
    if isinstance(found, Response):
        return found
    name = found.path.rsplit("/", 1)[-1]
    return Response(
        found.content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def file_metas(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}/file/metas?path=`` -> ``{"size": n}``."""
    found = _resolve(ctx, request, tenant, "file/metas")
    if isinstance(found, Response):
        return found
    return json_response({"size": len(found.content)})
