"""Benchmark 1: time from an execution reaching its terminal state to the trigger's ``TriggerEvent``.

The executions run a short ``Sleep`` of staggered length, so they end one after another while every
trigger is already waiting. The terminal instant is the simulator's own ``state.endDate`` (set by its
engine with nanosecond resolution when the state changes, same machine and clock as the client); the event
instant is ``time.time()`` when the trigger's ``run()`` yields its event. Each trigger runs as a task of one
asyncio loop, as in Airflow's triggerer. Both variants run one after the other in the same process:

* follow: the trigger as the operator builds it (SSE follow, polling only when the stream fails);
* reference: ``KestraAsyncHook.wait_for_execution`` alone (the hook's SSE follow path), to tell the
  trigger's own share of the latency from the follow path's;
* polling fallback: the same trigger while the simulator answers every ``/follow`` with 404 (what a proxy
  that does not pass SSE, or a server without the endpoint, looks like), so it polls at its default
  interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bench_http_counter import HttpRequestCounter
from bench_report import BenchRow, percentile

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from bench_server import BenchServer

GOAL_FOLLOW_P50_SECONDS = 0.050
FLOW_ID = "latency"
FLOW_SOURCE = f"""id: {FLOW_ID}
namespace: bench
inputs:
  - id: sleep
    type: STRING
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: "{{{{ inputs.sleep }}}}"
"""


class ExecutionWaiter(Protocol):
    """What the harness drives: a trigger (``run()`` yields one event, ``cleanup()``), or the reference."""

    def run(self) -> AsyncIterator[Any]: ...

    async def cleanup(self) -> None: ...


@dataclass(frozen=True)
class ReferenceEvent:
    """Has the ``payload`` a ``TriggerEvent`` has."""

    payload: dict[str, Any]


class HookFollowWaiter:
    """Reference for the follow path: ``KestraAsyncHook.wait_for_execution`` (SSE first) on its own.

    Shows what the trigger would detect if it waited through the hook's follow path.
    """

    def __init__(self, conn_id: str, execution_id: str) -> None:
        from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

        self.execution_id = execution_id
        self.hook = KestraAsyncHook(conn_id)

    async def run(self) -> AsyncIterator[Any]:
        """Yield one event-like object once the hook returns the terminal execution."""
        execution = await self.hook.wait_for_execution(self.execution_id)
        state = execution["state"]["current"]
        yield ReferenceEvent({"status": "success" if state == "SUCCESS" else "failed", "message": state})

    async def cleanup(self) -> None:
        """Close the hook's client."""
        await self.hook.aclose()


async def _wait_for_event(trigger: ExecutionWaiter) -> tuple[float, dict[str, Any]]:
    async for event in trigger.run():
        received = time.time()
        return received, dict(event.payload)
    raise RuntimeError("the trigger ended without an event")


async def _run_triggers(triggers: list[ExecutionWaiter]) -> list[tuple[float, dict[str, Any]]]:
    tasks = [asyncio.create_task(_wait_for_event(trigger)) for trigger in triggers]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for trigger in triggers:
            await trigger.cleanup()


def measure_latencies(
    server: BenchServer,
    make_trigger: Callable[[str], ExecutionWaiter],
    count: int,
    base_sleep: float,
    spread: float,
    flow_id: str = FLOW_ID,
) -> tuple[list[float], list[str]]:
    """Latencies (seconds) of ``count`` executions, and the non-success event messages seen."""
    execution_ids = []
    for index in range(count):
        seconds = base_sleep + spread * index / max(count - 1, 1)
        execution_ids.append(server.create_execution(flow_id, {"sleep": f"PT{seconds:.3f}S"}))
    triggers = [make_trigger(execution_id) for execution_id in execution_ids]
    results = asyncio.run(_run_triggers(triggers))
    latencies, problems = [], []
    for execution_id, (received, payload) in zip(execution_ids, results, strict=True):
        if payload.get("status") != "success":
            problems.append(f"{execution_id}: {payload.get('status')} {payload.get('message')}")
            continue
        latencies.append(received - server.terminal_time(execution_id))
    return latencies, problems


def latency_row(
    variant: str, latencies: list[float], problems: list[str], count: int, goal: bool
) -> BenchRow:
    """One table row: p50/p95 of ``latencies``; the follow variant carries the goal."""
    if not latencies:
        return BenchRow(
            "1. Detection latency", variant, "terminal -> TriggerEvent", "n/a", note="; ".join(problems[:3])
        )
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    low, high = min(latencies) * 1000, max(latencies) * 1000
    note = f"n={len(latencies)} of {count}; min {low:.1f} ms, max {high:.1f} ms"
    if problems:
        note += f"; {len(problems)} without a success event, e.g. {problems[0]}"
    return BenchRow(
        "1. Detection latency",
        variant,
        "terminal -> TriggerEvent p50 / p95",
        f"{p50 * 1000:.1f} ms / {p95 * 1000:.1f} ms",
        goal="p50 < 50 ms" if goal else "",
        met=(p50 < GOAL_FOLLOW_P50_SECONDS) if goal else None,
        note=note,
    )


def run_detection_latency(server: BenchServer, conn_id: str, count: int) -> list[BenchRow]:
    """Both variants, ``count`` executions each; executions end 2-3.5 s after creation, staggered."""
    from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger

    def make_trigger(execution_id: str) -> ExecutionWaiter:
        trigger: ExecutionWaiter = KestraExecutionTrigger(kestra_conn_id=conn_id, execution_id=execution_id)
        return trigger

    def make_reference(execution_id: str) -> ExecutionWaiter:
        return HookFollowWaiter(conn_id, execution_id)

    server.deploy_flow(FLOW_SOURCE, FLOW_ID)
    default_interval = KestraExecutionTrigger(kestra_conn_id=conn_id, execution_id="x").poll_interval
    counter = HttpRequestCounter(server.url, server.session).start()
    latencies, problems = measure_latencies(server, make_trigger, count, base_sleep=2.0, spread=1.5)
    follows = counter.follows
    reference, reference_problems = measure_latencies(
        server, make_reference, count, base_sleep=2.0, spread=1.5
    )
    server.add_fault(kind="error", status=404, path="/follow$")
    try:
        fallback, fallback_problems = measure_latencies(
            server, make_trigger, count, base_sleep=2.0, spread=1.5
        )
    finally:
        server.clear_faults()
    variant = "SSE follow (trigger defaults)"
    if follows == 0:
        variant = "trigger defaults: NO SSE follow request was made (the trigger only polls)"
    return [
        latency_row(variant, latencies, problems, count, goal=True),
        latency_row(
            "reference: KestraAsyncHook.wait_for_execution (SSE follow) without the trigger",
            reference,
            reference_problems,
            count,
            goal=False,
        ),
        latency_row(
            f"polling fallback (/follow answers 404; poll_interval {default_interval:g} s)",
            fallback,
            fallback_problems,
            count,
            goal=False,
        ),
    ]


# ------------------------------------------------------------------------------ issue 12, goal 6
SELECT_ISSUE12 = {12, 126}
LOGGING_FLOW_ID = "latencylogs"
LOGGING_FLOW_SOURCE = f"""id: {LOGGING_FLOW_ID}
namespace: bench
inputs:
  - id: sleep
    type: STRING
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message:
      - "starting"
      - "working for {{{{ inputs.sleep }}}}"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: "{{{{ inputs.sleep }}}}"
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message: "done"
"""


def run_detection_latency_with_logs(server: BenchServer, conn_id: str, count: int) -> list[BenchRow]:
    """Goal 6: the trigger as the operator defers with its defaults (log relay on), on a flow that logs
    three lines around a staggered ``Sleep``; latency to the execution's ``endDate`` as benchmark 1."""
    from bench_log_relay import import_string
    from bench_startup_stall import TRIGGER_CLASS, operator_default_kwargs

    trigger_class = import_string(
        TRIGGER_CLASS
    )  # before the executions start: importing Airflow takes seconds

    def make_trigger(execution_id: str) -> ExecutionWaiter:
        trigger: ExecutionWaiter = trigger_class(**operator_default_kwargs(conn_id, execution_id))
        return trigger

    server.deploy_flow(LOGGING_FLOW_SOURCE, LOGGING_FLOW_ID)
    latencies, problems = measure_latencies(
        server, make_trigger, count, base_sleep=2.0, spread=1.5, flow_id=LOGGING_FLOW_ID
    )
    row = latency_row(
        "trigger as the operator defers with defaults (stream_logs=True, INFO, 5 s), flow logs 3 lines",
        latencies,
        problems,
        count,
        goal=True,
    )
    return [dataclasses.replace(row, benchmark="12.6 Detection latency, log relay on")]


def _rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """``run.py``'s hook for issue 12 goal 6 (``--only 12`` or ``126``): 30 executions (10 with --quick)."""
    if not selected & SELECT_ISSUE12:
        return []
    from bench_server import ISSUE12_CONN_ID, issue12_simulator

    print("12.6 Detection latency with the log relay on ...", flush=True)
    with issue12_simulator(workdir, "latency-logs") as server:
        return run_detection_latency_with_logs(server, ISSUE12_CONN_ID, 10 if quick else 30)


def rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """:func:`_rows_if_selected` with the load average at its start and end in every note."""
    from bench_machine import load_average
    from bench_report import with_load

    start = load_average()
    rows = _rows_if_selected(selected, workdir, quick)
    return with_load(rows, start, load_average()) if rows else rows
