"""The webhook trigger route of ``ExecutionController``: ``GET|POST|PUT /executions/webhook/{ns}/{id}/{key}``,
open without auth."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.http.views import execution_json, execution_url, json_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_provider_kestra.testing.context import KestraSimContext

_RESPONSE_KEYS = (
    "tenantId",
    "id",
    "namespace",
    "flowId",
    "flowRevision",
    "trigger",
    "outputs",
    "labels",
    "state",
)


def _parse_body(raw: bytes) -> Any:
    """A JSON object or array when the body parses as one, else the text (``trigger.body``)."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, (dict, list)) else text


async def webhook(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """Start the flow; answer the ``WebhookResponse`` (or, with ``wait``, the outcome or the outputs)."""
    params = request.path_params
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
    execution, trigger = ctx.backend.webhook_execution(
        tenant,
        params["namespace"],
        params["id"],
        params["key"],
        extra_path=bool(params.get("path")) or request.url.path.endswith("/"),
        variables=variables,
    )
    status = 200
    if trigger.get("wait"):
        await ctx.backend.wait_until_stopped(execution)
        failed = execution["state"]["current"] == "FAILED"
        status = int(trigger.get("responseCode") or (500 if failed else 200))
        if trigger.get("returnOutputs"):
            return json_response(execution.get("outputs") or {}, status)
    answer = execution_json(ctx, execution)
    response = {k: answer[k] for k in _RESPONSE_KEYS if k in answer}
    response["url"] = execution_url(ctx, execution)
    return json_response(response, status)
