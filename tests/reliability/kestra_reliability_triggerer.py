"""Run a trigger the way Airflow 3.3's triggerer does, including the ways a trigger stops early.

``dag.test()`` runs a deferred task's trigger inline and to its end, so it cannot stop it halfway. These
helpers follow ``TriggerRunner.run_trigger``: the trigger's ``run()`` is a task in an event loop; a triggerer
shutdown cancels that task (then ``cleanup()``); a user action (mark failed, clear) cancels it and then
awaits ``on_kill()`` (bounded), then ``cleanup()``. A trigger rebuilt after a shutdown is made from its
``serialize()`` output after a JSON round trip, as it would be stored in the metadata DB.

Airflow 3.3.2 cancels a trigger with the same "user action" message when it was taken away from a triggerer
that stopped heartbeating (fail-over); the trigger tells the two apart by its task instance's state, which it
reads through the triggerer's Task SDK channel. :class:`TaskInstanceStates` stands in for that channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

ON_KILL_TIMEOUT_SECONDS = 30.0
"""``[triggerer] on_kill_timeout`` default."""


async def run_until_event(trigger: Any) -> Any:
    """Run ``trigger`` to its first event (like the triggerer), always calling ``cleanup()``."""
    try:
        async for event in trigger.run():
            return event
        return None
    finally:
        with contextlib.suppress(Exception):
            await trigger.cleanup()


class TaskInstanceStates:
    """The triggerer's Task SDK channel as far as ``on_kill`` uses it: ``GetTaskStates`` answered with one
    task instance's state (``None``: cleared). Installed as ``task_runner.SUPERVISOR_COMMS``."""

    def __init__(self, trigger: Any, state: str | None, *, dag_id: str, run_id: str, task_id: str) -> None:
        from types import SimpleNamespace

        self.state = state
        self.run_id = run_id
        self.task_id = task_id
        self.asked = 0
        trigger.task_instance = SimpleNamespace(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1)

    async def asend(self, msg: Any) -> Any:
        from types import SimpleNamespace

        if type(msg).__name__ != "GetTaskStates":
            return None  # e.g. MaskSecret: nothing to answer
        self.asked += 1
        return SimpleNamespace(task_states={self.run_id: {self.task_id: self.state}})

    @contextlib.contextmanager
    def installed(self) -> Iterator[TaskInstanceStates]:
        from airflow.sdk.execution_time import task_runner

        saved = getattr(task_runner, "SUPERVISOR_COMMS", None)
        task_runner.SUPERVISOR_COMMS = self  # type: ignore[assignment]
        try:
            yield self
        finally:
            task_runner.SUPERVISOR_COMMS = saved  # type: ignore[assignment]


async def stop_trigger_when(
    trigger: Any,
    ready: Callable[[], Awaitable[bool]],
    *,
    user_action: bool,
    timeout: float = 60.0,
    ti_state: TaskInstanceStates | None = None,
) -> None:
    """Run ``trigger`` until ``ready()``, then stop it: Airflow's "user action" cancel and ``on_kill()`` if
    ``user_action`` (what the task instance then shows is ``ti_state``: marked failed, or still deferred
    after a fail-over), else a shutdown.

    Fails if the trigger fired an event before it could be stopped (the scenario would prove nothing).
    """
    task = asyncio.create_task(anext_event(trigger))
    deadline = asyncio.get_running_loop().time() + timeout
    while not await ready():
        if task.done():
            raise AssertionError(f"the trigger ended before it could be stopped: {task.result()!r}")
        if asyncio.get_running_loop().time() > deadline:
            task.cancel()
            raise AssertionError("the scenario never became ready to stop the trigger")
        await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    try:
        if user_action:
            with ti_state.installed() if ti_state is not None else contextlib.nullcontext():
                await asyncio.wait_for(trigger.on_kill(), ON_KILL_TIMEOUT_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            await trigger.cleanup()


async def anext_event(trigger: Any) -> Any:
    """The first event of ``trigger.run()`` (no cleanup: the caller decides how the trigger ends)."""
    async for event in trigger.run():
        return event
    return None


def rebuild_trigger(trigger: Any) -> Any:
    """A new trigger from ``trigger.serialize()`` after a JSON round trip (what a new triggerer loads)."""
    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(kwargs))
    module_name, _, class_name = classpath.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**stored)
