"""OpenLineage for KestraTriggerExecutionOperator: the Kestra execution as a child run of the Airflow task.

Imported only from the operator's ``get_openlineage_facets_on_*`` methods, which Airflow's OpenLineage
provider calls after the task ran; nothing here is loaded when parsing DAGs or when the OpenLineage
provider is not installed.

What is produced:

* the Airflow task's own lineage (returned as ``OperatorLineage``) gets a ``kestra_execution`` run facet:
  execution id, namespace, flow id, revision, state and UI URL;
* a child run is emitted for the Kestra execution: job namespace ``kestra://<Kestra host>``, job name
  ``<namespace>.<flow_id>``, a run id derived from the execution (a UUID, stable across re-emissions),
  a ``parent`` facet naming the Airflow task run (and its DAG run as root) and the same
  ``kestra_execution`` facet; a START event at the execution's start date, then COMPLETE (or FAIL) at its
  end date.

Nothing from the connection (credentials, tokens) is put in a facet: the URL is the execution's UI page.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet, job_type_job

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger(__name__)

KESTRA_SUCCESS_STATES = frozenset({"SUCCESS", "WARNING"})
_PRODUCER = "https://github.com/airflow-provider-kestra/airflow-provider-kestra"


@attr.define
class KestraExecutionRunFacet(RunFacet):
    """The Kestra execution a run stands for (custom facet ``kestra_execution``)."""

    executionId: str
    namespace: str
    flowId: str
    revision: int | None
    state: str
    url: str

    @staticmethod
    def _get_schema() -> str:
        return f"{_PRODUCER}/blob/main/docs/events.md#openlineage"


def kestra_job_namespace(execution_url: str) -> str:
    """``kestra://<host[:port]>`` of the Kestra instance that ran the execution (from its UI URL)."""
    return f"kestra://{urlsplit(execution_url).netloc or 'unknown'}"


def kestra_run_id(execution_url: str, execution_id: str) -> str:
    """A UUID for the execution's run, the same each time it is computed (OpenLineage run ids are UUIDs)."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{kestra_job_namespace(execution_url)}/executions/{execution_id}")
    )


def execution_facet(execution: Mapping[str, Any], url: str) -> KestraExecutionRunFacet:
    """The ``kestra_execution`` facet of an execution as the hook returns it."""
    revision = execution.get("flowRevision")
    return KestraExecutionRunFacet(
        executionId=str(execution.get("id")),
        namespace=str(execution.get("namespace")),
        flowId=str(execution.get("flowId")),
        revision=int(revision) if revision is not None else None,
        state=str((execution.get("state") or {}).get("current") or ""),
        url=url,
    )


def _parent_facet(task_instance: Any) -> dict[str, Any]:
    """The ``parent`` facet pointing at the Airflow task run, its DAG run as root (the provider's ids)."""
    from airflow.providers.openlineage.plugins import macros
    from airflow.providers.openlineage.utils.utils import _get_parent_run_facet

    return _get_parent_run_facet(
        parent_run_id=macros.lineage_run_id(task_instance),
        parent_job_name=macros.lineage_job_name(task_instance),
        parent_job_namespace=macros.lineage_job_namespace(),
        root_parent_run_id=macros.lineage_root_run_id(task_instance),
        root_parent_job_name=macros.lineage_root_job_name(task_instance),
        root_parent_job_namespace=macros.lineage_root_job_namespace(task_instance),
    )


def child_run_events(execution: Mapping[str, Any], url: str, task_instance: Any) -> list[RunEvent]:
    """START and COMPLETE/FAIL events of the Kestra execution as a child run of the Airflow task."""
    namespace, flow_id = str(execution.get("namespace")), str(execution.get("flowId"))
    state = execution.get("state") or {}
    facets: dict[str, Any] = {
        **_parent_facet(task_instance),
        "kestra_execution": execution_facet(execution, url),
    }
    run = Run(runId=kestra_run_id(url, str(execution.get("id"))), facets=facets)
    job = Job(
        namespace=kestra_job_namespace(url),
        name=f"{namespace}.{flow_id}",
        facets={
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="KESTRA", jobType="FLOW", producer=_PRODUCER
            )
        },
    )
    current = str(state.get("current") or "").upper()
    end_state = RunState.COMPLETE if current in KESTRA_SUCCESS_STATES else RunState.FAIL
    events = []
    if state.get("startDate"):
        events.append(
            RunEvent(
                eventType=RunState.START,
                eventTime=str(state["startDate"]),
                run=run,
                job=job,
                producer=_PRODUCER,
            )
        )
    if state.get("endDate"):
        events.append(
            RunEvent(
                eventType=end_state, eventTime=str(state["endDate"]), run=run, job=job, producer=_PRODUCER
            )
        )
    return events


def emit(events: list[RunEvent]) -> None:
    """Send events through the OpenLineage provider's configured client (nothing when it is disabled)."""
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

    adapter = get_openlineage_listener().adapter
    for event in events:
        adapter.emit(event)


def trigger_operator_lineage(operator: Any, task_instance: Any) -> OperatorLineage[Any, Any]:
    """The lineage of a finished ``KestraTriggerExecutionOperator`` task; emits the execution's child run.

    Reads the execution the task ran (its id from the operator, else from XCom ``execution_id``) once from
    Kestra. Any failure is logged and gives empty lineage: lineage never fails a task.
    """
    try:
        execution_id = getattr(operator, "_execution_id", None) or task_instance.xcom_pull(
            task_ids=task_instance.task_id, key="execution_id"
        )
        if not execution_id:
            return OperatorLineage()
        hook = operator.hook
        execution = hook.get_execution(str(execution_id))
        url = hook.execution_ui_url(execution)
        emit(child_run_events(execution, url, task_instance))
        return OperatorLineage(run_facets={"kestra_execution": execution_facet(execution, url)})
    except Exception as err:
        log.warning("No OpenLineage facets for the Kestra execution: %s", err)
        return OperatorLineage()


def openlineage_parent_labels(task_instance: Any) -> dict[str, str]:
    """Kestra labels naming the task's OpenLineage run (``airflow.openlineage.parent_id``), so a lineage
    backend fed by Kestra can attach its runs to the Airflow task; ``{}`` without the OpenLineage provider.

    The value is ``<namespace>/<dag_id>.<task_id>/<run uuid>`` as the provider's ``lineage_parent_id``
    macro builds it: no secret, no request. For the operator's label set (not applied yet; see the report).
    """
    try:
        from airflow.providers.openlineage.plugins.macros import lineage_parent_id
    except ImportError:
        return {}
    try:
        return {"airflow.openlineage.parent_id": str(lineage_parent_id(task_instance))}
    except Exception as err:
        log.debug("No OpenLineage parent id for the Kestra labels: %s", err)
        return {}
