"""The execution runner: executions run as asyncio tasks in the server's event loop, with real timing.

States move CREATED -> RUNNING -> terminal with full histories; every task gets a task run (with attempts
for worker tasks), logs, and outputs. Follow streams and ``wait=true`` requests are woken through
:class:`KestraSimHub` (one asyncio.Event per execution), never by polling.

Running from the stored state is idempotent: terminal task runs are skipped, so the same coroutine serves
first runs, Kestra's ``restart`` (failed task runs marked RESTARTED run again) and the resumption of
executions after a simulator restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend import flows as F
from airflow_provider_kestra.testing.backend.clock import (
    new_kestra_id,
    now_instant,
    parse_instant,
    parse_iso_duration,
)
from airflow_provider_kestra.testing.backend.exceptions import KestraSimError
from airflow_provider_kestra.testing.backend.executions import new_execution
from airflow_provider_kestra.testing.backend.flows import normalize_labels
from airflow_provider_kestra.testing.backend.inputs import parse_typed_value, read_execution_inputs
from airflow_provider_kestra.testing.backend.pebble import KestraPebbleError, render, render_value
from airflow_provider_kestra.testing.backend.store import (
    TERMINAL_STATES,
    KestraSimStore,
    new_state,
    transition,
)
from airflow_provider_kestra.testing.backend.tasks import (
    WORKER_TYPES,
    KestraSimTaskFailure,
    for_each_values,
    java_true,
    run_worker_task,
    task_context,
)

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.backend.flows import KestraSimFlow, KestraSimTask

_SEVERITY = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4}
_RANK = {"SUCCESS": 0, "SKIPPED": 0, "WARNING": 1, "FAILED": 2, "KILLED": 3}


def level_at_least(level: str, minimum: str | None) -> bool:
    """``LogEntry.findLevelsByMin``: keep ``minimum`` and more severe levels."""
    return minimum is None or _SEVERITY.get(level, 2) >= _SEVERITY.get(minimum.upper(), 0)


class KestraSimHub:
    """Wake-ups per key (an execution id, or ``logs:<id>``) for streams waiting on changes."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, key: str) -> asyncio.Event:
        """The event the next :meth:`notify` of ``key`` sets; take it *before* reading state."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        return event

    def notify(self, key: str) -> None:
        """Wake every waiter of ``key``."""
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        """Wake everybody (used on shutdown)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()


class KestraSimEngine:
    """Runs executions stored in :class:`KestraSimStore` inside the current event loop."""

    def __init__(
        self,
        store: KestraSimStore,
        hub: KestraSimHub,
        *,
        with_tenant: bool,
        start_delay: float = 0.02,
        task_delay: float = 0.005,
        log_timestamp_digits: int = 9,
    ) -> None:
        self.store = store
        self.log_timestamp_digits = log_timestamp_digits
        self.hub = hub
        self.with_tenant = with_tenant
        self.start_delay = start_delay
        self.task_delay = task_delay
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._resume: dict[str, asyncio.Event] = {}
        self._resume_inputs: dict[str, dict[str, Any]] = {}
        self._kill_requested: set[str] = set()
        self._paused_by_api: set[str] = set()
        #: Real workers stamp their id on attempts; the simulator is a single worker.
        self.worker_id = str(uuid.uuid4())
        #: Bumped on every change of an execution; keys the serialized-body cache of the views.
        self.versions: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def launch(self, execution_id: str) -> None:
        """Start (or continue) running an execution in the background."""
        current = self._tasks.get(execution_id)
        if current is not None and not current.done():
            return
        task = asyncio.get_running_loop().create_task(
            self._run(execution_id), name=f"kestra-sim-{execution_id}"
        )
        self._tasks[execution_id] = task
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        execution_id = task.get_name().removeprefix("kestra-sim-")
        if self._tasks.get(execution_id) is task:
            del self._tasks[execution_id]

    def resume_all(self) -> None:
        """Continue every non-terminal execution (after a simulator restart)."""
        for execution_id, execution in self.store.executions.items():
            if execution["state"]["current"] not in TERMINAL_STATES and not execution.get("deleted"):
                task_runs = execution.get("taskRunList", [])
                if execution["state"]["current"] == "PAUSED" and all(
                    tr["state"]["current"] != "PAUSED" for tr in task_runs
                ):
                    self._paused_by_api.add(execution_id)
                self.launch(execution_id)

    async def shutdown(self) -> None:
        """Stop running executions without changing their stored state."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.hub.notify_all()

    def forget(self, execution_id: str) -> None:
        """Stop running an execution (it was deleted) without touching its state."""
        task = self._tasks.get(execution_id)
        if task is not None and not task.done():
            task.cancel()

    # -- requests from the API ---------------------------------------------------------------------------
    def kill(self, execution: dict[str, Any]) -> None:
        """KILLING now, KILLED once the running task runs are stopped."""
        if execution["state"]["current"] in TERMINAL_STATES:
            return
        self._kill_requested.add(execution["id"])
        transition(execution["state"], "KILLING")
        self.changed(execution)
        task = self._tasks.get(execution["id"])
        if task is not None and not task.done():
            task.cancel()
        else:
            self._finish_kill(execution)

    def pause(self, execution: dict[str, Any]) -> None:
        """Pause a RUNNING execution: running task runs finish, no new task starts until resumed."""
        self._paused_by_api.add(execution["id"])
        transition(execution["state"], "PAUSED")
        self.changed(execution)

    async def _hold_if_paused(self, execution: dict[str, Any]) -> None:
        while execution["id"] in self._paused_by_api:
            event = self._resume.setdefault(execution["id"], asyncio.Event())
            await event.wait()
            self._resume.pop(execution["id"], None)

    def resume(self, execution: dict[str, Any], inputs: dict[str, Any]) -> None:
        """Resume a PAUSED execution (its Pause task run succeeds with ``onResume`` outputs)."""
        self._paused_by_api.discard(execution["id"])
        for task_run in execution.get("taskRunList", []):
            if task_run["state"]["current"] == "PAUSED":
                transition(task_run["state"], "RUNNING")
                # Pause.Output: onResume inputs and Resumed(by, on: LocalDateTime, to) (by is null).
                on = datetime.now(timezone.utc).replace(tzinfo=None).isoformat()
                task_run["outputs"] = {
                    **({"onResume": inputs} if inputs else {}),
                    "resumed": {"on": on, "to": "SUCCESS"},
                }
        transition(execution["state"], "RUNNING")
        self.changed(execution)
        event = self._resume.get(execution["id"])
        if event is not None:
            event.set()
        else:
            self.launch(execution["id"])

    def changed(self, execution: dict[str, Any]) -> None:
        """Publish an update of ``execution`` to followers (every mutation must end with this call)."""
        self.versions[execution["id"]] = self.versions.get(execution["id"], 0) + 1
        self.hub.notify(execution["id"])

    def log(
        self,
        execution: dict[str, Any],
        task_run: dict[str, Any] | None,
        level: str,
        message: str,
    ) -> None:
        """Store a LogEntry with Kestra's fields and wake log followers."""
        entry: dict[str, Any] = {}
        if self.with_tenant:
            entry["tenantId"] = execution["tenantId"]
        entry.update(namespace=execution["namespace"], flowId=execution["flowId"])
        if task_run is not None:
            entry["taskId"] = task_run["taskId"]
        entry["executionId"] = execution["id"]
        if task_run is not None:
            entry["taskRunId"] = task_run["id"]
        entry["attemptNumber"] = max(len(task_run.get("attempts", [])) - 1, 0) if task_run else None
        timestamp = now_instant(self.log_timestamp_digits)
        entry.update(timestamp=timestamp, level=level, thread="WorkerThread", message=message)
        if execution.get("kind"):
            entry["executionKind"] = execution["kind"]
        self.store.add_log(entry)
        self.hub.notify("logs:" + execution["id"])

    # -- running -----------------------------------------------------------------------------------------
    def flow_of(self, execution: dict[str, Any]) -> KestraSimFlow:
        """The flow revision an execution runs (deleted revisions included)."""
        key = (execution["tenantId"], execution["namespace"], execution["flowId"])
        for item in self.store.flows.get(key, []):
            if item.revision == execution["flowRevision"]:
                return item.flow
        raise LookupError(f"flow revision of execution {execution['id']} vanished")

    async def _run(self, execution_id: str) -> None:
        execution = self.store.executions[execution_id]
        try:
            await self._run_execution(execution, self.flow_of(execution))
        except asyncio.CancelledError:
            if execution_id in self._kill_requested:
                self._finish_kill(execution)
            else:
                raise
        except Exception as exc:  # a simulator bug: fail the execution loudly instead of leaving it RUNNING
            traceback.print_exc(file=sys.stderr)
            message = f"Kestra simulator internal error: {type(exc).__name__}: {exc}"
            self.log(execution, None, "ERROR", message)
            transition(execution["state"], "FAILED")
            self.changed(execution)

    def _finish_kill(self, execution: dict[str, Any]) -> None:
        self._kill_requested.discard(execution["id"])
        for task_run in execution.get("taskRunList", []):
            if task_run["state"]["current"] not in TERMINAL_STATES:
                for attempt in task_run.get("attempts", []):
                    if attempt["state"]["current"] not in TERMINAL_STATES:
                        transition(attempt["state"], "KILLED")
                transition(task_run["state"], "KILLED")
        if execution["state"]["current"] not in TERMINAL_STATES:
            transition(execution["state"], "KILLED")
        self.changed(execution)

    async def _run_execution(self, execution: dict[str, Any], flow: KestraSimFlow) -> None:
        state = execution["state"]
        if state["current"] in ("CREATED", "RESTARTED"):
            await asyncio.sleep(self.start_delay)
            if execution.get("scheduleDate"):
                delay = (
                    parse_instant(execution["scheduleDate"]) - parse_instant(now_instant())
                ).total_seconds()
                if delay > 0:
                    await asyncio.sleep(delay)
            transition(state, "RUNNING")
            self.changed(execution)
        result = await self._run_list(execution, flow, flow.tasks, None)
        if result == "FAILED" and flow.errors:
            await self._run_list(execution, flow, flow.errors, None)
        if flow.finally_tasks:
            await self._run_list(execution, flow, flow.finally_tasks, None)
        if result in ("SUCCESS", "WARNING") and flow.outputs:
            try:
                execution["outputs"] = self._flow_outputs(execution, flow)
            except (KestraPebbleError, ValueError) as exc:
                self.log(execution, None, "ERROR", f"Failed to render output values: {exc}")
                result = "FAILED"
        if not execution.get("outputs"):
            execution.pop("outputs", None)
        transition(state, "SUCCESS" if result == "SKIPPED" else result)
        self.changed(execution)

    def _flow_outputs(self, execution: dict[str, Any], flow: KestraSimFlow) -> dict[str, Any]:
        context = task_context(execution, flow, None, None)
        outputs: dict[str, Any] = {}
        for output in flow.outputs:
            rendered = render_value(output.get("value"), context)
            try:
                outputs[str(output["id"])] = parse_typed_value(str(output.get("type", "STRING")), rendered)
            except ValueError as exc:
                raise ValueError(f"Invalid value for output `{output['id']}`. Cause: {exc}") from None
        return outputs

    async def _run_list(
        self,
        execution: dict[str, Any],
        flow: KestraSimFlow,
        tasks: list[KestraSimTask],
        parent: str | None,
        value: str | None = None,
        iteration: int | None = None,
    ) -> str:
        worst = "SUCCESS"
        for task in tasks:
            await self._hold_if_paused(execution)
            state = await self._run_task(execution, flow, task, parent, value, iteration)
            if _RANK.get(state, 0) > _RANK[worst]:
                worst = state
            if state in ("FAILED", "KILLED"):
                break
        return worst

    def _find_task_run(
        self, execution: dict[str, Any], task_id: str, parent: str | None, value: str | None = None
    ) -> dict[str, Any] | None:
        task_run: dict[str, Any]
        for task_run in execution.get("taskRunList", []):
            if (
                task_run["taskId"] == task_id
                and task_run.get("parentTaskRunId") == parent
                and task_run.get("value") == value
            ):
                return task_run
        return None

    def _new_task_run(
        self,
        execution: dict[str, Any],
        task: KestraSimTask,
        parent: str | None,
        value: str | None = None,
        iteration: int | None = None,
    ) -> dict[str, Any]:
        task_run: dict[str, Any] = {}
        if self.with_tenant:
            task_run["tenantId"] = execution["tenantId"]
        task_run.update(
            id=new_kestra_id(),
            executionId=execution["id"],
            namespace=execution["namespace"],
            flowId=execution["flowId"],
            taskId=task.id,
        )
        if parent is not None:
            task_run["parentTaskRunId"] = parent
        if value is not None:
            task_run["value"] = value
        task_run.update(outputs=None, state=new_state())
        if iteration is not None:
            task_run["iteration"] = iteration
        execution.setdefault("taskRunList", []).append(task_run)
        return task_run

    async def _run_task(
        self,
        execution: dict[str, Any],
        flow: KestraSimFlow,
        task: KestraSimTask,
        parent: str | None,
        value: str | None = None,
        iteration: int | None = None,
    ) -> str:
        if task.properties.get("disabled"):
            return "SUCCESS"
        task_run = self._find_task_run(execution, task.id, parent, value)
        if task_run is not None and task_run["state"]["current"] in TERMINAL_STATES:
            return str(task_run["state"]["current"])
        if task_run is None:
            task_run = self._new_task_run(execution, task, parent, value, iteration)
            self.changed(execution)
        if task.type == F.PAUSE:
            return await self._pause(execution, flow, task, task_run)
        transition(task_run["state"], "RUNNING")
        attempt: dict[str, Any] | None = None
        if task.type in WORKER_TYPES:
            attempt = {"state": new_state(), "workerId": self.worker_id}
            transition(attempt["state"], "RUNNING")
            task_run.setdefault("attempts", []).append(attempt)
        self.changed(execution)
        try:
            if task.type == F.SEQUENTIAL:
                state = await self._run_list(execution, flow, task.children, task_run["id"])
            elif task.type == F.PARALLEL:
                state = await self._parallel(execution, flow, task, task_run["id"])
            elif task.type == F.DAG:
                state = await self._dag(execution, flow, task, task_run["id"])
            elif task.type == F.FOREACH:
                state = await self._for_each(execution, flow, task, task_run)
            elif task.type == F.SUBFLOW:
                state = await self._subflow(execution, flow, task, task_run)
            else:
                await asyncio.sleep(self.task_delay)
                task_run["outputs"] = await run_worker_task(self, execution, flow, task, task_run)
                state = "SUCCESS"
        except (KestraSimTaskFailure, KestraPebbleError) as exc:
            self.log(execution, task_run, "ERROR", str(exc))
            state = "FAILED"
        if state == "FAILED" and task.properties.get("allowFailure"):
            state = "WARNING"
        if attempt is not None:
            transition(attempt["state"], state)
        transition(task_run["state"], state)
        self.changed(execution)
        return state

    async def _parallel(
        self, execution: dict[str, Any], flow: KestraSimFlow, task: KestraSimTask, parent: str
    ) -> str:
        limit = int(task.properties.get("concurrent") or 0) or len(task.children)
        semaphore = asyncio.Semaphore(limit)

        async def one(child: KestraSimTask) -> str:
            async with semaphore:
                return await self._run_task(execution, flow, child, parent)

        results = await asyncio.gather(*(one(child) for child in task.children))
        return max(results, key=lambda s: _RANK.get(s, 0), default="SUCCESS")

    async def _dag(
        self, execution: dict[str, Any], flow: KestraSimFlow, task: KestraSimTask, parent: str
    ) -> str:
        """Run a ``Dag``'s tasks as their dependencies allow (``FlowableUtils#resolveDagNexts``).

        A task starts once every task it ``dependsOn`` is terminal, at most ``concurrent`` at a time (0: no
        limit); after a failure no new task starts and the running ones finish (``onChildFailure: CONTINUE``,
        the default).
        """
        try:
            limit = int(render(str(task.properties.get("concurrent") or 0), self._context(execution, flow)))
        except ValueError:
            limit = 0
        pending = list(task.children)
        running: dict[asyncio.Task[str], str] = {}
        done: set[str] = set()
        worst = "SUCCESS"
        while pending or running:
            if _RANK.get(worst, 0) < _RANK["FAILED"]:
                for child in list(pending):
                    if limit and len(running) >= limit:
                        break
                    if all(dep in done for dep in task.depends_on.get(child.id, [])):
                        pending.remove(child)
                        job = asyncio.ensure_future(self._run_task(execution, flow, child, parent))
                        running[job] = child.id
            if not running:
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for job in finished:
                done.add(running.pop(job))
                state = job.result()
                if _RANK.get(state, 0) > _RANK.get(worst, 0):
                    worst = state
        return worst

    async def _for_each(
        self, execution: dict[str, Any], flow: KestraSimFlow, task: KestraSimTask, task_run: dict[str, Any]
    ) -> str:
        """Run a ``ForEach``'s tasks once per distinct value (``FlowableUtils#resolveEachTasks``): child task
        runs carry ``value`` (a string: JSON text for a non-string value) and ``iteration`` (the value's
        0-based index); ``concurrencyLimit`` value groups run at once (1, the default: one after the other;
        0: all). Inside a group the tasks run one after the other, as in ``Sequential``."""
        values = for_each_values(task.properties.get("values"), task_context(execution, flow, task, task_run))
        try:
            limit = int(task.properties.get("concurrencyLimit", 1))
        except (TypeError, ValueError):
            limit = 1
        if limit == 1:
            worst = "SUCCESS"
            for iteration, value in enumerate(values):
                state = await self._run_list(execution, flow, task.children, task_run["id"], value, iteration)
                if _RANK.get(state, 0) > _RANK[worst]:
                    worst = state
                if state in ("FAILED", "KILLED"):
                    break
            return worst
        semaphore = asyncio.Semaphore(limit if limit > 0 else max(len(values), 1))

        async def group(iteration: int, value: str) -> str:
            async with semaphore:
                return await self._run_list(execution, flow, task.children, task_run["id"], value, iteration)

        results = await asyncio.gather(*(group(i, v) for i, v in enumerate(values)))
        return max(results, key=lambda s: _RANK.get(s, 0), default="SUCCESS")

    async def _subflow(
        self, execution: dict[str, Any], flow: KestraSimFlow, task: KestraSimTask, task_run: dict[str, Any]
    ) -> str:
        """Start an execution of another flow (``ExecutableUtils#subflowExecution``) and, with ``wait``
        (the default), wait for it: outputs ``executionId``, ``state`` and the child's flow ``outputs``, in
        the state ``ExecutableUtils#guessState`` gives (the child's failure with ``transmitFailed``)."""
        props = task.properties
        started = (task_run.get("outputs") or {}).get("executionId")
        child = self.store.executions.get(started) if started else None
        restarted = any(h["state"] == "RESTARTED" for h in task_run["state"]["histories"])
        if child is None or (restarted and child["state"]["current"] in ("FAILED", "KILLED", "WARNING")):
            # A resumed run waits for the child it started; a restarted one runs a failed child again.
            child = self._start_subflow(execution, flow, task, task_run)
        if not java_true(props.get("wait", True)):
            return "SUCCESS"
        await self.wait_until_stopped(child)
        child_state = str(child["state"]["current"])
        outputs: dict[str, Any] = {"executionId": child["id"], "state": child_state}
        if child.get("outputs"):
            outputs["outputs"] = child["outputs"]
        task_run["outputs"] = outputs
        final = "SUCCESS"
        if java_true(props.get("transmitFailed", True)) and child_state in ("FAILED", "KILLED", "WARNING"):
            final = child_state
            if props.get("allowFailure") and child_state == "FAILED":
                final = "WARNING"
            if final == "WARNING" and props.get("allowWarning"):
                final = "SUCCESS"
        if final in ("FAILED", "KILLED"):
            self.log(
                execution,
                task_run,
                "ERROR",
                f'Subflow execution [[link execution="{child["id"]}" flowId="{child["flowId"]}" '
                f'namespace="{child["namespace"]}"]] ends in FAILED state',
            )
        return final

    def _start_subflow(
        self, execution: dict[str, Any], flow: KestraSimFlow, task: KestraSimTask, task_run: dict[str, Any]
    ) -> dict[str, Any]:
        """Create, store and launch the child execution of a ``Subflow`` task run (its id goes to the task
        run's outputs at once, so a resumed run waits for the same child instead of starting another)."""
        context = task_context(execution, flow, task, task_run)
        props = task.properties
        namespace = render(str(props["namespace"]), context)
        flow_id = render(str(props["flowId"]), context)
        revision = int(props["revision"]) if props.get("revision") is not None else None
        item = self.store.flow_revision(execution["tenantId"], namespace, flow_id, revision)
        if item is None:
            raise KestraSimTaskFailure(
                f"Unable to find flow '{namespace}'.'{flow_id}' with revision '{revision or 0}'"
            )
        if item.flow.disabled:
            raise KestraSimTaskFailure("Cannot execute a flow which is disabled")
        labels = (
            list(execution.get("labels", []))
            if java_true(render(str(props.get("inheritLabels", False)), context))
            else [label for label in execution.get("labels", []) if label["key"].startswith("system.")]
        )
        for label in normalize_labels(props.get("labels")):
            labels.append({"key": render(label["key"], context), "value": render(label["value"], context)})
        trigger = {
            "id": task.id,
            "type": task.type,
            "variables": {
                "executionId": execution["id"],
                "namespace": flow.namespace,
                "flowId": flow.id,
                "flowRevision": execution["flowRevision"],
            },
        }
        child = new_execution(item, labels, trigger=trigger)
        raw_inputs = render_value(props.get("inputs") or {}, context)
        parts = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in dict(raw_inputs).items()}
        try:
            inputs = read_execution_inputs(item.flow.inputs, parts, self._refuse_file, {"flow": {
                "id": item.flow.id, "namespace": item.flow.namespace, "revision": item.revision,
            }, "execution": {"id": child["id"]}})  # fmt: skip
        except KestraSimError as exc:
            raise KestraSimTaskFailure(exc.message) from None
        if inputs:
            child["inputs"] = inputs
        self.store.executions[child["id"]] = child
        self.changed(child)
        self.launch(child["id"])
        task_run["outputs"] = {"executionId": child["id"]}
        self.changed(execution)
        return child

    @staticmethod
    def _refuse_file(input_id: str, upload: Any) -> str:
        raise KestraSimTaskFailure(
            f"Input '{input_id}': files cannot be passed to a subflow by the simulator"
        )

    def _context(self, execution: dict[str, Any], flow: KestraSimFlow) -> dict[str, Any]:
        return task_context(execution, flow, None, None)

    async def _pause(
        self, execution: dict[str, Any], flow: KestraSimFlow, task: KestraSimTask, task_run: dict[str, Any]
    ) -> str:
        if task_run["state"]["current"] != "PAUSED" and task_run["state"]["current"] != "RUNNING":
            transition(task_run["state"], "RUNNING")
            transition(task_run["state"], "PAUSED")
            transition(execution["state"], "PAUSED")
            self.changed(execution)
        if task_run["state"]["current"] == "PAUSED":
            delay_text = task.properties.get("pauseDuration") or task.properties.get("delay")
            timeout: float | None = None
            if delay_text:
                paused_at = parse_instant(task_run["state"]["histories"][-1]["date"])
                elapsed = (parse_instant(now_instant()) - paused_at).total_seconds()
                timeout = max(
                    parse_iso_duration(render(str(delay_text), task_context(execution, flow, task, task_run)))
                    - elapsed,
                    0.0,
                )
            event = self._resume[execution["id"]] = asyncio.Event()
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:
                behavior = str(task.properties.get("behavior") or "RESUME").upper()
                transition(task_run["state"], "RUNNING")
                transition(execution["state"], "RUNNING")
                final = {"RESUME": "SUCCESS", "WARN": "WARNING", "FAIL": "FAILED", "CANCEL": "KILLED"}[
                    behavior
                ]
                transition(task_run["state"], final)
                self.changed(execution)
                return final
            finally:
                self._resume.pop(execution["id"], None)
        transition(task_run["state"], "SUCCESS")
        self.changed(execution)
        return "SUCCESS"

    async def wait_until_stopped(self, execution: dict[str, Any], timeout: float | None = None) -> None:
        """Return when the execution and all its task runs are terminal (Kestra's ``isStopFollow``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not is_stop_follow(execution):
            event = self.hub.event(execution["id"])
            if is_stop_follow(execution):
                return
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            await asyncio.wait_for(event.wait(), remaining)


def is_stop_follow(execution: dict[str, Any]) -> bool:
    """Terminal execution whose task runs are all terminal."""
    if execution["state"]["current"] not in TERMINAL_STATES:
        return False
    return all(tr["state"]["current"] in TERMINAL_STATES for tr in execution.get("taskRunList", []))
