"""Building new executions (API, webhook) exactly as Kestra initialises them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend.clock import new_kestra_id, now_instant
from airflow_provider_kestra.testing.backend.store import new_state

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.backend.store import KestraSimFlowRevision

CORRELATION_ID = "system.correlationId"


def new_execution(
    item: KestraSimFlowRevision,
    labels: list[dict[str, str]],
    *,
    schedule_date: str | None = None,
    kind: str | None = None,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CREATED execution: flow labels (non-system) + given labels + ``system.correlationId``."""
    execution_id = new_kestra_id()
    all_labels = [label for label in item.flow.labels if not label["key"].startswith("system.")]
    all_labels.extend(labels)
    deduplicated: dict[str, dict[str, str]] = {}
    for label in all_labels:
        deduplicated[label["key"]] = label
    all_labels = list(deduplicated.values())
    if not any(label["key"] == CORRELATION_ID for label in all_labels):
        all_labels.append({"key": CORRELATION_ID, "value": execution_id})
    execution: dict[str, Any] = {
        "tenantId": item.tenant,
        "id": execution_id,
        "namespace": item.flow.namespace,
        "flowId": item.flow.id,
        "flowRevision": item.revision,
        "labels": all_labels,
    }
    if item.flow.document.get("variables"):
        execution["variables"] = item.flow.document["variables"]
    execution["state"] = new_state()
    execution["originalId"] = execution_id
    if trigger is not None:
        execution["trigger"] = trigger
    execution["deleted"] = False
    execution["metadata"] = {"attemptNumber": 1, "originalCreatedDate": now_instant()}
    if schedule_date is not None:
        execution["scheduleDate"] = schedule_date
    if kind is not None:
        execution["kind"] = kind
    return execution
