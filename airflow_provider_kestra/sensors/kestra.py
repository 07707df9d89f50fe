"""Wait for a Kestra execution: the cross-orchestrator dependency, like ExternalTaskSensor for Kestra."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf

from airflow_provider_kestra.bases import KestraHookMixin
from airflow_provider_kestra.links.kestra import KestraExecutionLink
from airflow_provider_kestra.utils.encoding import format_instant, validate_labels
from airflow_provider_kestra.utils.state import KestraOutcome, state_of
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS, BaseSensorOperator

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import PokeReturnValue
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
else:
    from airflow.exceptions import AirflowSensorTimeout, AirflowSkipException  # type: ignore[no-redef]
    from airflow.sensors.base import PokeReturnValue  # type: ignore[no-redef]

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow.sdk import Context

    from airflow_provider_kestra.utils.models import KestraExecution


class KestraExecutionSensor(KestraHookMixin, BaseSensorOperator):
    """Wait until a Kestra execution reaches one of ``success_states`` (by default: ended in SUCCESS).

    Either watch one execution by ``execution_id``, or the newest execution of ``namespace``/``flow_id``
    that carries ``labels`` and started after ``started_after`` (by default the DAG run's data interval
    start, else its logical date, else, for an Airflow 3 run without a logical date, the moment the run was
    created, ``dag_run.run_after``: an execution that ended before the DAG run existed never matches): the
    way ExternalTaskSensor waits for another DAG. Works in ``poke``,
    ``reschedule`` and deferrable mode. A failure state fails the task, or skips it with ``soft_fail``.
    The sensor only watches: it never kills or changes the execution.

    :param execution_id: The execution to watch (templated).
    :param namespace: With ``flow_id``: watch the newest execution of this flow (templated).
    :param flow_id: See ``namespace`` (templated).
    :param labels: Optional. Labels the execution must carry (templated).
    :param started_after: Optional. The execution must have started at or after this instant (datetime or
        ISO-8601 text, templated). Default: see above (:func:`default_started_after`).
    :param success_states: States that end the wait successfully (default ``("SUCCESS",)``).
    :param failure_states: States that fail the task. Default: every other terminal state. States in
        neither set (running, paused, unknown) keep the sensor waiting.
    :param deferrable: Wait in the triggerer (default: ``[operators] default_deferrable``).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook`.
    :return: (XCom) the id of the execution that succeeded.
    """

    template_fields: Sequence[str] = ("execution_id", "namespace", "flow_id", "labels", "started_after")
    template_fields_renderers = {"labels": "json"}
    operator_extra_links = (KestraExecutionLink(),)
    ui_color = "#e4d6fc"

    def __init__(
        self,
        *,
        execution_id: str | None = None,
        namespace: str | None = None,
        flow_id: str | None = None,
        labels: dict[str, Any] | None = None,
        started_after: datetime | str | None = None,
        success_states: Sequence[str] = ("SUCCESS",),
        failure_states: Sequence[str] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        kestra_conn_id: str = "kestra_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bool(execution_id) == bool(namespace or flow_id):
            raise ValueError(f"{self.task_id}: give either `execution_id`, or `namespace` and `flow_id`")
        if not execution_id and not (namespace and flow_id):
            raise ValueError(f"{self.task_id}: `namespace` and `flow_id` go together")
        if execution_id and (labels or started_after):
            raise ValueError(
                f"{self.task_id}: `labels` and `started_after` only apply with namespace/flow_id"
            )
        self.execution_id = execution_id
        self.namespace = namespace
        self.flow_id = flow_id
        self.labels = labels
        self.started_after = started_after
        self.outcome = KestraOutcome.of(success_states, failure_states, terminal_only=False)
        self.deferrable = deferrable
        self.kestra_conn_id = kestra_conn_id
        self.hook_params = dict(hook_params or {})
        self._published_id: str | None = None

    def execute(self, context: Context) -> Any:
        """Poke once; in deferrable mode hand the rest of the wait to the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if result:
            return result.xcom_value if isinstance(result, PokeReturnValue) else None
        from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger

        search = self._search_arguments(context)
        self.defer(
            trigger=KestraExecutionTrigger(
                kestra_conn_id=self.kestra_conn_id,
                execution_id=self.execution_id or None,
                namespace=search.get("namespace"),
                flow_id=search.get("flow_id"),
                labels=search.get("labels"),
                started_after=search.get("started_after"),
                success_states=sorted(self.outcome.success),
                failure_states=sorted(self.outcome.failure),
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                hook_params=self.hook_params,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Look at the execution once: done, failed, or not yet."""
        execution = self._find(context)
        if execution is None:
            self.log.info("No execution of %s.%s matches yet", self.namespace, self.flow_id)
            return False
        execution_id, state = execution["id"], state_of(execution)
        self._publish(context, execution)
        outcome = self.outcome.classify(state)
        if outcome == "success":
            self.log.info("Kestra execution %s is %s: done waiting", execution_id, state)
            return PokeReturnValue(is_done=True, xcom_value=execution_id)
        if outcome == "failed":
            raise self._failure(f"Kestra execution {execution_id} ended in {state}")
        self.log.info("Kestra execution %s is %s", execution_id, state)
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Map the trigger's event to the sensor result; an unknown status fails the task."""
        event = event or {}
        status = event.get("status")
        message = str(event.get("message"))
        execution_id = event.get("execution_id")
        if status == "success" and execution_id:
            self.log.info(message)
            self._push_execution_link(context, str(execution_id))
            return str(execution_id)
        if status == "timeout":
            raise AirflowSkipException(message) if self.soft_fail else AirflowSensorTimeout(message)
        if status == "failed":
            raise self._failure(message)
        if status == "error":
            raise self._failure(f"Lost track of the Kestra execution: {message}")
        raise self._failure(f"{self.task_id}: unexpected event from the Kestra trigger: {event!r}")

    def _failure(self, message: str) -> Exception:
        """The exception for a failed wait: a skip with ``soft_fail``, else a task failure."""
        from airflow_provider_kestra.exceptions import KestraError

        return AirflowSkipException(message) if self.soft_fail else KestraError(message)

    def _find(self, context: Context) -> KestraExecution | None:
        if self.execution_id:
            return self.hook.get_execution(self.execution_id)
        found = self.hook.search_executions(size=1, **self._search_arguments(context))
        return found[0] if found else None

    def _search_arguments(self, context: Context) -> dict[str, Any]:
        if self.execution_id:
            return {}
        started_after = self.started_after
        if started_after is None:
            started_after = default_started_after(context)
        return {
            "namespace": self.namespace,
            "flow_id": self.flow_id,
            "labels": validate_labels(self.labels, allow_system=True) or None,
            "started_after": format_instant(started_after) if started_after is not None else None,
        }

    def _publish(self, context: Context, execution: KestraExecution) -> None:
        if self._published_id == execution["id"]:
            return
        self._published_id = execution["id"]
        self._push_execution_link(context, execution)


def default_started_after(context: Context) -> Any:
    """The run's data interval start, else its logical date, else when the DAG run was created.

    An Airflow 3 run triggered without a logical date (UI, ``airflow dags trigger``, REST API) has neither
    of the first two; ``dag_run.run_after`` (its creation time; its start date when that is missing) keeps
    an execution that ended before the DAG run existed from ever matching.
    """
    found = context.get("data_interval_start") or context.get("logical_date")
    if found is None:
        dag_run = context.get("dag_run")
        found = getattr(dag_run, "run_after", None) or getattr(dag_run, "start_date", None)
    return found
