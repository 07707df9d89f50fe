"""JSON bodies of flows and executions as each Kestra line serializes them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from airflow_provider_kestra.testing.backend.flows import property_view

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.backend.store import KestraSimFlowRevision
    from airflow_provider_kestra.testing.context import KestraSimContext


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response."""
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def flow_json(ctx: KestraSimContext, item: KestraSimFlowRevision, *, source: bool) -> dict[str, Any]:
    """``Flow`` / ``FlowWithSource`` with Kestra's non-null inclusion (1.x+: ``Property`` as strings)."""
    doc = item.flow.document
    inputs = item.flow.inputs
    if ctx.profile.property_as_string:
        view = property_view(doc, inputs)
        doc, inputs = {**doc, **view}, view["inputs"]
    body: dict[str, Any] = {"id": item.flow.id, "namespace": item.flow.namespace, "revision": item.revision}
    if ctx.with_tenant:
        body["tenantId"] = item.tenant
    if ctx.profile.flow_has_updated:
        body["updated"] = item.updated
    if doc.get("description") is not None:
        body["description"] = doc["description"]
    if inputs:
        body["inputs"] = inputs
    if item.flow.outputs:
        body["outputs"] = item.flow.outputs
    body["disabled"] = item.flow.disabled
    if item.flow.labels:
        body["labels"] = item.flow.labels
    if doc.get("variables"):
        body["variables"] = doc["variables"]
    body["deleted"] = item.deleted
    for key in ("tasks", "errors", "finally", "afterExecution", "triggers", "pluginDefaults", "concurrency"):
        if doc.get(key) is not None:
            body[key] = doc[key]
    if ctx.profile.flow_has_draft:
        body["draft"] = False
    if source:
        body["source"] = item.flow.source
    return body


_API_TASK_RUN_DROPPED = ("tenantId", "executionId", "namespace", "flowId", "outputs")
_LIGHT_DROPPED = ("taskRunList", "variables", "metadata", "deleted", "fixtures", "traceParent", "breakpoints")


def execution_json(
    ctx: KestraSimContext, execution: dict[str, Any], *, light: bool = False, api: bool = False
) -> dict[str, Any]:
    """``Execution`` (1.x), or the 2.0 shapes (kestra-io/kestra ``webserver/.../models/api/``):

    * ``api``: ``ApiExecution`` of ``GET /executions/{id}`` (``ApiExecution.java`` @4d16ab03): no
      ``deleted``, task runs are ``ApiTaskRun`` (``ApiTaskRun.java`` @8ca255a8: no tenantId, executionId,
      namespace, flowId nor outputs); flow ``outputs`` stay;
    * ``light``: ``ApiLightExecution`` of the search (``ApiLightExecution.java`` @380c6575): no task runs,
      variables, metadata, deleted, fixtures, traceParent nor breakpoints; flow ``outputs`` stay;
    * otherwise the 2.0 ``Execution`` of create, actions and follow frames: task runs without ``outputs``.
    """
    profile = ctx.profile
    if profile.task_run_outputs and profile.execution_has_deleted and ctx.with_tenant and not light:
        return execution
    body = dict(execution)
    if not ctx.with_tenant:
        body.pop("tenantId", None)
    if light:
        for key in _LIGHT_DROPPED:
            body.pop(key, None)
        return body
    if api and not profile.execution_has_deleted:
        body.pop("deleted", None)
    if "taskRunList" in body:
        dropped = _API_TASK_RUN_DROPPED if api and profile.api_task_runs else ()
        if not profile.task_run_outputs:
            dropped = (*dropped, "outputs")
        if dropped:
            body["taskRunList"] = [
                {k: v for k, v in tr.items() if k not in dropped} for tr in body["taskRunList"]
            ]
    return body


def execution_bytes(
    ctx: KestraSimContext, execution: dict[str, Any], *, light: bool = False, api: bool = False
) -> bytes:
    """:func:`execution_json` serialized, cached until the execution changes (GET and follow are hot)."""
    key = (execution["id"], light, api)
    version = ctx.engine.versions.get(execution["id"], 0)
    cached = ctx.json_cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    data = json.dumps(execution_json(ctx, execution, light=light, api=api), separators=(",", ":")).encode()
    ctx.json_cache[key] = (version, data)
    return data


def execution_url(ctx: KestraSimContext, execution: dict[str, Any]) -> str:
    """``<kestra.url>/ui[/<tenant>]/executions/<ns>/<flow>/<id>``."""
    tenant = f"/{execution['tenantId']}" if ctx.with_tenant else ""
    return "{}/ui{}/executions/{}/{}/{}".format(
        ctx.base_url.rstrip("/"), tenant, execution["namespace"], execution["flowId"], execution["id"]
    )
