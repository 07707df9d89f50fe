"""The Starlette application: Kestra's routes for one profile, plus ``/_simulator/`` admin endpoints."""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from airflow_provider_kestra.testing.faults import KestraSimFaultMiddleware, KestraSimFaultRule
from airflow_provider_kestra.testing.http import api_executions as E
from airflow_provider_kestra.testing.http import api_files as FI
from airflow_provider_kestra.testing.http import api_flows as FL
from airflow_provider_kestra.testing.http import api_logs as L
from airflow_provider_kestra.testing.http import api_outputs as O
from airflow_provider_kestra.testing.http import api_streams as S
from airflow_provider_kestra.testing.http import api_webhooks as W
from airflow_provider_kestra.testing.http.endpoint import (
    KestraSimHandler,
    endpoint,
    is_authenticated,
    unauthorized,
)
from airflow_provider_kestra.testing.http.router import KestraSimRoute, KestraSimRouter
from airflow_provider_kestra.testing.http.views import json_response
from airflow_provider_kestra.testing.journal import KestraSimJournalMiddleware

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp

    from airflow_provider_kestra.testing.context import KestraSimContext

SIMULATOR_NOTICE = "This is the airflow-provider-kestra API simulator, not a Kestra server."


def configs_body(ctx: KestraSimContext) -> dict[str, Any]:
    """``MiscController.Configuration`` (0.2x field set for 0.22), marked as a simulator."""
    profile = ctx.profile
    body: dict[str, Any] = {
        "uuid": "00000000-0000-0000-0000-00000000f1ae",
        "version": profile.version,
        "commitId": "simulator",
        "commitDate": "2026-01-01T00:00:00Z",
    }
    if profile.configs_has_edition:
        body.update(
            edition=ctx.edition,
            isBasicAuthInitialized=True,
            url=ctx.base_url,
            systemNamespace="system",
            isTemplateEnabled=False,
            hiddenLabelsPrefixes=["system."],
            preview={"initial": 100, "max": 5000},
        )
    else:
        body.update(isBasicAuthEnabled=True, isTaskRunEnabled=False, isTemplateEnabled=False)
    if ctx.edition == "EE":
        body["tenants"] = {"storageByTenant": False, "secretByTenant": False}
    body.update(simulator=True, simulatorNotice=SIMULATOR_NOTICE)
    return body


def build_app(ctx: KestraSimContext, restart: Callable[[float], None] | None = None) -> ASGIApp:
    """All routes of ``ctx.profile`` wrapped in the fault middleware."""
    profile = ctx.profile
    prefix = "/api/v1/{tenant}" if profile.tenant_in_path else "/api/v1"
    act = "actions/" if profile.actions_under_actions else ""

    def route(
        path: str, handler: KestraSimHandler, methods: list[str], *, public: bool = False
    ) -> KestraSimRoute:
        return KestraSimRoute(prefix + path, frozenset(methods), endpoint(ctx, handler, public=public))

    async def configs(request: Request) -> Response:
        if not profile.configs_open and not is_authenticated(ctx, request):
            return unauthorized(ctx, request)
        return json_response(configs_body(ctx))

    async def configs_login(request: Request) -> Response:
        return json_response({"isBasicAuthInitialized": True})

    routes = [KestraSimRoute("/api/v1/configs", frozenset({"GET"}), configs)]
    if profile.configs_login_route:
        routes.append(KestraSimRoute("/api/v1/configs/login", frozenset({"GET"}), configs_login))
    routes += [
        # flows: literal segments before {namespace}
        route("/flows", FL.create_flow, ["POST"]),
        route("/flows/search", FL.search_flows, ["GET"]),
        route("/flows/validate", FL.validate_flows, ["POST"]),
        route("/flows/bulk", FL.bulk_flows, ["POST"]),
        route("/flows/{namespace}", FL.list_namespace_flows, ["GET"]),
        route("/flows/{namespace}", FL.bulk_namespace, ["POST"]),
        route("/flows/{namespace}/{id}/revisions", FL.list_revisions, ["GET"]),
        route("/flows/{namespace}/{id}/revisions", FL.delete_revisions, ["DELETE"]),
        route("/flows/{namespace}/{id}", FL.get_flow, ["GET"]),
        route("/flows/{namespace}/{id}", FL.update_flow, ["PUT"]),
        route("/flows/{namespace}/{id}", FL.delete_flow, ["DELETE"]),
        # executions
        route("/executions/search", E.search_executions, ["GET"]),
        # single-segment routes next: the hot GET of an execution matches after one literal
        route("/executions/{executionId}", E.get_execution, ["GET"]),
        route("/executions/{executionId}", E.delete_execution, ["DELETE"]),
        route("/executions", E.search_executions, ["GET"]),
        route("/executions/webhook/{namespace}/{id}/{key}", W.webhook, ["GET", "POST", "PUT"], public=True),
        route(
            "/executions/webhook/{namespace}/{id}/{key}/{path:path}",
            W.webhook,
            ["GET", "POST", "PUT"],
            public=True,
        ),
        route(f"/executions/{{executionId}}/{act}kill", E.kill_execution, ["DELETE"]),
        route(f"/executions/{{executionId}}/{act}restart", E.restart_execution, ["POST"]),
        route(f"/executions/{{executionId}}/{act}resume", E.resume_execution, ["POST"]),
        route(f"/executions/{{executionId}}/{act}pause", E.pause_execution, ["POST"]),
        route(f"/executions/{{executionId}}/{act}labels", E.set_labels, ["POST"]),
        route("/executions/{executionId}/follow", S.follow_execution, ["GET"]),
        route("/executions/{executionId}/file", FI.download_file, ["GET"]),
        route("/executions/{executionId}/file/metas", FI.file_metas, ["GET"]),
        route("/executions/{namespace}/{id}", E.create_execution, ["POST"]),
        # logs
        route("/logs/search", L.search_logs, ["GET"]),
        route("/logs/{executionId}/download", L.download_logs, ["GET"]),
        route("/logs/{executionId}/follow", S.follow_logs, ["GET"]),
        route("/logs/{executionId}", L.list_logs, ["GET"]),
        route("/logs/{executionId}", L.delete_logs, ["DELETE"]),
    ]
    if profile.output_routes == "split":
        routes += [
            route("/outputs/executions/{executionId}", O.execution_outputs, ["GET"]),
            route("/outputs/tasks/{executionId}", O.task_outputs_information, ["GET"]),
            route("/outputs/tasks/{executionId}/{taskRunId}", O.task_run_outputs, ["GET"]),
        ]
    routes += _admin_routes(ctx, restart)

    async def startup() -> None:
        ctx.closing = False
        ctx.engine.resume_all()

    async def shutdown() -> None:
        await S.close_streams(ctx)
        await ctx.engine.shutdown()

    alias = profile.tenant_alias and ctx.edition == "OSS"
    router = KestraSimRouter(ctx, 3 if profile.tenant_in_path else 2, routes, alias, startup, shutdown)
    return KestraSimJournalMiddleware(KestraSimFaultMiddleware(router, ctx.faults), ctx.journal)


def _admin_routes(ctx: KestraSimContext, restart: Callable[[float], None] | None) -> list[KestraSimRoute]:
    """``/_simulator/info``, ``/_simulator/faults`` (GET/POST/DELETE) and ``/_simulator/restart``."""

    async def info(request: Request) -> Response:
        return json_response(
            {
                "simulator": True,
                "notice": SIMULATOR_NOTICE,
                "kestraVersion": ctx.profile.version,
                "profile": ctx.profile.name,
                "edition": ctx.edition,
                "tenants": list(ctx.tenants),
                "executions": len(ctx.store.executions),
                "flows": sum(1 for _ in ctx.store.flows),
            }
        )

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            ctx.faults.clear()
            return Response(b"", status_code=204)
        if request.method == "POST":
            try:
                payload = json.loads(await request.body() or b"{}")
                if "seed" in payload and len(payload) == 1:
                    ctx.faults.reseed(payload["seed"])
                    return json_response({"seed": payload["seed"]})
                rule = ctx.faults.add(KestraSimFaultRule(**payload))
            except (TypeError, ValueError) as exc:
                return json_response({"message": f"Invalid fault rule: {exc}"}, 400)
            return json_response(rule.__dict__, 201)
        return json_response(ctx.faults.to_json())

    async def do_restart(request: Request) -> Response:
        if restart is None:
            return json_response({"message": "restart is not available for this server"}, 409)
        try:
            downtime = float(request.query_params.get("downtime", "0"))
        except ValueError:
            return json_response({"message": "downtime must be a number of seconds"}, 400)
        threading.Thread(target=restart, args=(downtime,), daemon=True, name="kestra-sim-restart").start()
        return json_response({"restarting": True, "downtime": downtime}, 202)

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            ctx.journal.clear()
            return Response(b"", status_code=204)
        params = request.query_params
        try:
            status = int(params["status"]) if params.get("status") else None
            since = int(params.get("since") or 0)
            limit = int(params.get("limit") or 1000)
            entries = ctx.journal.filter(
                params.get("method") or None,
                params.get("path") or None,
                status=status,
                fault=params.get("fault") or None,
                since=since,
            )
        except (ValueError, re.error) as exc:
            return json_response({"message": f"Invalid journal query: {exc}"}, 400)
        return json_response(
            {
                "total": ctx.journal.total,
                "dropped": ctx.journal.dropped,
                "count": len(entries),
                "requests": ctx.journal.to_json(entries[-limit:] if limit > 0 else []),
            }
        )

    handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("/_simulator/info", info, ["GET"]),
        ("/_simulator/faults", faults, ["GET", "POST", "DELETE"]),
        ("/_simulator/restart", do_restart, ["POST"]),
        ("/_simulator/requests", requests, ["GET", "DELETE"]),
    ]
    return [KestraSimRoute(path, frozenset(methods), handler) for path, handler, methods in handlers]
