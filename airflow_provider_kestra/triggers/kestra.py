"""Deferrable waiting on a Kestra execution in the triggerer, so no worker slot is held.

The execution is followed through Kestra's event stream, with polling as the fallback (the hook's
``wait_for_execution``, shared with the sync path and the sensor).

The trigger watches one execution (by id), or the newest execution of a flow matching labels and a start
time (the sensor's cross-orchestrator dependency). It fires exactly one :class:`TriggerEvent` per outcome,
a :class:`~airflow_provider_kestra.utils.models.KestraTriggerEvent`; the operator and the sensor map every
status explicitly and fail on any other value. Which states end the wait, and how, is decided by
:class:`~airflow_provider_kestra.utils.state.KestraOutcome`, the same policy the operator and the sensor use.

The rule of the provider: for Airflow an execution ends only when Kestra reports an outcome, the task's
deadline passes, or a person acts on the task. So the trigger keeps watching through faults (Kestra or a
proxy unreachable, 5xx, an answer that is not Kestra's JSON, a cut stream) until its deadline; it fires
``error`` only when it cannot watch on (credentials refused, execution gone), and never kills then. A
trigger that owns its execution (``cancel_on_kill``) kills it itself at the deadline, and on ``on_kill``
only when the task instance shows that a person acted, not when Airflow moved the trigger to another
triggerer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_kestra.exceptions import KestraWaitTimeout
from airflow_provider_kestra.utils.log_pacer import KestraLogPacer
from airflow_provider_kestra.utils.logs import KestraLogRelay, further_cursor
from airflow_provider_kestra.utils.models import KILL_TIMEOUT_SECONDS
from airflow_provider_kestra.utils.reattach import is_lasting_error
from airflow_provider_kestra.utils.state import KestraOutcome, state_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
    from airflow_provider_kestra.utils.log_pacer import KestraLogReadResult
    from airflow_provider_kestra.utils.models import (
        KestraExecution,
        KestraLogCursor,
        KestraTriggerEvent,
        KestraTriggerStatus,
    )

LOG_CURSOR_XCOM_KEY = "kestra_log_cursor"
"""XCom (Airflow 3.3) where the trigger keeps its log cursor while it relays, so a trigger rebuilt by another
triggerer (restart, fail-over) from the kwargs stored at defer time does not print those lines again."""
TI_STATE_TIMEOUT_SECONDS = 10.0
"""How long ``on_kill`` may wait for Airflow to say what became of the task instance."""
REASSIGNED_TI_STATES = frozenset({"deferred"})
"""The task still waits for a trigger: this one was handed to another triggerer, nobody acted."""
USER_ACTION_TI_STATES = frozenset(
    {"failed", "success", "up_for_retry", "upstream_failed", "skipped", "removed"}
)
"""A person (or the task's deadline) ended the task: its execution must stop. A cleared task (no state)
counts too."""

_preloaded = False
"""Whether this process already imported, off the event loop, what a trigger's first request loads."""


def preload_http_stack() -> None:
    """Import what the first Kestra request of a trigger needs (the async hook and the HTTP stack down to
    anyio's asyncio backend and h11), so it runs in a thread instead of stalling the triggerer's loop."""
    import importlib

    for module in (
        "airflow_provider_kestra.hooks.kestra_async",
        "httpx",
        "httpcore",
        "httpcore._async.connection_pool",
        "httpcore._async.http11",
        "h11",
        "anyio",
        "anyio._backends._asyncio",
        "sniffio",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


_preloading: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
"""The preload under way and its loop: triggers that start together all wait for the one thread."""


async def preload_once() -> None:
    """Run :func:`preload_http_stack` in a thread, once per process (best effort); triggers that start
    while it runs wait for it rather than import the same modules on the loop meanwhile."""
    global _preloaded, _preloading
    if _preloaded:
        return
    loop = asyncio.get_running_loop()
    if _preloading is None or _preloading[0] is not loop:
        _preloading = (loop, asyncio.ensure_future(asyncio.to_thread(preload_http_stack)))
    with contextlib.suppress(Exception):
        await asyncio.shield(_preloading[1])  # a trigger cancelled meanwhile leaves the preload running
    _preloaded = True


class KestraPacedLogReads:
    """Reads a waited execution's log when its :class:`~airflow_provider_kestra.utils.log_pacer.
    KestraLogPacer` says so: a timer while a read is scheduled, a task only while a read runs.

    Nothing is held for an execution that logs nothing between task-run changes (most of a long wait):
    no sleeping task, event or future per trigger, which thousands of waiting triggers would otherwise keep
    on the triggerer's heap (issue 12: every long-lived object is walked by each full garbage collection).
    A read that raises counts as a failed read (warned, tried again one interval later): logs never end
    a wait.
    """

    __slots__ = ("_execution_id", "_log", "_loop", "_pacer", "_read", "_task", "_timer")

    def __init__(
        self,
        pacer: KestraLogPacer,
        read: Callable[[str], Awaitable[KestraLogReadResult]],
        execution_id: str,
        log: Any,
    ) -> None:
        self._pacer = pacer
        self._read = read
        self._execution_id = execution_id
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def frame(self, execution: KestraExecution) -> None:
        """Hand an execution frame to the pacer; a frame that moved the next read re-arms the timer."""
        if self._pacer.frame(execution):
            self._arm()

    def _arm(self) -> None:
        if self._task is not None:
            return  # the read under way arms the next one when it ends
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delay = self._pacer.due_in()
        if delay is not None:
            self._timer = self._loop.call_later(delay, self._start)

    def _start(self) -> None:
        self._timer = None
        self._pacer.begin_read()
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        result: KestraLogReadResult | None = None
        try:
            result = await self._read(self._execution_id)
        except Exception as err:
            self._log.warning("Could not read the Kestra log of execution %s: %s", self._execution_id, err)
        self._task = None
        self._pacer.end_read(result)
        self._arm()

    async def aclose(self) -> None:
        """Stop: no further read; a read under way is cancelled (its cursor keeps what it printed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class KestraExecutionTrigger(BaseTrigger):
    """Wait in the triggerer until a Kestra execution ends, the deadline passes, or Kestra cannot be asked.

    :param kestra_conn_id: Airflow connection to Kestra; only its id travels, never credentials.
    :param execution_id: The execution to watch. Either this, or ``namespace`` + ``flow_id``.
    :param namespace: With ``flow_id``: watch the newest execution of this flow (search mode).
    :param flow_id: See ``namespace``.
    :param labels: Search mode only: labels the execution must carry.
    :param started_after: Search mode only: ISO-8601 instant the execution must have started after.
    :param success_states: States that end the wait successfully.
    :param failure_states: States that end the wait as a failure; ``None`` means every other terminal state.
        Any other state (including ones this provider does not know) keeps the trigger waiting.
    :param poll_interval: Seconds between two polls when Kestra's event stream cannot be used (and while
        searching); log reads follow the execution's task-run changes, at most one per interval (see
        :class:`~airflow_provider_kestra.utils.log_pacer.KestraLogPacer`).
    :param deadline: Wall-clock epoch seconds (``time.time()``) after which a ``timeout`` event fires;
        ``None`` waits forever. Wall-clock, so it means the same thing in every triggerer process.
    :param hook_params: Keyword arguments for :class:`~airflow_provider_kestra.hooks.kestra.KestraAsyncHook`.
    :param stream_logs: Write the execution's Kestra logs into the task log while waiting. The event fires
        without a final read (so thousands of events ending together are not held up); its
        ``log_cursor`` says where the relay stopped, and the task's ``execute_complete`` reads the rest.
    :param log_level: Lowest Kestra log level to stream.
    :param log_cursor: Where log streaming resumes (from the hook's ``get_logs``), so no line shows twice.
    :param cancel_on_kill: The trigger owns the execution (the operator that started it sets this; a
        sensor that only watches does not): kill it at the deadline, and when a person kills, marks or
        clears the deferred task (Airflow 3.3+, checked against the task instance's state).
    """

    def __init__(
        self,
        *,
        kestra_conn_id: str,
        execution_id: str | None = None,
        namespace: str | None = None,
        flow_id: str | None = None,
        labels: dict[str, str] | None = None,
        started_after: str | None = None,
        success_states: Sequence[str] = ("SUCCESS",),
        failure_states: Sequence[str] | None = None,
        poll_interval: float = 5.0,
        deadline: float | None = None,
        hook_params: dict[str, Any] | None = None,
        stream_logs: bool = False,
        log_level: str = "INFO",
        log_cursor: KestraLogCursor | None = None,
        cancel_on_kill: bool = False,
    ) -> None:
        super().__init__()
        if not execution_id and not (namespace and flow_id):
            raise ValueError("KestraExecutionTrigger needs execution_id, or namespace and flow_id")
        self.kestra_conn_id = kestra_conn_id
        self.execution_id = execution_id
        self.namespace = namespace
        self.flow_id = flow_id
        self.labels = dict(labels or {})
        self.started_after = started_after
        self.outcome = KestraOutcome.of(success_states, failure_states, terminal_only=False)
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.hook_params = dict(hook_params or {})
        self.stream_logs = stream_logs
        self.log_level = log_level
        self._logs = KestraLogRelay(self.log, log_level, log_cursor)
        self._cursor_restored = False
        self.cancel_on_kill = cancel_on_kill
        self._hook: KestraAsyncHook | None = None

    @property
    def log_cursor(self) -> KestraLogCursor | None:
        """Where log streaming resumes; it moves on as lines are relayed and travels in the event."""
        return self._logs.cursor

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the JSON-safe arguments that rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kestra_conn_id": self.kestra_conn_id,
                "execution_id": self.execution_id,
                "namespace": self.namespace,
                "flow_id": self.flow_id,
                "labels": self.labels,
                "started_after": self.started_after,
                **self.outcome.to_json(),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "hook_params": self.hook_params,
                "stream_logs": self.stream_logs,
                "log_level": self.log_level,
                "log_cursor": self.log_cursor,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def _get_hook(self) -> KestraAsyncHook:
        """The trigger's one async client, opened on first use and closed by :meth:`cleanup`."""
        if self._hook is None:
            from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

            self._hook = KestraAsyncHook(self.kestra_conn_id, **self.hook_params)
        return self._hook

    async def _close_hook(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            await hook.aclose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch until an outcome is known, then yield its single event."""
        try:
            await preload_once()
            event: KestraTriggerEvent = await self._watch_through_faults()
        except asyncio.CancelledError:
            raise  # the client stays open for on_kill(); cleanup() closes it
        except Exception as err:
            self.log.exception("Cannot follow the Kestra execution any more")
            event = self._event("error", None, f"Could not follow the Kestra execution: {err}")
        await self._close_hook()
        yield TriggerEvent(event)

    async def _watch_through_faults(self) -> KestraTriggerEvent:
        """:meth:`_watch`, started again after every fault that waiting may cure, until the deadline.

        Only an error that waiting cannot cure (see :func:`~airflow_provider_kestra.utils.reattach.
        is_lasting_error`) escapes; the deadline gives a ``timeout`` event as usual.
        """
        while True:
            try:
                return await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if is_lasting_error(err):
                    raise
                if self.deadline is not None and time.time() >= self.deadline:
                    return await self._timed_out(self.execution_id, None)
                self.log.warning(
                    "Lost sight of Kestra execution %s for a moment (%s); watching it again in %.1fs",
                    self.execution_id or f"of {self.namespace}.{self.flow_id}",
                    err,
                    self._sleep_seconds(),
                )
                await asyncio.sleep(self._sleep_seconds())

    async def _watch(self) -> KestraTriggerEvent:
        if self.namespace is None:
            execution_id = str(self.execution_id)
        else:
            found = await self._search_until_found()
            if found is None:
                return self._event("timeout", None, self._timeout_message(None))
            execution_id = found["id"]
            if self.outcome.classify(state_of(found)) is not None:
                return await self._outcome(found)
        seen: list[KestraExecution] = []
        try:
            execution = await self._follow(execution_id, seen)
        except KestraWaitTimeout:
            return await self._timed_out(execution_id, seen[-1] if seen else None)
        return await self._outcome(execution)

    async def _timed_out(self, execution_id: str | None, last: KestraExecution | None) -> KestraTriggerEvent:
        """The ``timeout`` event; a trigger that owns its execution kills it first (cause 2 of the rule:
        the deadline passed), so the execution stops even if the task resumes late or never. No log read
        here: ``execute_complete`` reads the rest from the event's ``log_cursor``."""
        message = self._timeout_message(last, execution_id)
        if (
            self.cancel_on_kill
            and execution_id is not None
            and await self._kill(execution_id, "the task's deadline passed")
        ):
            message += "; asked Kestra to kill it"
        return self._event("timeout", last, message)

    async def _search_until_found(self) -> KestraExecution | None:
        """Search mode: the newest matching execution, polling until one exists (None past the deadline)."""
        while True:
            found = await self._get_hook().search_executions(
                namespace=self.namespace,
                flow_id=self.flow_id,
                labels=self.labels or None,
                started_after=self.started_after,
                size=1,
            )
            if found:
                return found[0]
            if self.deadline is not None and time.time() >= self.deadline:
                return None
            await asyncio.sleep(self._sleep_seconds())

    async def _follow(self, execution_id: str, seen: list[KestraExecution]) -> KestraExecution:
        """Wait (event stream, polling as fallback) until the outcome is known, relaying logs meanwhile.

        Each new state is appended to ``seen``; raises :class:`KestraWaitTimeout` past the deadline. Every
        execution frame goes to the log pacer of a :class:`KestraPacedLogReads`, which reads the log when
        a task run changed.
        """
        if not self.stream_logs:
            return await self._wait(execution_id, seen, None)
        pacer = KestraLogPacer(self.poll_interval)
        reads = KestraPacedLogReads(pacer, self._relay_logs, execution_id, self.log)
        try:
            return await self._wait(execution_id, seen, reads.frame)
        finally:
            await reads.aclose()

    async def _wait(
        self,
        execution_id: str,
        seen: list[KestraExecution],
        on_frame: Callable[[KestraExecution], None] | None,
    ) -> KestraExecution:
        return await self._get_hook().wait_for_execution(
            execution_id,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
            on_update=seen.append,
            until=self._ends_wait,
            on_frame=on_frame,
        )

    def _ends_wait(self, execution: KestraExecution) -> bool:
        return self.outcome.classify(state_of(execution)) is not None

    async def _outcome(self, execution: KestraExecution) -> KestraTriggerEvent:
        """The success or failure event of an execution whose state ended the wait, fired at once.

        No final log read: thousands of triggers ending together would queue those reads on the
        triggerer's one event loop and delay every event (issue 12). The event's ``log_cursor`` says where
        the paced relay stopped; ``execute_complete`` reads the rest on the worker.
        """
        execution_id, state = execution["id"], state_of(execution)
        if self.outcome.classify(state) == "failed":
            return self._event("failed", execution, f"Kestra execution {execution_id} ended in {state}")
        return self._event("success", execution, f"Kestra execution {execution_id} is {state}")

    async def _relay_logs(self, execution_id: str) -> KestraLogReadResult:
        """Copy new Kestra log lines into the task log; a failure here never ends the wait."""
        if not self._cursor_restored:
            self._cursor_restored = True
            await self._restore_log_cursor(execution_id)
        before = self._logs.cursor
        result = await self._logs.arelay(execution_id, self._get_hook().iter_logs)
        if self._logs.cursor != before:
            await self._save_log_cursor(execution_id)
        return result

    def _comms(self) -> tuple[Any, Any] | None:
        """``(task instance, Task SDK channel)`` of this trigger in Airflow 3.3's triggerer, else None."""
        ti = getattr(self, "task_instance", None)
        try:
            from airflow.sdk.execution_time import task_runner
        except ImportError:
            return None
        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
        if ti is None or comms is None or not hasattr(comms, "asend"):
            return None
        return ti, comms

    def _xcom_address(self, ti: Any) -> dict[str, Any]:
        raw_index = getattr(ti, "map_index", None)
        map_index = -1 if raw_index is None else int(raw_index)
        return {
            "key": LOG_CURSOR_XCOM_KEY,
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": map_index if map_index >= 0 else None,
        }

    async def _save_log_cursor(self, execution_id: str) -> None:
        """Keep the cursor where another triggerer finds it (best effort)."""
        found = self._comms()
        if found is None:
            return
        ti, comms = found
        try:
            from airflow.sdk.execution_time.comms import SetXCom

            value = json.dumps({"execution_id": execution_id, "cursor": self._logs.cursor})
            await asyncio.wait_for(
                comms.asend(SetXCom(value=value, **self._xcom_address(ti))), TI_STATE_TIMEOUT_SECONDS
            )
        except Exception as err:
            self.log.debug("Could not keep the Kestra log cursor: %s", err)

    async def _restore_log_cursor(self, execution_id: str) -> None:
        """Take the cursor an earlier trigger of this try kept, when it is further than the one given."""
        found = self._comms()
        if found is None:
            return
        ti, comms = found
        try:
            from airflow.sdk.execution_time.comms import GetXCom

            answer = await asyncio.wait_for(
                comms.asend(GetXCom(**self._xcom_address(ti))), TI_STATE_TIMEOUT_SECONDS
            )
            stored = getattr(answer, "value", None)
            stored = json.loads(stored) if isinstance(stored, str) else stored
        except Exception as err:
            self.log.debug("Could not read the kept Kestra log cursor: %s", err)
            return
        if isinstance(stored, dict) and stored.get("execution_id") == execution_id:
            self._logs.cursor = further_cursor(self._logs.cursor, stored.get("cursor"))

    def _sleep_seconds(self) -> float:
        if self.deadline is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, self.deadline - time.time()))

    def _timeout_message(self, execution: KestraExecution | None, execution_id: str | None = None) -> str:
        if execution is not None:
            return f"Kestra execution {execution['id']} was still {state_of(execution)} at the deadline"
        if execution_id is not None:
            return f"Kestra execution {execution_id} did not finish before the deadline"
        return "No matching Kestra execution finished before the deadline"

    def _event(
        self, status: KestraTriggerStatus, execution: KestraExecution | None, message: str
    ) -> KestraTriggerEvent:
        return {
            "status": status,
            "execution_id": execution["id"] if execution is not None else self.execution_id,
            "state": state_of(execution) if execution is not None else None,
            "message": message,
            "log_cursor": self.log_cursor,
        }

    async def on_kill(self) -> None:
        """Kill the Kestra execution when a person killed, marked or cleared the deferred task (AF 3.3+).

        Airflow 3.3 also calls ``on_kill`` when it takes a trigger away from a triggerer that stopped
        heartbeating (the trigger now runs elsewhere), with the same "user action" cancel message. So the
        task instance's state decides: still ``deferred`` means the trigger was reassigned and the
        execution runs on; ``failed``, ``success``, ``up_for_retry``, ``skipped`` or cleared (no state)
        means a person acted, and the execution is killed. Any other state (the task resumed or started a
        new try), or a state that cannot be read, leaves the execution running and says so: the try that
        runs next reattaches to it or, after a clear, kills it.
        """
        if not self.cancel_on_kill or not self.execution_id:
            return
        known, ti_state = await self._task_instance_state()
        if known and (ti_state is None or ti_state in USER_ACTION_TI_STATES):
            await self._kill(self.execution_id, f"the task instance is {ti_state or 'cleared'}")
            return
        why = (
            "the task is still deferred: Airflow moved this trigger to another triggerer"
            if ti_state in REASSIGNED_TI_STATES
            else f"the task instance is {ti_state}"
            if known
            else "Airflow could not say what became of the task instance"
        )
        self.log.warning(
            "Airflow stopped this trigger, but not because a person acted on the task (%s): Kestra execution "
            "%s is left running; the task's next try reattaches to it%s",
            why,
            self.execution_id,
            await self._url_suffix(self.execution_id),
        )

    async def _task_instance_state(self) -> tuple[bool, str | None]:
        """``(known, state)`` of this trigger's task instance, read through the triggerer's Task SDK
        channel (Airflow 3.3); ``(False, None)`` when it cannot be read."""
        found = self._comms()
        if found is None:
            return False, None
        ti, comms = found
        from airflow.sdk.execution_time.comms import GetTaskStates

        raw_index = getattr(ti, "map_index", None)
        map_index = -1 if raw_index is None else int(raw_index)
        mapped = map_index >= 0
        try:
            answer = await asyncio.wait_for(
                comms.asend(
                    GetTaskStates(
                        dag_id=ti.dag_id,
                        task_ids=[ti.task_id],
                        run_ids=[ti.run_id],
                        map_index=map_index if mapped else None,
                    )
                ),
                TI_STATE_TIMEOUT_SECONDS,
            )
            states = (getattr(answer, "task_states", None) or {}).get(ti.run_id) or {}
        except Exception as err:
            self.log.warning("Could not read the state of task instance %s: %s", ti.task_id, err)
            return False, None
        key = f"{ti.task_id}_{map_index}" if mapped else ti.task_id
        if key not in states:
            return True, None  # cleared and gone from the run's task instances: treated as cleared
        state = states[key]
        return True, None if state is None else str(getattr(state, "value", state))

    async def _kill(self, execution_id: str, cause: str) -> bool:
        """Ask Kestra to kill the execution (bounded, best effort); True when Kestra took the request."""
        try:
            await asyncio.wait_for(self._get_hook().kill_execution(execution_id), KILL_TIMEOUT_SECONDS)
        except Exception:
            self.log.warning(
                "Could not kill Kestra execution %s (%s)%s",
                execution_id,
                cause,
                await self._url_suffix(execution_id),
                exc_info=True,
            )
            return False
        self.log.info("Asked Kestra to kill execution %s: %s", execution_id, cause)
        return True

    async def _url_suffix(self, execution_id: str) -> str:
        """``": <UI URL>"`` of the execution, or "" when it cannot be built right now."""
        try:
            hook = self._get_hook()
            execution = await asyncio.wait_for(hook.get_execution(execution_id), TI_STATE_TIMEOUT_SECONDS)
            return f": {hook._ui_url(execution, await hook.api_version())}"
        except Exception:
            return ""

    async def cleanup(self) -> None:
        """Close the trigger's HTTP client, however the trigger ended."""
        await self._close_hook()
