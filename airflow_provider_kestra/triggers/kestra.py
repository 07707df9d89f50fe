"""Deferrable waiting on a Kestra execution in the triggerer, so no worker slot is held.

The execution is followed through Kestra's event stream, with polling as the fallback (the hook's
``wait_for_execution``, shared with the sync path and the sensor).

The trigger watches one execution (by id), or the newest execution of a flow matching labels and a start
time (the sensor's cross-orchestrator dependency). It fires exactly one :class:`TriggerEvent` per outcome::

    {"status": "success" | "failed" | "timeout" | "error",
     "execution_id": str | None, "state": str | None, "message": str, "log_cursor": <JSON> | None}

The operator and the sensor map every status explicitly and fail on any other value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_kestra.exceptions import KestraWaitTimeout
from airflow_provider_kestra.utils.state import TERMINAL_STATES, state_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence

    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
    from airflow_provider_kestra.utils.models import KestraExecution, KestraLogEntry

KILL_TIMEOUT_SECONDS = 20.0
"""How long an ``on_kill`` (the trigger's, or the operator's) may spend asking Kestra to kill the execution
before letting the task die anyway."""

EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})
"""Every ``status`` a :class:`KestraExecutionTrigger` event can carry."""

_LOG_LEVELS = {"ERROR": logging.ERROR, "WARN": logging.WARNING, "WARNING": logging.WARNING}


def failure_states_for(success_states: Iterable[str], failure_states: Iterable[str] | None) -> frozenset[str]:
    """The states that end the wait as a failure: by default every terminal state that is not a success."""
    if failure_states is not None:
        return frozenset(s.upper() for s in failure_states)
    return TERMINAL_STATES - {s.upper() for s in success_states}


def log_kestra_entries(logger: logging.Logger | Any, entries: Iterable[KestraLogEntry]) -> None:
    """Write Kestra log lines into an Airflow log, each tagged with the Kestra task id that produced it.

    ERROR and WARN keep their level; every other line logs at INFO so a DEBUG/TRACE selection is visible.
    """
    for entry in entries:
        task_id = entry.get("taskId") or entry.get("triggerId") or "execution"
        level = _LOG_LEVELS.get(str(entry.get("level", "")).upper(), logging.INFO)
        logger.log(level, "[kestra:%s] %s", task_id, entry.get("message", ""))


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
        searching), and between two log reads.
    :param deadline: Wall-clock epoch seconds (``time.time()``) after which a ``timeout`` event fires;
        ``None`` waits forever. Wall-clock, so it means the same thing in every triggerer process.
    :param hook_params: Keyword arguments for :class:`~airflow_provider_kestra.hooks.kestra.KestraAsyncHook`.
    :param stream_logs: Write the execution's Kestra logs into the task log while waiting.
    :param log_level: Lowest Kestra log level to stream.
    :param log_cursor: Where log streaming resumes (from the hook's ``get_logs``), so no line shows twice.
    :param cancel_on_kill: Kill the Kestra execution when a user kills the deferred task (Airflow 3.3+).
        The operator that started the execution sets it; a sensor that only watches does not.
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
        log_cursor: Any = None,
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
        self.success_states = [s.upper() for s in success_states]
        self.failure_states = None if failure_states is None else [s.upper() for s in failure_states]
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.hook_params = dict(hook_params or {})
        self.stream_logs = stream_logs
        self.log_level = log_level
        self.log_cursor = log_cursor
        self.cancel_on_kill = cancel_on_kill
        self._hook: KestraAsyncHook | None = None

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
                "success_states": list(self.success_states),
                "failure_states": None if self.failure_states is None else list(self.failure_states),
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
        """Poll until an outcome is known, then yield its single event."""
        try:
            event = await self._watch()
        except asyncio.CancelledError:
            raise  # the client stays open for on_kill(); cleanup() closes it
        except Exception as err:
            self.log.exception("Waiting for the Kestra execution failed")
            event = self._event("error", None, f"Could not follow the Kestra execution: {err}")
        await self._close_hook()
        yield TriggerEvent(event)

    async def _watch(self) -> dict[str, Any]:
        failure = failure_states_for(self.success_states, self.failure_states)
        ends = failure | set(self.success_states)
        if self.namespace is None:
            execution_id = str(self.execution_id)
        else:
            found = await self._search_until_found()
            if found is None:
                return self._event("timeout", None, self._timeout_message(None))
            execution_id = found["id"]
            if state_of(found) in ends:
                return await self._outcome(found, failure)
        seen: list[KestraExecution] = []
        try:
            execution = await self._follow(execution_id, ends, seen)
        except KestraWaitTimeout:
            last = seen[-1] if seen else None
            if last is not None and self.stream_logs:
                await self._relay_logs(execution_id)
            return self._event("timeout", last, self._timeout_message(last, execution_id))
        return await self._outcome(execution, failure)

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

    async def _follow(
        self, execution_id: str, ends: frozenset[str], seen: list[KestraExecution]
    ) -> KestraExecution:
        """Wait (event stream, polling as fallback) until the state is in ``ends``, relaying logs meanwhile.

        Each new state is appended to ``seen``; raises :class:`KestraWaitTimeout` past the deadline.
        """
        relay = (
            asyncio.ensure_future(self._relay_logs_until_cancelled(execution_id))
            if self.stream_logs
            else None
        )
        try:
            return await self._get_hook().wait_for_execution(
                execution_id,
                deadline=self.deadline,
                poll_interval=self.poll_interval,
                on_update=seen.append,
                until=lambda execution: state_of(execution) in ends,
            )
        finally:
            if relay is not None:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay

    async def _outcome(self, execution: KestraExecution, failure: frozenset[str]) -> dict[str, Any]:
        """The success or failure event of an execution whose state ended the wait, after a last log relay."""
        execution_id, state = execution["id"], state_of(execution)
        if self.stream_logs:
            await self._relay_logs(execution_id)
        if state in failure:
            return self._event("failed", execution, f"Kestra execution {execution_id} ended in {state}")
        return self._event("success", execution, f"Kestra execution {execution_id} is {state}")

    async def _relay_logs_until_cancelled(self, execution_id: str) -> None:
        while True:
            await self._relay_logs(execution_id)
            await asyncio.sleep(self.poll_interval)

    async def _relay_logs(self, execution_id: str) -> None:
        """Copy new Kestra log lines into the task log; a failure here never ends the wait."""
        from airflow_provider_kestra.utils.logs import KestraLogSelection

        # Line by line as Kestra sends them: the whole log may be far bigger than the triggerer should hold.
        try:
            selection = KestraLogSelection(self.log_level, self.log_cursor)
        except (AttributeError, TypeError, ValueError) as err:
            self.log.warning("Not reading Kestra logs: unusable log cursor %r: %s", self.log_cursor, err)
            return
        try:
            async with contextlib.aclosing(self._get_hook().iter_logs(execution_id, selection)) as entries:
                async for entry in entries:
                    log_kestra_entries(self.log, [entry])
        except Exception as err:
            self.log.warning("Could not read the logs of Kestra execution %s: %s", execution_id, err)
        finally:
            self.log_cursor = selection.cursor  # also after an error: it covers the lines printed

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

    def _event(self, status: str, execution: KestraExecution | None, message: str) -> dict[str, Any]:
        return {
            "status": status,
            "execution_id": execution["id"] if execution is not None else self.execution_id,
            "state": state_of(execution) if execution is not None else None,
            "message": message,
            "log_cursor": self.log_cursor,
        }

    async def on_kill(self) -> None:
        """Kill the Kestra execution (best effort, bounded) when a user kills the deferred task (AF 3.3+)."""
        if not self.cancel_on_kill or not self.execution_id:
            return
        try:
            await asyncio.wait_for(self._get_hook().kill_execution(self.execution_id), KILL_TIMEOUT_SECONDS)
            self.log.info("Asked Kestra to kill execution %s", self.execution_id)
        except Exception:
            self.log.warning("Could not kill Kestra execution %s", self.execution_id, exc_info=True)

    async def cleanup(self) -> None:
        """Close the trigger's HTTP client, however the trigger ended."""
        await self._close_hook()
