"""Run a trigger the way Airflow 3.3's triggerer does, including the ways a trigger stops early.

``dag.test()`` runs a deferred task's trigger inline and to its end, so it cannot stop it halfway. These
helpers follow ``TriggerRunner.run_trigger``: the trigger's ``run()`` is a task in an event loop; a triggerer
shutdown cancels that task (then ``cleanup()``); a user action (mark failed, clear) cancels it and then
awaits ``on_kill()`` (bounded), then ``cleanup()``. A trigger rebuilt after a shutdown is made from its
``serialize()`` output after a JSON round trip, as it would be stored in the metadata DB.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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


async def stop_trigger_when(
    trigger: Any, ready: Callable[[], Awaitable[bool]], *, user_action: bool, timeout: float = 60.0
) -> None:
    """Run ``trigger`` until ``ready()``, then stop it: a user kill if ``user_action``, else a shutdown.

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
