"""Operators that deploy Kestra flows and run, kill and resume Kestra executions from Airflow tasks.

Every HTTP detail lives in :class:`~airflow_provider_kestra.hooks.kestra.KestraHook`; these classes decide
what to do (start or reattach, wait or defer, succeed or fail) and what the task log and XCom show.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf

from airflow_provider_kestra.bases import KestraHookMixin
from airflow_provider_kestra.links.kestra import KestraExecutionLink
from airflow_provider_kestra.utils.encoding import (
    positive_seconds,
    revision_number,
    validate_labels,
    with_file_inputs,
)
from airflow_provider_kestra.utils.files import download_output_files_into
from airflow_provider_kestra.utils.log_pacer import KestraLogPacer
from airflow_provider_kestra.utils.logs import LOG_LEVELS, KestraLogRelay
from airflow_provider_kestra.utils.models import EVENT_STATUSES, KILL_TIMEOUT_SECONDS
from airflow_provider_kestra.utils.reattach import (
    MAX_REDEFERRALS,
    REDEFERRALS_XCOM_KEY,
    TRY_ID_LABEL,
    KestraTryMemory,
    is_lasting_error,
    log_left_running,
    redeferrals,
)
from airflow_provider_kestra.utils.state import KestraOutcome, failure_message, is_terminal, state_of
from airflow_provider_kestra.utils.wait import task_deadline
from airflow_provider_kestra.version_compat import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime, timedelta

    from airflow.sdk import Context

    from airflow_provider_kestra.exceptions import KestraExecutionError
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.utils.log_pacer import KestraLogReadResult
    from airflow_provider_kestra.utils.models import KestraExecution

FLOW_FILE_SUFFIXES = (".yml", ".yaml")
LOG_FOLLOWER_JOIN_SECONDS = 10.0
"""How long the end of a wait may wait for the log-following thread's current request."""


class KestraDeployFlowOperator(KestraHookMixin, BaseOperator):
    """Create or update Kestra flows from YAML text, a file, or a folder of ``.yml``/``.yaml`` files.

    Everything is validated by Kestra first: nothing is deployed when any flow is invalid, and the error
    names the file, the flow and Kestra's message. Unchanged flows keep their revision. Flow sources are
    never rendered by Airflow's Jinja, so Kestra expressions such as ``{{ inputs.name }}`` arrive untouched;
    only ``path`` and ``namespace`` are templated.

    :param source: YAML text of one or several flows (``---``-separated). Either this or ``path``.
    :param path: A flow file, or a folder searched recursively for ``.yml``/``.yaml`` files (templated).
        A relative path is looked up next to the DAG file first, then in the working directory.
    :param namespace: Optional. Every flow must belong to this namespace; with ``delete_missing`` it is the
        namespace to prune (templated).
    :param delete_missing: Delete flows of the namespace absent from the sources (each one is logged).
    :param dry_run: Only report what would change (``would-create``, ``would-update``, ``would-delete``).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook` (``retry_limit``, ...).
    :return: (XCom) one ``{"namespace", "flow_id", "revision", "action"}`` per flow.
    """

    template_fields: Sequence[str] = ("path", "namespace")
    ui_color = "#e4d6fc"

    def __init__(
        self,
        *,
        source: str | None = None,
        path: str | Path | None = None,
        namespace: str | None = None,
        delete_missing: bool = False,
        dry_run: bool = False,
        kestra_conn_id: str = "kestra_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (source is None) == (path is None):
            raise ValueError(
                f"{self.task_id}: give exactly one of `source` (YAML text) or `path` (file or folder)"
            )
        if delete_missing and not namespace:
            raise ValueError(f"{self.task_id}: delete_missing needs the namespace to prune")
        self.source = source
        self.path = str(path) if path is not None else None
        self.namespace = namespace
        self.delete_missing = delete_missing
        self.deploy_dry_run = dry_run  # BaseOperator.dry_run() is a method
        self.kestra_conn_id = kestra_conn_id
        self.hook_params = dict(hook_params or {})

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Validate every flow, then deploy them and return what happened to each."""
        from airflow_provider_kestra.exceptions import KestraFlowDeployError

        sources, filenames = self._read_sources()
        try:
            results = self.hook.deploy_flows(
                sources,
                namespace=self.namespace,
                delete_missing=self.delete_missing,
                dry_run=self.deploy_dry_run,
                filenames=filenames,
            )
        except KestraFlowDeployError as err:
            for result in err.deployed:
                self.log.error(
                    "Deployed: %s.%s (%s)", result["namespace"], result["flow_id"], result["action"]
                )
            for flow in err.not_deployed:
                self.log.error("NOT deployed: %s", flow)
            for flow in err.unknown:
                self.log.error("UNKNOWN (written, answer lost; check it in Kestra): %s", flow)
            raise
        for result in results:
            self.log.info(
                "Flow %s.%s: %s (revision %s)",
                result["namespace"],
                result["flow_id"],
                result["action"],
                result.get("revision"),
            )
        return [dict(result) for result in results]

    def _read_sources(self) -> tuple[list[str], list[str] | None]:
        if self.source is not None:
            return [self.source], None
        root = self._flow_path()
        if root.is_dir():
            files = sorted(
                p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FLOW_FILE_SUFFIXES
            )
            if not files:
                raise FileNotFoundError(f"No .yml/.yaml flow files found under {root}")
            names = [p.relative_to(root).as_posix() for p in files]
        elif root.is_file():
            files, names = [root], [root.name]
        else:
            raise FileNotFoundError(f"Flow path {root} does not exist")
        return [p.read_text(encoding="utf-8") for p in files], names

    def _flow_path(self) -> Path:
        """``path``, where a relative path is looked up next to the DAG file first (workers' cwd varies)."""
        path = Path(str(self.path))
        if not path.is_absolute() and self.has_dag():
            beside_dag = Path(self.dag.folder) / path
            if beside_dag.exists():
                return beside_dag
        return path


class KestraTriggerExecutionOperator(KestraHookMixin, BaseOperator):
    """Start an execution of a Kestra flow, follow it with its logs, and return the flow outputs.

    The execution carries labels naming the Airflow DAG, run, task and map index, so each side can find
    the other, and so a retry (or a new try after a worker crash) reattaches to the execution of this task
    instead of starting a duplicate: a running one is waited for, a successful one gives its outputs, a
    failed one is restarted (``restart_on_retry``) or replaced. Clearing the task starts a new execution.
    On Airflow 3.3 the execution id is also kept in ``task_state_store``.

    :param namespace: Namespace of the flow (templated).
    :param flow_id: Id of the flow (templated).
    :param inputs: Flow inputs (templated). ``pathlib.Path`` values, bytes and binary file objects are
        uploaded as FILE inputs; other non-string values are sent as JSON.
    :param file_inputs: Optional. FILE inputs as ``{input id: local path}`` (templated, so a path can carry
        ``{{ ds }}``); the files are uploaded.
    :param labels: Extra execution labels (templated). Keys follow Kestra's rule (lower-case first letter,
        then letters, digits, ``.``, ``_``, ``-``); ``airflow.*`` keys are reserved for this operator.
    :param revision: Flow revision to run; the latest when omitted (templated).
    :param schedule_date: Start the execution at this date-time instead of now (templated).
    :param wait_for_completion: Wait for the execution to end. When False the task returns the execution id.
    :param poll_interval: Seconds between two status checks when polling, and the shortest gap between two
        log reads (the log is read after a task-run change and while a task keeps logging, see
        ``stream_logs``).
    :param timeout: How long to wait for the execution (seconds or timedelta). When it passes, the Kestra
        execution is killed and the task fails. ``None`` waits for as long as Airflow lets the task run.
    :param deferrable: Wait in the triggerer instead of a worker slot (default: ``[operators]
        default_deferrable``).
    :param success_states: Terminal states that count as success (default ``("SUCCESS",)``; add
        ``"WARNING"`` to accept warnings). Every other terminal state fails the task.
    :param include_task_outputs: Also push the outputs of every Kestra task to XCom ``task_outputs``.
    :param output_files_dir: Download every ``kestra:///`` file of the outputs into this folder and push
        the local paths to XCom ``output_files`` (templated).
    :param stream_logs: Copy the execution's Kestra logs into the task log. The log is read when a task
        run starts or changes state and again while a running task keeps logging, never on a timer: lines
        a task writes after a long silence show at the next task-run change or at the end.
    :param log_level: Lowest Kestra log level copied (``ERROR``, ``WARN``, ``INFO``, ``DEBUG``, ``TRACE``).
    :param restart_on_retry: On a retry, restart the failed execution of the previous try (Kestra
        restarts from the failed task) instead of starting a new one.
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook` (``retry_limit``, ...).
    :return: (XCom) the flow outputs (``{}`` when none), or the execution id when not waiting.
        XComs ``execution_id`` and ``execution_url`` are pushed before waiting; ``execution_state`` after.
    """

    template_fields: Sequence[str] = (
        "namespace",
        "flow_id",
        "inputs",
        "file_inputs",
        "labels",
        "revision",
        "schedule_date",
        "output_files_dir",
    )
    template_fields_renderers = {"inputs": "json", "file_inputs": "json", "labels": "json"}
    operator_extra_links = (KestraExecutionLink(),)
    ui_color = "#e4d6fc"

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str,
        inputs: dict[str, Any] | None = None,
        file_inputs: dict[str, str | Path] | None = None,
        labels: dict[str, Any] | None = None,
        revision: int | str | None = None,
        schedule_date: datetime | str | None = None,
        wait_for_completion: bool = True,
        poll_interval: float = 5.0,
        timeout: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        success_states: Sequence[str] = ("SUCCESS",),
        include_task_outputs: bool = False,
        output_files_dir: str | None = None,
        stream_logs: bool = True,
        log_level: str = "INFO",
        restart_on_retry: bool = False,
        kestra_conn_id: str = "kestra_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace
        self.flow_id = flow_id
        self.inputs = inputs
        self.file_inputs = file_inputs
        self.labels = labels
        self.revision = revision
        self.schedule_date = schedule_date
        self.wait_for_completion = wait_for_completion
        self.poll_interval = positive_seconds(poll_interval, "poll_interval") or 5.0
        self.timeout = positive_seconds(timeout, "timeout")
        self.deferrable = deferrable
        self.outcome = KestraOutcome.of(success_states, terminal_only=True)
        self.include_task_outputs = include_task_outputs
        self.output_files_dir = output_files_dir
        self.stream_logs = stream_logs
        self.log_level = log_level.upper()
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level must be ERROR, WARN, INFO, DEBUG or TRACE, got {log_level!r}")
        self.restart_on_retry = restart_on_retry
        self.kestra_conn_id = kestra_conn_id
        self.hook_params = dict(hook_params or {})
        self._execution_id: str | None = None
        self._logs: KestraLogRelay | None = None

    # -- start or reattach ------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Start (or reattach to) the execution, publish its id and URL, then wait, defer or return."""
        try:
            return self._start_and_follow(context)
        except BaseException:
            if self._execution_id is None:
                # No execution to link to: an empty link keeps Airflow's end-of-task link rendering from
                # logging "XCom not found" on top of the real error.
                self._push_no_execution_link(context)
            raise

    def _start_and_follow(self, context: Context) -> Any:
        memory = KestraTryMemory(
            context,
            hook=self.hook,
            logger=self.log,
            namespace=self.namespace,
            flow_id=self.flow_id,
            retries=self.retries,
        )
        start = self._start_execution(memory)
        memory.kill_cleared()
        execution = memory.earlier_execution(self.outcome, restart=self.restart_on_retry)
        if execution is None:
            execution = start()
        self._publish(context, execution, memory)
        if not self.wait_for_completion:
            return execution["id"]
        if is_terminal(state_of(execution)):
            # An earlier try's execution that already ended: its log lines this task has not shown yet.
            self._relay_logs(execution["id"])
            return self._finish(context, execution)
        if self.deferrable:
            return self._defer(context, execution)
        return self._finish(context, self._wait(context, execution))

    def _start_execution(self, memory: KestraTryMemory) -> Callable[[], KestraExecution]:
        """How this task starts its execution when no earlier try left one to follow: checked now (bad
        labels, inputs or revision fail before any request), sent when called. Subclasses start it
        another way (a restart, a webhook)."""
        labels = memory.execution_labels(validate_labels(self.labels))
        revision = revision_number(self.task_id, self.revision)
        inputs = with_file_inputs(self.task_id, self.inputs, self.file_inputs)

        def start() -> KestraExecution:
            execution = self.hook.create_execution(
                self.namespace,
                self.flow_id,
                inputs=inputs,
                labels=labels,
                revision=revision,
                schedule_date=self.schedule_date,
                idempotency_label_key=TRY_ID_LABEL,
            )
            self.log.info(
                "Started Kestra execution %s of flow %s.%s", execution["id"], self.namespace, self.flow_id
            )
            return execution

        return start

    def _publish(self, context: Context, execution: KestraExecution, memory: KestraTryMemory) -> None:
        """Make the execution known before any wait: XCom id and URL (the link), task log, state store."""
        self._execution_id = execution["id"]
        url = self._push_execution_link(context, execution)
        self.log.info("Kestra execution: %s", url)
        memory.remember(execution["id"])

    # -- wait -------------------------------------------------------------------------------------

    def _wait(self, context: Context, execution: KestraExecution) -> KestraExecution:
        """Block until the execution ends (SSE with polling fallback) while its logs are copied.

        Faults that waiting may cure (Kestra unreachable, 5xx, an answer that is not Kestra's JSON) never end
        the wait before the deadline: it starts again. The deadline kills the execution; an error that
        waiting cannot cure fails the try and leaves the execution running for the next try.
        """
        from airflow_provider_kestra.exceptions import KestraWaitTimeout

        execution_id = execution["id"]
        deadline = time.time() + self.timeout if self.timeout is not None else None
        with self._following_logs(execution_id) as on_frame:
            while True:
                try:
                    return self.hook.wait_for_execution(
                        execution_id, deadline=deadline, poll_interval=self.poll_interval, on_frame=on_frame
                    )
                except KestraWaitTimeout as err:
                    self._kill_quietly(execution_id, cause="the operator's timeout passed")
                    raise self._error(
                        f"Kestra execution {execution_id} did not finish within {self.timeout:g}s "
                        f"(still {err.state}); asked Kestra to kill it",
                        execution_id,
                        err.state,
                    ) from err
                except Exception as err:
                    if is_lasting_error(err) or (deadline is not None and time.time() >= deadline):
                        log_left_running(self.log, self.hook, execution_id, err)
                        raise
                    self.log.warning(
                        "Lost sight of Kestra execution %s for a moment (%s); watching it again in %.1fs",
                        execution_id,
                        err,
                        self.poll_interval,
                    )
                    time.sleep(self.poll_interval)

    @contextmanager
    def _following_logs(self, execution_id: str) -> Iterator[Callable[[KestraExecution], None] | None]:
        """Copy new log lines from a background thread while the wait runs, and once more at the end.

        Yields the wait's ``on_frame``: every execution frame goes to a
        :class:`~airflow_provider_kestra.utils.log_pacer.KestraLogPacer`, which says when a read is due (a
        task-run change, a task still logging, a failed read); the thread sleeps until then or until a
        frame moves the next read, so a silent execution costs no log request. The thread has its own
        hook (own HTTP session): the main thread's session is busy with the wait.
        """
        if not self.stream_logs:
            yield None
            return
        pacer = KestraLogPacer(self.poll_interval)
        lock = threading.Lock()  # the pacer is shared by the waiting thread and the follower
        wake = threading.Event()
        stop = threading.Event()

        def on_frame(execution: KestraExecution) -> None:
            with lock:
                moved = pacer.frame(execution)
            if moved:
                wake.set()

        def follow() -> None:
            while True:
                wake.clear()
                if stop.is_set():
                    return
                with lock:
                    delay = pacer.due_in()
                if delay is None or delay > 0:
                    wake.wait(delay)
                    continue
                with lock:
                    pacer.begin_read()
                result = self._relay_logs(execution_id)
                with lock:
                    pacer.end_read(result)

        follower = threading.Thread(target=follow, name=f"kestra-logs-{execution_id}", daemon=True)
        follower.start()
        try:
            yield on_frame
        finally:
            stop.set()
            wake.set()
            follower.join(LOG_FOLLOWER_JOIN_SECONDS)
            self._relay_logs(execution_id)

    def _defer(self, context: Context, execution: KestraExecution) -> Any:
        """Hand the wait over to the triggerer.

        Nothing is read first: the trigger's first frame (stream or poll) reports an execution that
        already ended at once, and its final log relay shows the lines, so deferring costs no request.
        """
        execution_id = execution["id"]
        # Imported here, not at the top: DAG parsing never needs the trigger (nor airflow.triggers.base).
        from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger

        self.defer(
            trigger=KestraExecutionTrigger(
                kestra_conn_id=self.kestra_conn_id,
                execution_id=execution_id,
                success_states=sorted(self.outcome.success),
                poll_interval=self.poll_interval,
                deadline=self._deadline(context),
                hook_params=self.hook_params,
                stream_logs=self.stream_logs,
                log_level=self.log_level,
                log_cursor=self._logs.cursor if self._logs is not None else None,
                cancel_on_kill=True,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def _deadline(self, context: Context) -> float | None:
        """Wall-clock end of the wait: the operator ``timeout`` or the task's ``execution_timeout``."""
        return task_deadline(self.timeout, self.execution_timeout, getattr(context["ti"], "start_date", None))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the task result; any status not known here fails the task.

        ``success``/``failed``: the outcome Kestra reported. ``timeout``: the deadline passed (the trigger
        already asked Kestra to kill the execution; asked again here, which changes nothing if it ended).
        ``error``: the trigger stopped watching without an outcome, which is never a reason to kill: the
        execution is read once more and finished if it ended, watched again (deferred anew) while the
        deadline allows, or else left running for the next try, with its id and URL in the task log.

        The rest of the log is always read here, from the event's ``log_cursor``: one request on the
        worker, since the trigger fires at once without a final read (any other key an event carries,
        such as an unreleased ``logs_complete``, is ignored).
        """
        from airflow_provider_kestra.exceptions import KestraError

        event = event or {}
        status = event.get("status")
        execution_id = event.get("execution_id")
        if status not in EVENT_STATUSES or not execution_id:
            raise KestraError(f"{self.task_id}: unexpected event from the Kestra trigger: {event!r}")
        self._execution_id = str(execution_id)
        self._logs = KestraLogRelay(self.log, self.log_level, event.get("log_cursor"))
        self._relay_logs(self._execution_id)
        if status in ("success", "failed"):
            return self._finish(context, self.hook.get_execution(self._execution_id))
        if status == "timeout":
            self._kill_quietly(self._execution_id, cause="the task's deadline passed")
            message = str(event.get("message"))
            if "asked Kestra to kill it" not in message:
                message += "; asked Kestra to kill it"
            raise self._error(
                f"{message} (timeout={self.timeout}, execution_timeout={self.execution_timeout})",
                self._execution_id,
                event.get("state"),
            )
        return self._after_trigger_error(context, self._execution_id, str(event.get("message")))

    def _after_trigger_error(self, context: Context, execution_id: str, message: str) -> Any:
        """The trigger stopped without an outcome: finish, watch again, or leave the execution running."""
        from airflow_provider_kestra.exceptions import KestraError

        stopped = KestraError(f"Lost track of Kestra execution {execution_id}: {message}")
        try:
            current = self.hook.get_execution(execution_id)
        except Exception as err:
            if is_lasting_error(err):
                log_left_running(self.log, self.hook, execution_id, err)
                raise stopped from err
            current = {"id": execution_id, "state": {"current": "UNKNOWN"}}  # still to be watched
        if is_terminal(state_of(current)):
            self._relay_logs(execution_id)
            return self._finish(context, current)
        deadline = self._deadline(context)
        redeferred = redeferrals(context)
        if redeferred < MAX_REDEFERRALS and (deadline is None or time.time() < deadline):
            self.log.warning(
                "The Kestra trigger stopped watching execution %s (%s) while it is %s; watching it again",
                execution_id,
                message,
                state_of(current),
            )
            context["ti"].xcom_push(key=REDEFERRALS_XCOM_KEY, value=redeferred + 1)
            return self._defer(context, current)
        log_left_running(self.log, self.hook, execution_id, stopped)
        raise stopped

    # -- finish -----------------------------------------------------------------------------------

    def _finish(self, context: Context, execution: KestraExecution) -> Any:
        """Succeed with the outputs when the state is a success state; otherwise fail with the reasons."""
        state = state_of(execution)
        ti = context["ti"]
        ti.xcom_push(key="execution_state", value=state)
        if self.outcome.classify(state) != "success":
            raise self._failure(execution)
        self.log.info("Kestra execution %s ended in %s", execution["id"], state)
        outputs = self.hook.get_outputs(execution, include_task_outputs=self.include_task_outputs)
        if self.include_task_outputs:
            ti.xcom_push(key="task_outputs", value=outputs.get("task_outputs", {}))
        if self.output_files_dir:
            paths = download_output_files_into(self.hook, execution, Path(self.output_files_dir))
            self.log.info("Downloaded %d output file(s) into %s", len(paths), self.output_files_dir)
            ti.xcom_push(key="output_files", value=[str(p) for p in paths])
        return outputs.get("outputs") or {}

    def _failure(self, execution: KestraExecution) -> KestraExecutionError:
        execution_id = execution["id"]
        message = failure_message(
            execution, self.outcome.success, lambda: self.hook.get_logs(execution_id, min_level="ERROR")[0]
        )
        return self._error(message, execution_id, state_of(execution))

    @staticmethod
    def _error(message: str, execution_id: str, state: str | None) -> KestraExecutionError:
        from airflow_provider_kestra.exceptions import KestraExecutionError

        return KestraExecutionError(message, execution_id=execution_id, state=state)

    # -- logs and kill ----------------------------------------------------------------------------

    def _relay_logs(self, execution_id: str) -> KestraLogReadResult | None:
        """Copy the Kestra log lines not shown yet into the task log (best effort, each line once); what
        the read showed, for the log pacer (None when logs are not streamed)."""
        if not self.stream_logs:
            return None
        if self._logs is None:
            self._logs = KestraLogRelay(self.log, self.log_level)
        return self._logs.relay(execution_id, self._log_hook.iter_logs)

    @cached_property
    def _log_hook(self) -> KestraHook:
        """A second client for the log-following thread (sessions are not shared across threads)."""
        return self._new_hook()

    def _kill_quietly(self, execution_id: str, hook: KestraHook | None = None, *, cause: str) -> None:
        """Ask Kestra to kill the execution, for one of the rule's causes: the task's deadline passed or a
        person acted on the task. Never for anything else."""
        try:
            (hook or self.hook).kill_execution(execution_id)
            self.log.info("Asked Kestra to kill execution %s: %s", execution_id, cause)
        except Exception as err:
            self.log.warning("Could not kill Kestra execution %s (%s): %s", execution_id, cause, err)

    def on_kill(self) -> None:
        """Kill the Kestra execution when Airflow kills the task (timeout, mark failed), without hanging."""
        execution_id = self._execution_id
        if not execution_id:
            return
        worker = threading.Thread(
            target=self._kill_quietly,
            args=(execution_id, self._new_hook()),
            kwargs={"cause": "Airflow killed the task (execution_timeout, or a person marked or cleared it)"},
            name="kestra-kill",
            daemon=True,
        )
        worker.start()
        worker.join(KILL_TIMEOUT_SECONDS)

    # -- OpenLineage (called by apache-airflow-providers-openlineage after the task; see docs/events.md) --

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The Kestra execution as a child run of this task (``kestra_execution`` facet, parent facet)."""
        from airflow_provider_kestra.utils.lineage import trigger_operator_lineage

        return trigger_operator_lineage(self, task_instance)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """Same as on completion: a failed Kestra execution is emitted as a FAIL child run."""
        from airflow_provider_kestra.utils.lineage import trigger_operator_lineage

        return trigger_operator_lineage(self, task_instance)


class KestraKillExecutionOperator(KestraHookMixin, BaseOperator):
    """Kill a Kestra execution (and its subflow executions), optionally waiting until it has stopped.

    Killing an execution that already ended changes nothing; the task then returns its final state.

    :param execution_id: The execution to kill (templated).
    :param wait_for_termination: Wait until the execution reaches a terminal state.
    :param poll_interval: Seconds between two status checks while waiting.
    :param timeout: Optional. Fail if the execution has not stopped after this long (seconds or timedelta).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook`.
    :return: (XCom) the final state, or ``None`` when not waiting.
    """

    template_fields: Sequence[str] = ("execution_id",)
    ui_color = "#fcd6d6"

    def __init__(
        self,
        *,
        execution_id: str,
        wait_for_termination: bool = True,
        poll_interval: float = 2.0,
        timeout: float | timedelta | None = None,
        kestra_conn_id: str = "kestra_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution_id = execution_id
        self.wait_for_termination = wait_for_termination
        self.poll_interval = positive_seconds(poll_interval, "poll_interval") or 2.0
        self.timeout = positive_seconds(timeout, "timeout")
        self.kestra_conn_id = kestra_conn_id
        self.hook_params = dict(hook_params or {})

    def execute(self, context: Context) -> str | None:
        """Ask Kestra to kill the execution, then (optionally) wait for it to stop."""
        self.hook.kill_execution(self.execution_id)
        self.log.info("Asked Kestra to kill execution %s", self.execution_id)
        if not self.wait_for_termination:
            return None
        final = self.hook.wait_for_execution(
            self.execution_id, timeout=self.timeout, poll_interval=self.poll_interval
        )
        state = state_of(final)
        self.log.info("Kestra execution %s is %s", self.execution_id, state)
        return state


class KestraResumeExecutionOperator(KestraHookMixin, BaseOperator):
    """Resume a paused Kestra execution, e.g. to approve a step, optionally passing the Pause task's inputs.

    Fails with Kestra's message when the execution is not paused.

    :param execution_id: The paused execution (templated).
    :param inputs: Optional. Values for the ``onResume`` inputs of the Pause task (templated).
    :param kestra_conn_id: Airflow connection to Kestra.
    :param hook_params: Optional keyword arguments for :class:`KestraHook`.
    :return: (XCom) the execution id.
    """

    template_fields: Sequence[str] = ("execution_id", "inputs")
    template_fields_renderers = {"inputs": "json"}
    ui_color = "#d6fcdc"

    def __init__(
        self,
        *,
        execution_id: str,
        inputs: dict[str, Any] | None = None,
        kestra_conn_id: str = "kestra_default",
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution_id = execution_id
        self.inputs = inputs
        self.kestra_conn_id = kestra_conn_id
        self.hook_params = dict(hook_params or {})

    def execute(self, context: Context) -> str:
        """Resume the execution."""
        self.hook.resume_execution(self.execution_id, inputs=self.inputs)
        self.log.info("Resumed Kestra execution %s", self.execution_id)
        return self.execution_id
