"""What the worker does for each runnable task type, and the Pebble variables a task sees."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_kestra.testing.backend import flows as F
from airflow_provider_kestra.testing.backend.clock import new_kestra_id, parse_iso_duration
from airflow_provider_kestra.testing.backend.inputs import decrypt_secret, is_encrypted
from airflow_provider_kestra.testing.backend.pebble import render, render_value

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.backend.flows import KestraSimFlow, KestraSimTask
    from airflow_provider_kestra.testing.backend.store import KestraSimStore

WORKER_TYPES = (F.LOG, F.RETURN, F.OUTPUT_VALUES, F.SLEEP, F.FAIL, F.WRITE)


class KestraSimWorker(Protocol):
    """What a running task needs from the engine: the store (for files) and the log writer.

    A Protocol rather than the engine class, so this module does not depend on the engine that calls it.
    """

    store: KestraSimStore

    def log(
        self, execution: dict[str, Any], task_run: dict[str, Any] | None, level: str, message: str
    ) -> None:
        """Store a LogEntry of ``task_run``."""
        ...


class KestraSimTaskFailure(Exception):
    """A task ended in FAILED; the engine logs the message at ERROR."""


def java_true(value: Any) -> bool:
    """A ``Boolean`` property as Jackson reads it (``true`` or the text ``true``, any case)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def for_each_values(raw: Any, context: dict[str, Any]) -> list[str]:
    """The distinct values a ``ForEach`` iterates on, as ``FlowableUtils#resolveEachTasks`` resolves them:
    a string is rendered then read as a JSON array, each string of a list is rendered; a non-string value
    becomes its JSON text; a null value fails the task (``Found '<n>' null values on Each``)."""
    if isinstance(raw, str):
        text = render(raw, context)
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise KestraSimTaskFailure(
                f"Unable to read the ForEach values {text!r} as a JSON array: {exc}"
            ) from None
        if not isinstance(values, list):
            raise KestraSimTaskFailure(f"Unable to read the ForEach values {text!r} as a JSON array")
    elif isinstance(raw, list):
        values = [render(v, context) if isinstance(v, str) else render_value(v, context) for v in raw]
    else:
        raise KestraSimTaskFailure(f"Unknown value type: {type(raw).__name__}")
    distinct: list[Any] = []
    for value in values:
        if value not in distinct:
            distinct.append(value)
    nulls = sum(1 for value in distinct if value is None)
    if nulls:
        shown = ", ".join("null" if v is None else str(v) for v in values)
        raise KestraSimTaskFailure(f"Found '{nulls}' null values on Each, with values=[{shown}]")
    return [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in distinct]


def storage_prefix(execution: dict[str, Any]) -> str:
    """``/<namespace as path>/<flowId>/executions/<id>/`` (Kestra's StorageContext prefix)."""
    return "/{}/{}/executions/{}/".format(
        execution["namespace"].replace(".", "/"), execution["flowId"], execution["id"]
    )


def task_context(
    execution: dict[str, Any],
    flow: KestraSimFlow,
    task: KestraSimTask | None,
    task_run: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Pebble variables Kestra exposes to a task."""
    context: dict[str, Any] = {
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": execution["flowRevision"]},
        "execution": {
            "id": execution["id"],
            "startDate": execution["state"]["startDate"],
            "originalId": execution.get("originalId", execution["id"]),
            "state": execution["state"]["current"],
        },
        # SECRET inputs are stored encrypted and rendered decrypted, as Kestra's run context does.
        "inputs": {
            key: decrypt_secret(value) if is_encrypted(value) else value
            for key, value in execution.get("inputs", {}).items()
        },
        "outputs": task_outputs(execution.get("taskRunList", [])),
        "labels": {label["key"]: label["value"] for label in execution.get("labels", [])},
    }
    if execution.get("trigger"):
        context["trigger"] = execution["trigger"].get("variables", {})
    if flow.document.get("variables"):
        context["vars"] = flow.document["variables"]
    if task is not None and task_run is not None:
        context["task"] = {"id": task.id, "type": task.type}
        context["taskrun"] = {"id": task_run["id"], "startDate": task_run["state"]["startDate"]}
        if task_run.get("value") is not None:
            context["taskrun"]["value"] = task_run["value"]
        if task_run.get("iteration") is not None:
            context["taskrun"]["iteration"] = task_run["iteration"]
        if task_run.get("parentTaskRunId"):
            context["taskrun"]["parentId"] = task_run["parentTaskRunId"]
            parent_id = task_run["parentTaskRunId"]
            parent = next((tr for tr in execution.get("taskRunList", []) if tr["id"] == parent_id), None)
            if parent is not None and parent.get("value") is not None:
                # Kestra's RunVariables: ``parent.taskrun.value`` inside a ForEach iteration's nested tasks.
                context["parent"] = {"taskrun": {"value": parent["value"]}}
    return context


def task_outputs(task_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``outputs`` Pebble variable: ``outputs.<taskId>``, or ``outputs.<taskId>.<value>`` for the task
    runs of a ``ForEach`` iteration (Kestra's ``RunContext`` nests outputs under the task run's ``value``)."""
    outputs: dict[str, Any] = {}
    for task_run in task_runs:
        if not task_run.get("outputs"):
            continue
        if task_run.get("value") is not None:
            outputs.setdefault(task_run["taskId"], {})[task_run["value"]] = task_run["outputs"]
        else:
            outputs[task_run["taskId"]] = task_run["outputs"]
    return outputs


async def run_worker_task(
    engine: KestraSimWorker,
    execution: dict[str, Any],
    flow: KestraSimFlow,
    task: KestraSimTask,
    task_run: dict[str, Any],
) -> dict[str, Any] | None:
    """Run a worker task (Log, Return, OutputValues, Sleep, Fail, Write) and return its outputs."""
    props = task.properties
    context = task_context(execution, flow, task, task_run)
    if task.type == F.LOG:
        level = str(props.get("level") or "INFO").upper()
        messages = props["message"] if isinstance(props["message"], list) else [props["message"]]
        for message in messages:
            engine.log(execution, task_run, level, render(str(message), context))
        return None
    if task.type == F.RETURN:
        return {"value": render(str(props.get("format") or ""), context)}
    if task.type == F.OUTPUT_VALUES:
        return {"values": render_value(props.get("values") or {}, context)}
    if task.type == F.SLEEP:
        try:
            seconds = parse_iso_duration(render(str(props["duration"]), context))
        except ValueError as exc:
            raise KestraSimTaskFailure(str(exc)) from None
        await asyncio.sleep(seconds)
        return None
    if task.type == F.FAIL:
        condition = props.get("condition")
        if condition is not None and render(str(condition), context).strip().lower() not in ("true", "1"):
            return None
        raise KestraSimTaskFailure(render(str(props.get("errorMessage") or "Task failure"), context))
    if task.type == F.WRITE:
        extension = render(str(props.get("extension") or ".ion"), context)
        content = render(str(props["content"]), context).encode()
        uri = "kestra://{}tasks/{}/{}/{}{}".format(
            storage_prefix(execution), task.id, task_run["id"], new_kestra_id(), extension
        )
        engine.store.files[(execution["tenantId"], uri)] = content
        return {"uri": uri, "size": len(content)}
    raise KestraSimTaskFailure(f"Task type {task.type} is not runnable by the Kestra simulator")
