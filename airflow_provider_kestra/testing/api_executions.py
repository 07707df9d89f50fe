"""Execution endpoints: create, get, search, delete, kill, restart, resume, labels, outputs (2.0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from airflow_provider_kestra.testing.clock import instant_from_datetime, now_instant, parse_instant
from airflow_provider_kestra.testing.errors import (
    KestraSimulatorFieldError,
    KestraSimulatorHttpError,
    constraint_violation,
    illegal_argument,
    illegal_state,
    not_found,
)
from airflow_provider_kestra.testing.executions import CORRELATION_ID, new_execution, register_execution
from airflow_provider_kestra.testing.flows import PAUSE, is_valid_label_key
from airflow_provider_kestra.testing.http import (
    empty,
    parse_label_params,
    parsed_json,
    query_bool,
    query_int,
    read_multipart,
)
from airflow_provider_kestra.testing.inputs import KestraSimUploadedFile, read_execution_inputs
from airflow_provider_kestra.testing.search import paginate, parse_filters, sort_executions
from airflow_provider_kestra.testing.store import FAILED_STATES, TERMINAL_STATES, transition
from airflow_provider_kestra.testing.tasks import storage_prefix
from airflow_provider_kestra.testing.views import (
    execution_bytes,
    execution_json,
    execution_url,
    json_response,
)

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext

EXECUTION_KINDS = ("NORMAL", "TEST", "PLAYGROUND")


def find_execution(
    ctx: KestraSimContext, tenant: str, execution_id: str, detail: str | None = None
) -> dict[str, Any]:
    """The execution or a 404 (``Not Found[: detail]``)."""
    execution = ctx.store.execution(tenant, execution_id)
    if execution is None:
        raise not_found(detail)
    return execution


def with_url(ctx: KestraSimContext, execution: dict[str, Any]) -> dict[str, Any]:
    """``ExecutionResponse``: the execution plus its UI ``url``."""
    return {**execution_json(ctx, execution), "url": execution_url(ctx, execution)}


async def create_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{namespace}/{id}`` (multipart inputs, ``labels=k:v``) -> 200 with ``url``."""
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    item = ctx.store.flow_revision(tenant, namespace, flow_id, query_int(request, "revision", None))
    if item is None:
        raise not_found("Requested Flow is not found.")
    if item.flow.disabled:
        raise illegal_state(ctx.profile, "Requested Flow is disabled.")
    labels = parse_label_params(
        request.query_params.getlist("labels"), allow_system=(CORRELATION_ID, "system.from")
    )
    if ctx.profile.name != "0.22" and not any(label["key"] == "system.from" for label in labels):
        labels.append({"key": "system.from", "value": "api"})
    schedule_date = None
    if raw_date := request.query_params.get("scheduleDate"):
        try:
            schedule_date = instant_from_datetime(parse_instant(raw_date))
        except ValueError:
            raise KestraSimulatorHttpError(
                400, f"Failed to convert argument [scheduleDate] for value [{raw_date}]", reason="Bad Request"
            ) from None
    kind = request.query_params.get("kind")
    if kind is not None and kind.upper() not in EXECUTION_KINDS:
        raise KestraSimulatorHttpError(
            400, f"Failed to convert argument [kind] for value [{kind}]", reason="Bad Request"
        )
    execution = new_execution(
        ctx, item, labels, schedule_date=schedule_date, kind=kind.upper() if kind else None
    )
    inputs = await _read_inputs(ctx, request, tenant, execution, item.flow.inputs)
    if inputs:
        execution["inputs"] = inputs
    register_execution(ctx, execution)
    if query_bool(request, "wait", False):
        await ctx.engine.wait_until_stopped(execution, timeout=3600)
    return json_response(with_url(ctx, execution))


async def _read_inputs(
    ctx: KestraSimContext,
    request: Request,
    tenant: str,
    execution: dict[str, Any],
    definitions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The multipart inputs of ``request`` typed by ``definitions``; FILE uploads are stored under the
    execution's ``inputs/`` storage prefix, as Kestra does."""
    parts = await read_multipart(request)

    def store_file(input_id: str, upload: KestraSimUploadedFile) -> str:
        uri = f"kestra://{storage_prefix(execution)}inputs/{input_id}/{upload.filename}"
        ctx.store.files[(tenant, uri)] = upload.content
        return uri

    return read_execution_inputs(definitions, parts, store_file)


async def get_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/{executionId}``."""
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    return Response(execution_bytes(ctx, execution, api=True), media_type="application/json")


async def search_executions(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /executions/search`` (and ``GET /executions?namespace=&flowId=``): newest first by default."""
    filters = parse_filters(request, "EXECUTION")
    now = now_instant()
    matches = [
        e
        for e in ctx.store.executions.values()
        if e["tenantId"] == tenant and not e.get("deleted") and filters.match_execution(e, now)
    ]
    light = ctx.profile.name == "2.0"
    page = paginate(request, sort_executions(request, matches), "searchExecutions")
    page["results"] = [execution_json(ctx, e, light=light) for e in page["results"]]
    return json_response(page)


async def delete_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``DELETE /executions/{executionId}`` -> 204 (no check that it is terminated, like Kestra)."""
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    execution["deleted"] = True
    if query_bool(request, "deleteLogs", True):
        ctx.store.logs.pop(execution["id"], None)
    if query_bool(request, "deleteStorage", True):
        prefix = "kestra://" + storage_prefix(execution)
        for key in [k for k in ctx.store.files if k[0] == tenant and k[1].startswith(prefix)]:
            del ctx.store.files[key]
    ctx.engine.forget(execution["id"])
    ctx.engine.changed(execution)
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
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    cascade = query_bool(request, "isOnKillCascade", True)
    if execution["state"]["current"] in TERMINAL_STATES and not cascade:
        raise illegal_state(ctx.profile, "Execution is already finished, can't kill it")
    ctx.engine.kill(execution)
    return _action_answer(ctx, execution, 202, content_type="text/json")


async def pause_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/pause``: RUNNING only (else 422); 200 empty (2.0: 200 Execution).

    The spec says 204, but the method is ``void`` and ExecutionControllerRunnerTest expects 200 OK.
    """
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    if execution["state"]["current"] != "RUNNING":
        raise illegal_argument("The execution is not running")
    ctx.engine.pause(execution)
    return _action_answer(ctx, execution, 200)


async def restart_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/restart``: failed task runs run again, same id, ``system.restarted``."""
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    current = execution["state"]["current"]
    if current == "KILLED" or (current not in TERMINAL_STATES and current != "PAUSED"):
        raise illegal_state(
            ctx.profile,
            "Execution must be terminated or paused and not killed to be restarted, "
            f"current state is '{current}' !",
        )
    task_runs = execution.get("taskRunList", [])
    to_restart = {tr["id"] for tr in task_runs if tr["state"]["current"] in FAILED_STATES | {"PAUSED"}}
    if not to_restart:
        raise illegal_argument("No task found to restart execution from!")
    by_id = {tr["id"]: tr for tr in task_runs}
    for task_run_id in list(to_restart):
        parent = by_id[task_run_id].get("parentTaskRunId")
        while parent:
            to_restart.add(parent)
            parent = by_id[parent].get("parentTaskRunId") if parent in by_id else None
    flow = ctx.engine.flow_of(execution)
    cleanup = {t.id for task in [*flow.errors, *flow.finally_tasks] for t in task.walk()}
    execution["taskRunList"] = [tr for tr in task_runs if tr["taskId"] not in cleanup]
    for task_run in execution["taskRunList"]:
        if task_run["id"] in to_restart:
            transition(task_run["state"], "RESTARTED")
    execution.pop("outputs", None)
    transition(execution["state"], "RESTARTED")
    if {"key": "system.restarted", "value": "true"} not in execution["labels"]:
        execution["labels"].append({"key": "system.restarted", "value": "true"})
    execution["metadata"]["attemptNumber"] = execution["metadata"].get("attemptNumber", 1) + 1
    ctx.engine.changed(execution)
    ctx.engine.launch(execution["id"])
    return json_response(execution_json(ctx, execution))


async def resume_execution(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/resume`` (multipart ``onResume`` inputs) -> 204; not paused -> 409."""
    execution_id = request.path_params["executionId"]
    execution = find_execution(ctx, tenant, execution_id, f"Execution '{execution_id}' not found.")
    if execution["state"]["current"] != "PAUSED":
        raise illegal_state(ctx.profile, f"Execution '{execution_id}' is not paused, can't resume it")
    flow = ctx.engine.flow_of(execution)
    paused = next((tr for tr in execution.get("taskRunList", []) if tr["state"]["current"] == "PAUSED"), None)
    task = flow.find_task(paused["taskId"]) if paused else None
    definitions = (
        list(task.properties.get("onResume") or []) if task is not None and task.type == PAUSE else []
    )
    definitions = [{"required": True, **d} for d in definitions if isinstance(d, dict)]
    inputs = await _read_inputs(ctx, request, tenant, execution, definitions)
    ctx.engine.resume(execution, inputs)
    return _action_answer(ctx, execution, 204)


async def set_labels(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``POST /executions/{id}/labels``: replaces non-system labels of a terminated execution."""
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    body = parsed_json(await request.body())
    if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
        raise KestraSimulatorHttpError(422, "Invalid json mapping", reason="Invalid json mapping")
    problems = []
    for index, label in enumerate(body):
        key, value = str(label.get("key") or ""), label.get("value")
        if not is_valid_label_key(key):
            problems.append(
                KestraSimulatorFieldError(
                    f"setLabelsOnTerminatedExecution.labels[{index}].key",
                    "Invalid label key. A valid key contains only lowercase letters numbers hyphens (-) "
                    "underscores (_) or periods (.) and must begin with a lowercase letter.",
                )
            )
        if value is None or str(value) == "":
            problems.append(
                KestraSimulatorFieldError(
                    f"setLabelsOnTerminatedExecution.labels[{index}].value", "must not be blank"
                )
            )
    if problems:
        raise constraint_violation(problems)
    if execution["state"]["current"] not in TERMINAL_STATES:
        raise KestraSimulatorHttpError(400, "The execution is not terminated", plain=True)
    system = [label for label in execution["labels"] if label["key"].startswith("system.")]
    for label in body:
        candidate = {"key": str(label["key"]), "value": str(label["value"])}
        if candidate["key"].startswith("system.") and candidate not in system:
            raise illegal_argument(
                "System labels can only be set by Kestra itself, offending label: "
                f"{candidate['key']}={candidate['value']}"
            )
    new_labels: dict[str, str] = {str(label["key"]): str(label["value"]) for label in body}
    for label in system:
        new_labels.setdefault(label["key"], label["value"])
    execution["labels"] = [{"key": k, "value": v} for k, v in new_labels.items()]
    ctx.engine.changed(execution)
    return json_response(execution_json(ctx, execution))


async def list_outputs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """2.0 ``GET /outputs/{executionId}``: which task runs have outputs."""
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    result = [
        {"taskId": tr["taskId"], "taskRunId": tr["id"], "inline": True}
        for tr in execution.get("taskRunList", [])
        if tr.get("outputs")
    ]
    return json_response(result)


async def task_run_outputs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """2.0 ``GET /outputs/{executionId}/{taskRunId}``: the outputs map of one task run."""
    execution = find_execution(ctx, tenant, request.path_params["executionId"])
    task_run_id = request.path_params["taskRunId"]
    for task_run in execution.get("taskRunList", []):
        if task_run["id"] == task_run_id:
            return json_response(task_run.get("outputs") or {})
    raise not_found(f"Task run '{task_run_id}' not found")
