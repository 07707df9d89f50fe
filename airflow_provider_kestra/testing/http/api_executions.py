"""``ExecutionController`` routes: create, get, search, delete, kill, pause, restart, resume, labels.

Read: ``webserver/.../controllers/api/ExecutionController.java`` of Kestra 1.3.25 (binhth-vuejx/kestra-1.3.25
@2a102a6a, a verbatim upload of the release) and of the 2.0 development line (kestra-io/kestra, the
``awaitBlockingAction`` version, code index file 54490078967).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from airflow_provider_kestra.testing.backend.clock import instant_from_datetime, now_instant, parse_instant
from airflow_provider_kestra.testing.backend.executions import CORRELATION_ID
from airflow_provider_kestra.testing.backend.search import paginate, parse_filters
from airflow_provider_kestra.testing.http.endpoint import (
    empty,
    page_params,
    parse_label_params,
    parsed_json,
    query_bool,
    query_int,
    query_items,
    read_multipart,
)
from airflow_provider_kestra.testing.http.errors import KestraSimulatorHttpError, bad_request
from airflow_provider_kestra.testing.http.views import (
    execution_bytes,
    execution_json,
    execution_url,
    json_response,
)
from airflow_provider_kestra.testing.journal import FAULTS_SCOPE_KEY

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext

EXECUTION_KINDS = ("NORMAL", "TEST", "PLAYGROUND")


def with_url(ctx: KestraSimContext, execution: dict[str, Any]) -> dict[str, Any]:
    """``ExecutionResponse``: the execution plus its UI ``url``."""
    return {**execution_json(ctx, execution), "url": execution_url(ctx, execution)}


async def create_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{namespace}/{id}`` (multipart inputs, ``labels=k:v``) -> 200 with ``url``."""
    item = ctx.backend.executable_flow(
        tenant,
        request.path_params["namespace"],
        request.path_params["id"],
        query_int(request, "revision", None),
    )
    labels = parse_label_params(
        request.query_params.getlist("labels"), allow_system=(CORRELATION_ID, "system.from")
    )
    schedule_date = None
    if raw_date := request.query_params.get("scheduleDate"):
        try:
            schedule_date = instant_from_datetime(parse_instant(raw_date))
        except ValueError:
            raise bad_request(f"Failed to convert argument [scheduleDate] for value [{raw_date}]") from None
    kind = request.query_params.get("kind")
    if kind is not None and kind.upper() not in EXECUTION_KINDS:
        raise bad_request(f"Failed to convert argument [kind] for value [{kind}]")
    execution = ctx.backend.create_execution(
        item,
        labels,
        await read_multipart(request),
        schedule_date=schedule_date,
        kind=kind.upper() if kind else None,
    )
    if query_bool(request, "wait", False):
        await ctx.backend.wait_until_stopped(execution)
    return json_response(with_url(ctx, execution))


async def get_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}``."""
    fired: list[str] = request.scope.setdefault(FAULTS_SCOPE_KEY, [])
    execution = ctx.backend.get_execution(tenant, request.path_params["executionId"], fired)
    return Response(execution_bytes(ctx, execution, api=True), media_type="application/json")


async def search_executions(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/search`` (and ``GET /executions?namespace=&flowId=``): newest first by default."""
    filters = parse_filters(query_items(request), "EXECUTION")
    fired: list[str] = request.scope.setdefault(FAULTS_SCOPE_KEY, [])
    matches = ctx.backend.search_executions(
        tenant, filters, request.query_params.getlist("sort"), now_instant(), fired
    )
    page = paginate(*page_params(request), matches, "searchExecutions")
    light = ctx.profile.search_returns_light
    page["results"] = [execution_json(ctx, e, light=light) for e in page["results"]]
    return json_response(page)


async def delete_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /executions/{executionId}`` -> 204 (no check that it is terminated, like Kestra)."""
    ctx.backend.delete_execution(
        tenant,
        request.path_params["executionId"],
        delete_logs=query_bool(request, "deleteLogs", True),
        delete_storage=query_bool(request, "deleteStorage", True),
    )
    return empty(204)


def _action_answer(
    ctx: KestraSimContext, execution: dict[str, Any], status: int, content_type: str = "application/json"
) -> Response:
    """1.x answers 202/204 without body; 2.0 answers 200 with the Execution (kill as ``text/json``)."""
    if ctx.profile.actions_return_execution:
        return json_response(execution_json(ctx, execution), headers={"Content-Type": content_type})
    return empty(status)


async def kill_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /executions/{id}/kill`` -> 202; already finished only fails with ``isOnKillCascade=false``."""
    execution = ctx.backend.kill(
        tenant, request.path_params["executionId"], cascade=query_bool(request, "isOnKillCascade", True)
    )
    return _action_answer(ctx, execution, 202, content_type="text/json")


async def pause_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/pause``: RUNNING only (else 422); 200 empty (2.0: 200 Execution).

    The spec says 204, but the method is ``void`` and ExecutionControllerRunnerTest expects 200 OK.
    """
    execution = ctx.backend.pause(tenant, request.path_params["executionId"])
    return _action_answer(ctx, execution, 200)


async def restart_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/restart[?revision=]``: failed task runs run again (same id, or a new
    execution on that revision), ``system.restarted``."""
    execution = ctx.backend.restart(
        tenant, request.path_params["executionId"], query_int(request, "revision", None)
    )
    return json_response(execution_json(ctx, execution))


async def resume_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/resume`` (multipart ``onResume`` inputs) -> 204; not paused -> 409."""
    execution_id = request.path_params["executionId"]
    ctx.backend.find_execution(tenant, execution_id, f"Execution '{execution_id}' not found.")
    execution = ctx.backend.resume(tenant, execution_id, await read_multipart(request))
    return _action_answer(ctx, execution, 204)


async def set_labels(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/labels``: replaces non-system labels of a terminated execution."""
    execution_id = request.path_params["executionId"]
    ctx.backend.find_execution(tenant, execution_id)
    body = parsed_json(await request.body())
    if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
        raise KestraSimulatorHttpError(422, "Invalid json mapping", reason="Invalid json mapping")
    execution = ctx.backend.set_labels(tenant, execution_id, body)
    return json_response(execution_json(ctx, execution))
