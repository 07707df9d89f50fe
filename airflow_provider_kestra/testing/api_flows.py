"""Flow endpoints: create, update, get, delete, list, search, revisions, validate, bulk deploy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile

from airflow_provider_kestra.testing.errors import (
    KestraSimulatorFieldError,
    KestraSimulatorHttpError,
    constraint_violation,
    not_found,
)
from airflow_provider_kestra.testing.flows import (
    KestraSimFlow,
    flow_sources_equal,
    parse_flow,
    split_flow_sources,
)
from airflow_provider_kestra.testing.http import empty, query_bool, query_int, read_text
from airflow_provider_kestra.testing.search import paginate, parse_filters
from airflow_provider_kestra.testing.views import flow_json, json_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_provider_kestra.testing.context import KestraSimContext
    from airflow_provider_kestra.testing.store import KestraSimFlowRevision


def _duplicate(ctx: KestraSimContext) -> KestraSimulatorHttpError:
    if ctx.profile.duplicate_flow_status == 409:
        return KestraSimulatorHttpError(409, "Flow id already exists", reason="Entity already exists")
    return constraint_violation([KestraSimulatorFieldError("flow.id", "Flow id already exists")])


def _create(ctx: KestraSimContext, tenant: str, flow: KestraSimFlow) -> KestraSimFlowRevision:
    if ctx.store.latest_flow(tenant, flow.namespace, flow.id) is not None:
        raise _duplicate(ctx)
    return ctx.store.save_flow(tenant, flow)


def _update(
    ctx: KestraSimContext, tenant: str, existing: KestraSimFlowRevision, flow: KestraSimFlow
) -> KestraSimFlowRevision:
    problems = []
    if flow.id != existing.flow.id:
        problems.append(KestraSimulatorFieldError("flow.id", "Illegal flow id update"))
    if flow.namespace != existing.flow.namespace:
        problems.append(KestraSimulatorFieldError("flow.namespace", "Illegal namespace update"))
    if problems:
        raise constraint_violation(problems)
    if flow_sources_equal(flow.source, existing.flow.source):
        return existing
    return ctx.store.save_flow(tenant, flow)


async def create_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows`` -> 200 FlowWithSource (revision 1); duplicates 422 (409 in 2.0)."""
    flow = parse_flow(await read_text(request))
    return json_response(flow_json(ctx, _create(ctx, tenant, flow), source=True))


async def update_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``PUT /flows/{namespace}/{id}``; identical source keeps its revision."""
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    existing = ctx.store.latest_flow(tenant, namespace, flow_id)
    if existing is None:
        raise not_found()
    flow = parse_flow(await read_text(request))
    return json_response(flow_json(ctx, _update(ctx, tenant, existing, flow), source=True))


async def get_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/{namespace}/{id}?source=&revision=&allowDeleted=``."""
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    revision = query_int(request, "revision", None)
    allow_deleted = query_bool(request, "allowDeleted", False)
    revisions = ctx.store.flows.get((tenant, namespace, flow_id), [])
    item = None
    if revision is not None:
        item = next(
            (r for r in revisions if r.revision == revision and (allow_deleted or not r.deleted)), None
        )
    elif revisions and (allow_deleted or not revisions[-1].deleted):
        item = revisions[-1]
    if item is None:
        raise not_found()
    return json_response(flow_json(ctx, item, source=query_bool(request, "source", False)))


async def delete_flow(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /flows/{namespace}/{id}`` -> 204 (a soft delete revision)."""
    if ctx.store.delete_flow(tenant, request.path_params["namespace"], request.path_params["id"]) is None:
        raise not_found()
    return empty(204)


async def list_namespace_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/{namespace}`` -> Flow[] of exactly that namespace."""
    namespace = request.path_params["namespace"]
    items = [r for r in ctx.store.live_flows(tenant) if r.flow.namespace == namespace]
    return json_response([flow_json(ctx, r, source=False) for r in items])


async def search_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/search`` with ``filters[namespace|q|labels|flowId][OP]`` (and legacy params)."""
    filters = parse_filters(request, "FLOW")
    items = [r for r in ctx.store.live_flows(tenant) if filters.match_flow(r)]
    return json_response(paginate(request, [flow_json(ctx, r, source=False) for r in items], "searchFlows"))


async def list_revisions(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /flows/{namespace}/{id}/revisions`` -> FlowWithSource[] (deleted ones with allowDelete)."""
    key = (tenant, request.path_params["namespace"], request.path_params["id"])
    allow_deleted = query_bool(request, "allowDelete", False)
    revisions = [r for r in ctx.store.flows.get(key, []) if allow_deleted or not r.deleted]
    return json_response([flow_json(ctx, r, source=True) for r in revisions])


async def delete_revisions(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /flows/{namespace}/{id}/revisions?revisions=1&revisions=2`` -> 204."""
    raw = request.query_params.getlist("revisions")
    if not raw:
        raise KestraSimulatorHttpError(
            400, "Required QueryValue [revisions] not specified", reason="Bad Request"
        )
    numbers = []
    for value in ",".join(raw).split(","):
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise KestraSimulatorHttpError(
                400, f"Failed to convert argument [revisions] for value [{value}]", reason="Bad Request"
            )
        numbers.append(int(value))
    if any(n < 1 for n in numbers):
        raise constraint_violation(
            [KestraSimulatorFieldError("deleteRevisions.revisions[0]", "must be greater than or equal to 1")]
        )
    key = (tenant, request.path_params["namespace"], request.path_params["id"])
    if key not in ctx.store.flows:
        raise not_found()
    ctx.store.flows[key] = [r for r in ctx.store.flows[key] if r.revision not in numbers]
    return empty(204)


async def _sources(request: Request) -> list[tuple[str | None, str]]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        out: list[tuple[str | None, str]] = []
        for name, value in form.multi_items():
            if name == "flows" and isinstance(value, UploadFile):
                out.append((value.filename, (await value.read()).decode("utf-8", "replace")))
        return out
    return [(None, source) for source in split_flow_sources(await read_text(request))]


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
        except KestraSimulatorHttpError as error:
            result["constraints"] = error.detail
        result.update(outdated=False, deprecationPaths=[], warnings=[], infos=[])
        results.append(result)
    return json_response(results)


async def _bulk(
    ctx: KestraSimContext, request: Request, tenant: str, namespace: str | None, allow_children: bool
) -> Response:
    delete = query_bool(request, "delete", True)
    flows = [parse_flow(source) for _, source in await _sources(request)]
    if namespace is not None:
        invalid = [
            KestraSimulatorFieldError(
                "flow.namespace", f"{tenant}_{f.namespace}_{f.id} - flow namespace is invalid"
            )
            for f in flows
            if f.namespace != namespace and not (allow_children and f.namespace.startswith(namespace))
        ]
        if invalid:
            raise constraint_violation(invalid)
    ids = [f.id for f in flows]
    if len(set(ids)) < len(ids):
        raise constraint_violation([KestraSimulatorFieldError("flow.id", "Duplicate flow id")])
    deleted: list[dict[str, Any]] = []
    if delete:
        for item in ctx.store.live_flows(tenant):
            if (namespace is None or item.flow.namespace == namespace) and item.flow.id not in ids:
                ctx.store.delete_flow(tenant, item.flow.namespace, item.flow.id)
                deleted.append(flow_json(ctx, item, source=True))
    saved = []
    for flow in flows:
        existing = ctx.store.latest_flow(tenant, flow.namespace, flow.id)
        item = _update(ctx, tenant, existing, flow) if existing else ctx.store.save_flow(tenant, flow)
        saved.append(flow_json(ctx, item, source=True))
    return json_response(deleted + saved)


async def bulk_namespace(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows/{namespace}?delete=true``: deploy a namespace (deleting flows missing from the body)."""
    return await _bulk(ctx, request, tenant, request.path_params["namespace"], False)


async def bulk_flows(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /flows/bulk?namespace=&delete=true&allowNamespaceChild=``."""
    namespace = request.query_params.get("namespace") or None
    return await _bulk(ctx, request, tenant, namespace, query_bool(request, "allowNamespaceChild", False))
