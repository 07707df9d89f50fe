"""``FlowController`` routes: create, update, get, delete, list, search, revisions, validate, bulk deploy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile

from airflow_provider_kestra.testing.backend.exceptions import KestraSimConstraintViolation
from airflow_provider_kestra.testing.backend.flows import parse_flow, split_flow_sources
from airflow_provider_kestra.testing.backend.search import paginate, parse_filters
from airflow_provider_kestra.testing.http.endpoint import (
    empty,
    page_params,
    query_bool,
    query_int,
    query_items,
    read_text,
)
from airflow_provider_kestra.testing.http.errors import bad_request
from airflow_provider_kestra.testing.http.views import flow_json, json_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_provider_kestra.testing.context import KestraSimContext


async def create_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows`` -> 200 FlowWithSource (revision 1); duplicates 422 (409 in 2.0)."""
    item = ctx.backend.create_flow(tenant, await read_text(request))
    return json_response(flow_json(ctx, item, source=True))


async def update_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``PUT /flows/{namespace}/{id}``; identical source keeps its revision."""
    params = request.path_params
    item = ctx.backend.update_flow(tenant, params["namespace"], params["id"], await read_text(request))
    return json_response(flow_json(ctx, item, source=True))


async def get_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/{namespace}/{id}?source=&revision=&allowDeleted=``."""
    item = ctx.backend.get_flow(
        tenant,
        request.path_params["namespace"],
        request.path_params["id"],
        query_int(request, "revision", None),
        allow_deleted=query_bool(request, "allowDeleted", False),
    )
    return json_response(flow_json(ctx, item, source=query_bool(request, "source", False)))


async def delete_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /flows/{namespace}/{id}`` -> 204 (a soft delete revision)."""
    ctx.backend.delete_flow(tenant, request.path_params["namespace"], request.path_params["id"])
    return empty(204)


async def list_namespace_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/{namespace}`` -> Flow[] of exactly that namespace."""
    items = ctx.backend.namespace_flows(tenant, request.path_params["namespace"])
    return json_response([flow_json(ctx, r, source=False) for r in items])


async def search_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/search`` with ``filters[namespace|q|labels|flowId][OP]`` (and legacy params)."""
    items = ctx.backend.find_flows(tenant, parse_filters(query_items(request), "FLOW"))
    bodies = [flow_json(ctx, r, source=False) for r in items]
    return json_response(paginate(*page_params(request), bodies, "searchFlows"))


async def list_revisions(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/{namespace}/{id}/revisions`` -> FlowWithSource[] (deleted ones with allowDelete)."""
    revisions = ctx.backend.flow_revisions(
        tenant,
        request.path_params["namespace"],
        request.path_params["id"],
        allow_deleted=query_bool(request, "allowDelete", False),
    )
    return json_response([flow_json(ctx, r, source=True) for r in revisions])


async def delete_revisions(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /flows/{namespace}/{id}/revisions?revisions=1&revisions=2`` -> 204."""
    raw = request.query_params.getlist("revisions")
    if not raw:
        raise bad_request("Required QueryValue [revisions] not specified")
    numbers = []
    for value in ",".join(raw).split(","):
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise bad_request(f"Failed to convert argument [revisions] for value [{value}]")
        numbers.append(int(value))
    ctx.backend.delete_flow_revisions(
        tenant, request.path_params["namespace"], request.path_params["id"], numbers
    )
    return empty(204)


async def _sources(request: Request, *, naive: bool = False) -> list[tuple[str | None, str]]:
    """(filename, source) of each flow of a multi-document YAML body or of the ``flows`` multipart parts.

    ``naive``: cut the body at every ``---`` and keep each piece as is, as the bulk endpoints do
    (``flows.split("---")`` in ``FlowController#bulkUpdateFlows``, kestra-io/kestra@044883a0);
    ``/flows/validate`` cuts on ``---`` lines instead."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        out: list[tuple[str | None, str]] = []
        for name, value in form.multi_items():
            if name == "flows" and isinstance(value, UploadFile):
                out.append((value.filename, (await value.read()).decode("utf-8", "replace")))
        return out
    text = await read_text(request)
    if naive:
        return [(None, piece) for piece in text.split("---") if piece.strip()]
    return [(None, source) for source in split_flow_sources(text)]


async def validate_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows/validate`` -> always 200, one ValidateConstraintViolation per document."""
    results: list[dict[str, Any]] = []
    for index, (filename, source) in enumerate(await _sources(request)):
        result: dict[str, Any] = {"index": index}
        if filename is not None:
            result["filename"] = filename
        try:
            flow = parse_flow(source)
            result.update(namespace=flow.namespace, flow=flow.id)
        except KestraSimConstraintViolation as error:
            result["constraints"] = error.message
        result.update(outdated=False, deprecationPaths=[], warnings=[], infos=[])
        results.append(result)
    return json_response(results)


async def _deploy(
    ctx: KestraSimContext, request: Request, tenant: str, namespace: str | None, allow_children: bool
) -> Response:
    deployment = ctx.backend.deploy(
        tenant,
        [source for _, source in await _sources(request, naive=True)],
        namespace=namespace,
        allow_children=allow_children,
        delete=query_bool(request, "delete", True),
    )
    return json_response([flow_json(ctx, r, source=True) for r in [*deployment.deleted, *deployment.saved]])


async def bulk_namespace(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows/{namespace}?delete=true``: deploy a namespace (deleting flows missing from the body)."""
    return await _deploy(ctx, request, tenant, request.path_params["namespace"], False)


async def bulk_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows/bulk?namespace=&delete=true&allowNamespaceChild=``."""
    namespace = request.query_params.get("namespace") or None
    return await _deploy(ctx, request, tenant, namespace, query_bool(request, "allowNamespaceChild", False))
