"""Internal-storage file download (with Kestra's prefix rules) and the webhook trigger endpoint."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.responses import Response

from airflow_provider_kestra.testing.api_executions import find_execution
from airflow_provider_kestra.testing.errors import (
    KestraSimulatorHttpError,
    illegal_argument,
    illegal_state,
    not_found,
)
from airflow_provider_kestra.testing.executions import new_execution, register_execution
from airflow_provider_kestra.testing.flows import WEBHOOK
from airflow_provider_kestra.testing.pebble import KestraPebbleError, render, render_value
from airflow_provider_kestra.testing.tasks import storage_prefix
from airflow_provider_kestra.testing.views import execution_json, execution_url, json_response

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext

_EXECUTION_IN_PATH = re.compile(r"/executions/([^/]+)/")


def _resolve_file(
    ctx: KestraSimContext, request: Request, tenant: str, suffix: str
) -> tuple[str, bytes] | Response:
    """Validate ``path=`` against the execution's prefix; a file of another execution is redirected."""
    execution_id = request.path_params["executionId"]
    raw = request.query_params.get("path")
    if raw is None:
        raise KestraSimulatorHttpError(400, "Required QueryValue [path] not specified", reason="Bad Request")
    execution = find_execution(ctx, tenant, execution_id, f"Unable to find execution id '{execution_id}'")
    uri = urlsplit(raw)
    if uri.scheme == "file":
        return Response(b"Local file preview is disabled", status_code=403, media_type="text/plain")
    if uri.scheme == "nsfile":
        raise not_found("Namespace files are not stored by the Kestra simulator")
    if uri.scheme != "kestra":
        raise illegal_argument(f"Scheme not supported: {uri.scheme}")
    if not uri.path.startswith(storage_prefix(execution)):
        other = _EXECUTION_IN_PATH.search(uri.path)
        if other:
            tenant_part = f"{tenant}/" if ctx.profile.tenant_in_path else ""
            location = f"/api/v1/{tenant_part}executions/{other.group(1)}/{suffix}?path={raw}"
            return Response(b"", status_code=301, headers={"Location": location})
        raise illegal_argument("Invalid prefix path")
    content = ctx.store.files.get((tenant, f"kestra://{uri.path}"))
    if content is None:
        raise not_found(f"{raw} (File not found)")
    return uri.path, content


async def download_file(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}/file?path=kestra:///...`` -> octet-stream attachment."""
    resolved = _resolve_file(ctx, request, tenant, "file")
    if isinstance(resolved, Response):
        return resolved
    path, content = resolved
    name = path.rsplit("/", 1)[-1]
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def file_metas(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}/file/metas?path=`` -> ``{"size": n}``."""
    resolved = _resolve_file(ctx, request, tenant, "file/metas")
    if isinstance(resolved, Response):
        return resolved
    return json_response({"size": len(resolved[1])})


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, (dict, list)) else text


async def webhook(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET|POST|PUT /executions/webhook/{namespace}/{id}/{key}``: open without auth."""
    params = request.path_params
    item = ctx.store.latest_flow(tenant, params["namespace"], params["id"])
    if item is None:
        raise not_found("Flow not found")
    if item.flow.disabled:
        raise illegal_state(ctx.profile, "Cannot execute a disabled flow")
    flow_context = {"flow": {"id": item.flow.id, "namespace": item.flow.namespace, "revision": item.revision}}
    trigger = None
    for candidate in item.flow.triggers:
        if candidate.get("type") != WEBHOOK or candidate.get("disabled"):
            continue
        try:
            if render(str(candidate.get("key", "")), flow_context).strip() == params["key"]:
                trigger = candidate
                break
        except KestraPebbleError:
            continue
    if trigger is None:
        raise not_found("Webhook not found")
    if params.get("path") or request.url.path.endswith("/"):
        raise not_found()
    variables: dict[str, Any] = {}
    body = _parse_body(await request.body())
    if body is not None:
        variables["body"] = body
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name, []).append(value)
    parameters: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        parameters.setdefault(name, []).append(value)
    variables.update(headers=headers, parameters=parameters)
    execution = new_execution(
        ctx,
        item,
        [{"key": "system.from", "value": "trigger"}],
        trigger={"id": trigger["id"], "type": WEBHOOK, "variables": variables},
    )
    inputs = {str(d["id"]): d["defaults"] for d in item.flow.inputs if d.get("defaults") is not None}
    if trigger.get("inputs"):
        try:
            inputs.update(render_value(trigger["inputs"], {**flow_context, "trigger": variables}))
        except KestraPebbleError as exc:
            raise illegal_argument(str(exc)) from None
    if inputs:
        execution["inputs"] = inputs
    register_execution(ctx, execution)
    status = 200
    if trigger.get("wait"):
        await ctx.engine.wait_until_stopped(execution, timeout=3600)
        failed = execution["state"]["current"] == "FAILED"
        status = int(trigger.get("responseCode") or (500 if failed else 200))
        if trigger.get("returnOutputs"):
            return json_response(execution.get("outputs") or {}, status)
    answer = execution_json(ctx, execution)
    keys = ("tenantId", "id", "namespace", "flowId", "flowRevision", "trigger", "outputs", "labels", "state")
    response = {k: answer[k] for k in keys if k in answer}
    response["url"] = execution_url(ctx, execution)
    return json_response(response, status)
