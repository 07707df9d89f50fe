"""Assemble the ``{"outputs", "task_outputs"}`` result from a 1.x execution or from 2.x outputs calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_kestra.utils.models import KestraExecution


def _put(result: dict[str, Any], task_id: str, value: str | None, outputs: dict[str, Any]) -> None:
    if value in (None, ""):
        result[task_id] = outputs
        return
    per_value = result.setdefault(task_id, {})
    per_value[str(value)] = outputs


def task_outputs_from_execution(execution: KestraExecution) -> dict[str, Any]:
    """``{task_id: outputs}`` from ``taskRunList[].outputs`` (1.x); per-value maps for ForEach children."""
    result: dict[str, Any] = {}
    for task_run in execution.get("taskRunList") or []:
        outputs = task_run.get("outputs")
        if not outputs or not task_run.get("taskId"):
            continue
        _put(result, str(task_run["taskId"]), task_run.get("value"), dict(outputs))
    return result


def task_outputs_from_listing(
    listing: Iterable[dict[str, Any]], fetch: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """``{task_id: outputs}`` from 2.x ``GET /outputs/{id}`` entries, fetching each task run's map."""
    result: dict[str, Any] = {}
    for item in listing:
        task_id, task_run_id = item.get("taskId"), item.get("taskRunId")
        if not task_id or not task_run_id:
            continue
        outputs = fetch(str(task_run_id))
        if outputs:
            _put(result, str(task_id), item.get("value"), dict(outputs))
    return result
