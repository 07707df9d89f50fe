"""Operators for the rest of an execution's life: restart it, fire a flow's webhook, read the outputs of an
execution Airflow did not start, delete executions and flows.

The ones that follow an execution (restart, webhook, outputs) are
:class:`~airflow_provider_kestra.operators.kestra.KestraTriggerExecutionOperator` with another way to get
the execution: the wait (sync or deferred through the same trigger), the log relay, the kill on timeout and
the outputs, XComs and "Kestra execution" link are that operator's, not copies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.bases import KestraHookMixin
from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator
from airflow_provider_kestra.utils.encoding import revision_number
from airflow_provider_kestra.utils.state import is_terminal, state_of
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS, BaseOperator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context

    from airflow_provider_kestra.utils.models import KestraExecution
    from airflow_provider_kestra.utils.reattach import KestraTryMemory

NOT_FOR_FOLLOWERS = ("inputs", "file_inputs", "labels", "schedule_date", "restart_on_retry")
"""Options of the trigger operator's create request, which the operators that get their execution
another way refuse (rather than silently ignore)."""


def _follower_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for :class:`KestraTriggerExecutionOperator`, refusing its create-request options."""
    refused = sorted(set(options) & set(NOT_FOR_FOLLOWERS))
    if refused:
        raise TypeError(f"unexpected keyword argument(s) {refused}: this operator does not create executions")
    return options


class KestraRestartExecutionOperator(KestraTriggerExecutionOperator):
    """Restart a failed Kestra execution from its failed tasks, optionally on another flow revision, then
    follow it like :class:`KestraTriggerExecutionOperator` (logs, timeout, sync or deferrable) and return
    the flow outputs.

    Without ``revision`` Kestra restarts the execution itself (same id). With ``revision`` it makes a new
    execution on that revision: Kestra 1.x answers it, Kestra 2.x answers the original, so the new one is
    found by its flow, ``system.correlationId`` and ``parentId`` (see
    :meth:`~airflow_provider_kestra.hooks.kestra.KestraHook.restart_to_execution`). The restart request is
    never sent twice by the hook. On Airflow 3.3 a retry of this task follows the execution the earlier
    try restarted while it runs (task state store), and restarts again only once that one has ended.

    :param execution_id: The execution to restart (templated).
    :param revision: Optional. Flow revision to restart on (templated).
    :param find_timeout: With ``revision`` on Kestra 2.x: how long to look for the new execution, seconds.
    :param kwargs: The waiting options of :class:`KestraTriggerExecutionOperator` (``wait_for_completion``,
        ``poll_interval``, ``timeout``, ``deferrable``, ``success_states``, ``include_task_outputs``,
        ``output_files_dir``, ``stream_logs``, ``log_level``), ``kestra_conn_id``, ``hook_params`` and the
        ``BaseOperator`` arguments.
    :return: (XCom) the flow outputs, or the restarted execution's id when not waiting. XComs
        ``execution_id``, ``execution_url``, ``execution_state``, ``task_outputs``, ``output_files`` as the
        trigger operator pushes them.
    """

    template_fields: Sequence[str] = ("execution_id", "revision", "output_files_dir")
    ui_color = "#fcecd6"

    def __init__(
        self,
        *,
        execution_id: str,
        revision: int | str | None = None,
        find_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace="", flow_id="", revision=revision, **_follower_options(kwargs))
        self.execution_id = execution_id
        self.find_timeout = float(find_timeout)

    def execute(self, context: Context) -> Any:
        """Read the execution (its flow names the task's memory), restart it, then wait, defer or return."""
        original = self.hook.get_execution(str(self.execution_id))
        self.namespace, self.flow_id = str(original["namespace"]), str(original["flowId"])
        return super().execute(context)

    def _start_execution(self, memory: KestraTryMemory) -> Callable[[], KestraExecution]:
        revision = revision_number(self.task_id, self.revision)
        execution_id = str(self.execution_id)

        def restart() -> KestraExecution:
            execution = self.hook.restart_to_execution(
                execution_id, revision=revision, find_timeout=self.find_timeout
            )
            on = f" on revision {revision}" if revision is not None else ""
            same = "" if execution["id"] == execution_id else f" as execution {execution['id']}"
            self.log.info("Restarted Kestra execution %s%s%s", execution_id, on, same)
            return execution

        return restart


class KestraWebhookTriggerOperator(KestraTriggerExecutionOperator):
    """Fire a flow's Kestra ``Webhook`` trigger, as an outside system would, and return the execution id
    (or, with ``wait_for_completion``, follow the execution like :class:`KestraTriggerExecutionOperator`
    and return its outputs).

    The trigger's key is a secret: give the **name** of where it is kept, never the key itself:
    ``webhook_key_conn_id`` (an Airflow connection whose password is the key) or ``webhook_key_variable``
    (an Airflow Variable). It is read when the task runs, registered with Airflow's secrets masker, sent
    only in the request path, and masked in every error; it is never an operator attribute, a rendered
    template field, an XCom or a trigger argument.

    :param namespace: Namespace of the flow (templated).
    :param flow_id: Id of the flow (templated).
    :param webhook_key_conn_id: Airflow connection whose password is the webhook key.
    :param webhook_key_variable: Or the name of an Airflow Variable holding it.
    :param body: Optional request body (templated): a dict or list goes as JSON (the flow reads it as
        ``trigger.body``), text as text.
    :param method: ``POST`` (default), ``PUT`` or ``GET``.
    :param wait_for_completion: Follow the execution to its end and return its outputs (default False:
        return its id at once).
    :param kwargs: The other waiting options of :class:`KestraTriggerExecutionOperator` (``poll_interval``,
        ``timeout``, ``deferrable``, ``success_states``, ``include_task_outputs``, ``output_files_dir``,
        ``stream_logs``, ``log_level``), ``kestra_conn_id``, ``hook_params`` and the ``BaseOperator``
        arguments.
    :return: (XCom) the execution id, or the flow outputs when waiting; None when Kestra's answer names
        no execution (a trigger set to ``returnOutputs``).
    """

    template_fields: Sequence[str] = ("namespace", "flow_id", "body", "output_files_dir")
    template_fields_renderers = {"body": "json"}
    ui_color = "#d6ecfc"

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str,
        webhook_key_conn_id: str | None = None,
        webhook_key_variable: str | None = None,
        body: Any = None,
        method: str = "POST",
        wait_for_completion: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            namespace=namespace,
            flow_id=flow_id,
            wait_for_completion=wait_for_completion,
            **_follower_options(kwargs),
        )
        if (webhook_key_conn_id is None) == (webhook_key_variable is None):
            raise ValueError(
                f"{self.task_id}: give exactly one of webhook_key_conn_id or webhook_key_variable (the name "
                "of where the webhook key is kept, never the key itself)"
            )
        method = str(method).upper()
        if method not in ("GET", "POST", "PUT"):
            raise ValueError(f"{self.task_id}: method must be GET, POST or PUT, got {method!r}")
        self.webhook_key_conn_id = webhook_key_conn_id
        self.webhook_key_variable = webhook_key_variable
        self.body = body
        self.method = method

    def execute(self, context: Context) -> Any:
        """Fire the webhook, publish the execution, then wait, defer or return its id."""
        try:
            return super().execute(context)
        except _NoExecution as answer:
            self.log.info("Kestra's webhook answer names no execution (keys: %s)", answer.keys)
            return None

    def _start_execution(self, memory: KestraTryMemory) -> Callable[[], KestraExecution]:
        def fire() -> KestraExecution:
            key = self._webhook_key()
            answer = self.hook.trigger_webhook(
                self.namespace, self.flow_id, key, self.body, method=self.method
            )
            if not isinstance(answer, dict) or not answer.get("id"):
                raise _NoExecution(sorted(answer) if isinstance(answer, dict) else [])
            started = answer["id"]
            self.log.info("Webhook of flow %s.%s started execution %s", self.namespace, self.flow_id, started)
            return answer  # type: ignore[return-value]

        return fire

    def _webhook_key(self) -> str:
        """The key, read now from the connection or Variable named, and registered with the masker."""
        if self.webhook_key_conn_id is not None:
            from airflow_provider_kestra.version_compat import BaseHook

            key = BaseHook.get_connection(self.webhook_key_conn_id).password
            where = f"connection {self.webhook_key_conn_id!r}"
        else:
            key = _variable(str(self.webhook_key_variable))
            where = f"Variable {self.webhook_key_variable!r}"
        if not key:
            raise ValueError(f"{self.task_id}: {where} holds no webhook key")
        _mask(str(key))
        return str(key)


class _NoExecution(Exception):
    """The webhook answer carried no execution id (its trigger answers the outputs, or nothing)."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__("no execution id")
        self.keys = keys


def _variable(name: str) -> str | None:
    """An Airflow Variable's value, None when it does not exist."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import Variable

        return Variable.get(name, None)
    from airflow.models import Variable as Variable2

    return Variable2.get(name, default_var=None)


def _mask(secret: str) -> None:
    """Mask ``secret`` (and its URL-quoted form) in every task log line from now on."""
    from urllib.parse import quote

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.log import mask_secret
    else:
        from airflow.utils.log.secrets_masker import mask_secret as mask_secret_2

        mask_secret = mask_secret_2
    for value in {secret, quote(secret, safe="")}:
        mask_secret(value)


class KestraGetOutputsOperator(KestraTriggerExecutionOperator):
    """Return the flow outputs of an execution Airflow did not start (one a sensor found, one started by a
    webhook or a schedule), with its task outputs and output files, as the trigger operator returns them.

    The execution must have ended in one of ``success_states``; a running one fails the task (nothing final
    to read yet), one that ended otherwise fails it with Kestra's reasons.

    :param execution_id: The execution (templated), e.g. ``"{{ ti.xcom_pull(task_ids='wait') }}"``.
    :param include_task_outputs: Also push every Kestra task's outputs to XCom ``task_outputs``.
    :param output_files_dir: Download every ``kestra:///`` file of the outputs here and push the local
        paths to XCom ``output_files`` (templated).
    :param success_states: Terminal states whose outputs are returned (default ``SUCCESS``, ``WARNING``).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook`.
    :return: (XCom) the flow outputs (``{}`` when none). Also ``execution_id``, ``execution_url``,
        ``execution_state``, and ``task_outputs`` / ``output_files`` when asked.
    """

    template_fields: Sequence[str] = ("execution_id", "output_files_dir")
    ui_color = "#e4fcd6"

    def __init__(
        self,
        *,
        execution_id: str,
        include_task_outputs: bool = False,
        output_files_dir: str | None = None,
        success_states: Sequence[str] = ("SUCCESS", "WARNING"),
        **kwargs: Any,
    ) -> None:
        options: dict[str, Any] = {
            "include_task_outputs": include_task_outputs,
            "output_files_dir": output_files_dir,
        }
        super().__init__(namespace="", flow_id="", success_states=success_states, **options, **kwargs)
        self.stream_logs = False
        self.execution_id = execution_id

    def execute(self, context: Context) -> Any:
        """Read the execution and return its outputs (and push its files, task outputs and link)."""
        from airflow_provider_kestra.exceptions import KestraExecutionStateError

        execution = self.hook.get_execution(str(self.execution_id))
        state = state_of(execution)
        self._execution_id = str(execution["id"])
        self._push_execution_link(context, execution)
        if not is_terminal(state):
            raise KestraExecutionStateError(
                f"Kestra execution {execution['id']} is still {state}: it has no final outputs yet "
                "(wait for it first, e.g. with KestraExecutionSensor)",
                execution_id=str(execution["id"]),
                state=state,
            )
        return self._finish(context, execution)

    def on_kill(self) -> None:
        """Reading outputs never kills the execution it reads."""


class _KestraDeleteOperator(KestraHookMixin, BaseOperator):
    """Deletes one thing in Kestra; a 404 (already gone) is success, logged. Returns whether it deleted."""

    ui_color = "#fcd6d6"

    def __init__(
        self,
        *,
        kestra_conn_id: str = "kestra_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kestra_conn_id = kestra_conn_id
        self.hook_params = dict(hook_params or {})

    def _target(self) -> str:
        raise NotImplementedError

    def _delete(self) -> None:
        raise NotImplementedError

    def execute(self, context: Context) -> bool:
        """Delete; True when deleted now, False (logged) when Kestra answered 404, already gone."""
        from airflow_provider_kestra.exceptions import KestraNotFoundError

        try:
            self._delete()
        except KestraNotFoundError as err:
            reason = err.kestra_message or "HTTP 404"
            self.log.info("%s is already gone (%s); nothing to delete", self._target(), reason)
            return False
        self.log.info("Deleted %s", self._target())
        return True


class KestraDeleteExecutionOperator(_KestraDeleteOperator):
    """Delete a Kestra execution, and by default its logs, metrics and internal-storage files.

    An execution that is already gone (404) counts as deleted: the task logs it and succeeds. Kestra deletes
    an execution that is still running too; kill it first (:class:`KestraKillExecutionOperator`) to stop it.

    :param execution_id: The execution to delete (templated).
    :param delete_logs: Also delete its logs (Kestra's ``deleteLogs``).
    :param delete_metrics: Also delete its metrics (``deleteMetrics``).
    :param delete_storage: Also delete its files in Kestra's internal storage (``deleteStorage``).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook`.
    :return: (XCom) True when deleted now, False when it was already gone.
    """

    template_fields: Sequence[str] = ("execution_id",)

    def __init__(
        self,
        *,
        execution_id: str,
        delete_logs: bool = True,
        delete_metrics: bool = True,
        delete_storage: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution_id = execution_id
        self.options = {
            "delete_logs": delete_logs,
            "delete_metrics": delete_metrics,
            "delete_storage": delete_storage,
        }

    def _target(self) -> str:
        return f"Kestra execution {self.execution_id}"

    def _delete(self) -> None:
        self.hook.delete_execution(str(self.execution_id), **self.options)


class KestraDeleteFlowOperator(_KestraDeleteOperator):
    """Delete a Kestra flow (Kestra keeps it as a deleted revision; its executions stay).

    A flow that does not exist (404) counts as deleted: the task logs it and succeeds.

    :param namespace: Namespace of the flow (templated).
    :param flow_id: Id of the flow (templated).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook`.
    :return: (XCom) True when deleted now, False when it was already gone.
    """

    template_fields: Sequence[str] = ("namespace", "flow_id")

    def __init__(self, *, namespace: str, flow_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace
        self.flow_id = flow_id

    def _target(self) -> str:
        return f"Kestra flow {self.namespace}.{self.flow_id}"

    def _delete(self) -> None:
        self.hook.delete_flow(str(self.namespace), str(self.flow_id))
