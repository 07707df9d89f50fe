"""Benchmark 2: 1,000 ``KestraExecutionTrigger`` instances waited on at once in one asyncio loop.

Runs as its own process (``run.py`` starts it) so that its CPU time and resident memory belong to the
waiting triggers alone; the simulator is yet another process. Like Airflow's triggerer, every trigger's
``run()`` is a task of one event loop whose single event is consumed, then ``cleanup()`` is awaited.

Phases, all measured with ``time.process_time`` (user+system CPU of this process) and RSS from
``/proc/self/statm``:

1. warm-up: one trigger waits for a short execution, so lazy imports are not charged to the wait;
2. the executions (a ``Sleep`` of ``SLEEP`` seconds) are created with plain ``requests``, not measured;
3. launch: the triggers start; the first ``SETTLE`` seconds are the start-up cost;
4. steady wait: from then until one second before the first execution ends — CPU per minute of waiting
   and RSS growth per trigger are read here;
5. completion: until every event has arrived.

HTTP requests are counted by the simulator's request journal (see ``bench_http_counter.py``). Prints one
JSON line.

The same run with ``MODE`` ``hook-follow`` waits through ``KestraAsyncHook.wait_for_execution`` (the
hook's SSE follow path) instead of the trigger: a reference for what the trigger would cost on that path.

``MODE`` ``operator-defaults`` (issue 12, ``bench_defaults_deferred.py``) runs the trigger exactly as
``KestraTriggerExecutionOperator`` builds it with its defaults (log streaming on, INFO, poll interval 5 s):
the warm-up is a real operator ``execute()`` whose ``TaskDeferred`` gives the trigger's serialized kwargs,
and every measured trigger is rebuilt from them (as the triggerer does) with its own execution id. ``MODE``
``trigger`` is the trigger's constructor defaults (log streaming off). Every mode also reports each
event's lateness (``time.time()`` at the event minus the execution's ``state.endDate``), the log requests
sent while the executions log nothing, and the total event-loop stall.

Usage: ``python bench_deferred_scale.py MODE URL USERNAME PASSWORD CONN_ID COUNT SLEEP SETTLE``
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from bench_http_counter import HttpRequestCounter
from bench_report import BenchRow

if TYPE_CHECKING:
    from bench_server import BenchServer

GOAL_CORE_SHARE = 0.05
GOAL_BYTES_PER_TRIGGER = 100 * 1024

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
FLOW_ID = "scale"
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


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as statm:  # noqa: PTH123 - a /proc file, read once per sample
        return int(statm.read().split()[1]) * _PAGE_SIZE


def _create_executions(url: str, auth: tuple[str, str], count: int, sleep: float) -> list[str]:
    api = f"{url}/api/v1/main"
    with requests.Session() as session:
        session.auth = auth
        response = session.post(
            f"{api}/flows", data=FLOW_SOURCE, headers={"Content-Type": "application/x-yaml"}, timeout=30
        )
        if not response.ok and "exists" not in response.text:
            response.raise_for_status()
        ids = []
        for _ in range(count):
            created = session.post(
                f"{api}/executions/bench/{FLOW_ID}", files={"sleep": (None, f"PT{sleep}S")}, timeout=30
            )
            created.raise_for_status()
            ids.append(str(created.json()["id"]))
        return ids


async def _consume(trigger: Any) -> dict[str, Any]:
    try:
        async for event in trigger.run():
            return dict(event.payload)
        return {"status": "no event"}
    finally:
        await trigger.cleanup()


async def _consume_timed(trigger: Any) -> dict[str, Any]:
    event = await _consume(trigger)
    event["_received"] = time.time()
    return event


#: Mode ``operator-defaults``: the trigger class path and kwargs the operator deferred with (set by warm-up).
_OPERATOR_TRIGGER: dict[str, Any] = {}


def _operator_defaults_trigger(conn_id: str, url: str, auth: tuple[str, str]) -> Any:
    """The trigger a ``KestraTriggerExecutionOperator`` with its defaults defers with (deferrable=True)."""
    from airflow.exceptions import TaskDeferred
    from bench_log_relay import fake_context

    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    _create_executions(url, auth, 0, 0.0)  # deploys the flow
    operator = KestraTriggerExecutionOperator(
        task_id="scale",
        namespace="bench",
        flow_id=FLOW_ID,
        inputs={"sleep": "PT2S"},
        deferrable=True,
        kestra_conn_id=conn_id,
    )
    try:
        operator.execute(fake_context("scale"))  # type: ignore[arg-type]
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        _OPERATOR_TRIGGER.update(classpath=classpath, kwargs=kwargs)
        return deferred.trigger
    raise RuntimeError("the operator did not defer")


class HttpxStreamWaiter:
    """Reference floor (mode ``httpx-stream``): the execution's follow stream read with plain httpx, no
    provider code; clients shared by as many waiters as the provider shares one (``HOOKS_PER_CLIENT``).
    What any waiter holding one httpx SSE stream per execution costs the loop and its heap at the least."""

    clients: list[Any] = []
    url = ""
    auth: tuple[str, str] = ("", "")
    made = 0

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.index = HttpxStreamWaiter.made
        HttpxStreamWaiter.made += 1

    def _client(self) -> Any:
        import httpx

        from airflow_provider_kestra.hooks.kestra_clients import HOOKS_PER_CLIENT

        shard = self.index // HOOKS_PER_CLIENT
        while len(HttpxStreamWaiter.clients) <= shard:
            HttpxStreamWaiter.clients.append(
                httpx.AsyncClient(
                    auth=self.auth,
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
                    timeout=httpx.Timeout(30.0, read=None),
                )
            )
        return HttpxStreamWaiter.clients[shard]

    async def run(self) -> Any:
        """Yield one event-like object once Kestra ends the stream (the execution ended)."""
        from bench_detection_latency import ReferenceEvent

        path = f"{self.url}/api/v1/main/executions/{self.execution_id}/follow"
        async with self._client().stream("GET", path) as response:
            async for _chunk in response.aiter_bytes():
                pass
        yield ReferenceEvent({"status": "success", "message": "stream ended"})

    async def cleanup(self) -> None:
        """Nothing per waiter: the shared clients live as long as the measure."""


def _make_waiter(mode: str, conn_id: str, execution_id: str) -> Any:
    """A ``KestraExecutionTrigger`` (mode ``trigger``: constructor defaults; ``operator-defaults``: as the
    operator defers with its defaults), the hook's SSE follow path (``hook-follow``), or plain httpx
    (``httpx-stream``, :class:`HttpxStreamWaiter`)."""
    if mode == "httpx-stream":
        return HttpxStreamWaiter(execution_id)
    if mode == "hook-follow":
        from bench_detection_latency import HookFollowWaiter

        return HookFollowWaiter(conn_id, execution_id)
    if mode == "operator-defaults":
        from bench_log_relay import import_string

        kwargs = {**_OPERATOR_TRIGGER["kwargs"], "execution_id": execution_id, "log_cursor": None}
        return import_string(_OPERATOR_TRIGGER["classpath"])(**kwargs)
    from airflow_provider_kestra.triggers.kestra import KestraExecutionTrigger

    return KestraExecutionTrigger(kestra_conn_id=conn_id, execution_id=execution_id)


class LoopLagMonitor:
    """The longest time the event loop was late waking a 50 ms ticker (a trigger blocking the loop), and
    how much of the time went to CPython's cyclic garbage collector (``gc.callbacks``), per phase."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.total = 0.0
        self.gc_seconds = 0.0
        self.gc_full = 0
        self.gc_worst = 0.0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._tick())

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started
        self.gc_seconds += took
        self.gc_worst = max(self.gc_worst, took)
        self.gc_full += info.get("generation") == 2

    def take_gc(self) -> dict[str, float]:
        """Collector time, full (generation-2) collections and the longest collection since the last call."""
        taken = {"seconds": self.gc_seconds, "full": self.gc_full, "worst": self.gc_worst}
        self.gc_seconds, self.gc_full, self.gc_worst = 0.0, 0, 0.0
        return taken

    async def _tick(self) -> None:
        while True:
            expected = time.monotonic() + 0.05
            await asyncio.sleep(0.05)
            late = time.monotonic() - expected
            self.worst = max(self.worst, late)
            self.total += late if late > 0.005 else 0.0

    def take(self) -> float:
        """The worst lag since the previous call."""
        worst, self.worst = self.worst, 0.0
        return worst

    def take_total(self) -> float:
        """The summed lateness (ticks more than 5 ms late) since the previous call."""
        total, self.total = self.total, 0.0
        return total

    def stop(self) -> None:
        self._task.cancel()
        gc.callbacks.remove(self._on_gc)


def _phase(
    wall_from: float, wall_to: float, cpu_from: float, cpu_to: float, lag: float, stall: float = 0.0
) -> dict[str, float]:
    return {"seconds": wall_to - wall_from, "cpu": cpu_to - cpu_from, "lag": lag, "stall": stall}


LOG_PATHS = r"/logs/"


async def _measure(
    mode: str, conn_id: str, ids: list[str], first_end: float, settle: float, counter: HttpRequestCounter
) -> dict[str, Any]:
    gc.collect()
    lag = LoopLagMonitor()
    rss_before, cpu_launch, wall_launch = rss_bytes(), time.process_time(), time.monotonic()
    requests_before, reads_before = counter.total, counter.execution_reads
    tasks = []
    for eid in ids:
        # As Airflow 3.3's TriggerRunner.create_triggers (airflow/jobs/triggerer_job_runner.py): it yields
        # to the loop before each trigger it builds, so the loop serves the running ones meanwhile.
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(_consume_timed(_make_waiter(mode, conn_id, eid))))
    # Start-up ends once every trigger has asked about its execution, plus ``settle`` seconds. The journal
    # is read in a thread: a blocking request on this loop would be counted as the triggers' stall.
    while await asyncio.to_thread(lambda: counter.execution_reads) - reads_before < len(ids):
        if time.time() >= first_end - 2:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(settle)
    cpu_settled, wall_settled = time.process_time(), time.monotonic()
    requests_settled, lag_startup, stall_startup = counter.total, lag.take(), lag.take_total()
    gc_startup = lag.take_gc()
    logs_settled = counter._count(LOG_PATHS)
    window = first_end - 1.0 - time.time()
    rss_waiting, logs_halfway, halfway = rss_bytes(), logs_settled, time.monotonic()
    if window > 0:
        await asyncio.sleep(window / 2)
        rss_waiting, logs_halfway, halfway = rss_bytes(), counter._count(LOG_PATHS), time.monotonic()
        await asyncio.sleep(window / 2)
    cpu_waited, wall_waited = time.process_time(), time.monotonic()
    requests_waited, lag_waiting, stall_waiting = counter.total, lag.take(), lag.take_total()
    gc_waiting = lag.take_gc()
    logs_waited = counter._count(LOG_PATHS)
    events = await asyncio.gather(*tasks)
    cpu_done, wall_done = time.process_time(), time.monotonic()
    gc_completion = lag.take_gc()
    lag.stop()
    return {
        "count": len(ids),
        "statuses": dict(Counter(str(event.get("status")) for event in events)),
        "startup": _phase(wall_launch, wall_settled, cpu_launch, cpu_settled, lag_startup, stall_startup),
        "waiting": _phase(wall_settled, wall_waited, cpu_settled, cpu_waited, lag_waiting, stall_waiting),
        "completion": _phase(wall_waited, wall_done, cpu_waited, cpu_done, lag.take(), lag.take_total()),
        "received": {eid: event.get("_received") for eid, event in zip(ids, events, strict=True)},
        "gc": {"startup": gc_startup, "waiting": gc_waiting, "completion": gc_completion},
        "rss_before": rss_before,
        "rss_waiting": rss_waiting,
        "requests": {
            "startup": requests_settled - requests_before,
            "waiting": requests_waited - requests_settled,
            "total": counter.total - requests_before,
            "logs_waiting": logs_waited - logs_settled,
            "logs_first_half": logs_halfway - logs_settled,
            "logs_second_half": logs_waited - logs_halfway,
        },
        "second_half_seconds": wall_waited - halfway,
    }


def _lateness(url: str, auth: tuple[str, str], received: dict[str, float | None]) -> list[float]:
    """Seconds from each execution's ``state.endDate`` to its event (sorted); read after the measure."""
    from bench_server import parse_instant

    late = []
    with requests.Session() as session:
        session.auth = auth
        for execution_id, at in received.items():
            answer = session.get(f"{url}/api/v1/main/executions/{execution_id}", timeout=30)
            end = answer.json()["state"].get("endDate") if answer.ok else None
            if at is not None and end:
                late.append(at - parse_instant(end))
    return sorted(late)


def main(argv: list[str]) -> int:
    """Run the phases described in the module docstring and print the JSON report."""
    mode, url, username, password, conn_id, count, sleep, settle = argv
    auth = (username, password)
    counter = HttpRequestCounter(url).start()
    if mode == "operator-defaults":
        asyncio.run(_consume(_operator_defaults_trigger(conn_id, url, auth)))
    elif mode == "httpx-stream":
        HttpxStreamWaiter.url, HttpxStreamWaiter.auth = url, auth
        _create_executions(url, auth, 0, 0.0)  # deploys the flow
    else:
        warm_up = _create_executions(url, auth, 1, 0.2)
        asyncio.run(_consume(_make_waiter(mode, conn_id, warm_up[0])))
    created_at = time.time()
    ids = _create_executions(url, auth, int(count), float(sleep))
    create_seconds = time.time() - created_at
    report = asyncio.run(_measure(mode, conn_id, ids, created_at + float(sleep), float(settle), counter))
    report["create_seconds"] = create_seconds
    report["lateness"] = _lateness(url, auth, report.pop("received"))
    print(json.dumps(report))
    return 0


def scale_rows(report: dict[str, Any], variant: str, judged: bool) -> list[BenchRow]:
    """Table rows for one report printed by :func:`main`; ``judged`` rows carry the goals."""
    count = int(report["count"])
    startup, waiting, completion = report["startup"], report["waiting"], report["completion"]
    phases = (startup, waiting, completion)
    total_cpu, total_seconds = sum(p["cpu"] for p in phases), sum(p["seconds"] for p in phases)
    rss_before, rss_waiting = report["rss_before"] / 2**20, report["rss_waiting"] / 2**20
    per_trigger = (report["rss_waiting"] - report["rss_before"]) / count
    made = report["requests"]
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report["statuses"].items()))
    bench = "2. Deferred waits at scale"
    startup_note = (
        f"start-up (until every trigger had read its execution once) {startup['cpu']:.1f} CPU-s in "
        f"{startup['seconds']:.0f} s, worst event-loop stall {startup['lag'] * 1000:.0f} ms"
    )
    if waiting["seconds"] >= 5.0:
        share = waiting["cpu"] / waiting["seconds"]
        waiting_row = BenchRow(
            bench,
            variant,
            "CPU while waiting",
            f"{share * 60:.2f} CPU-s/min ({share:.1%} of one core)",
            goal="< 5% of one core" if judged else "",
            met=share < GOAL_CORE_SHARE if judged else None,
            note=(
                f"steady window {waiting['seconds']:.0f} s, worst event-loop stall "
                f"{waiting['lag'] * 1000:.0f} ms; events: {statuses}"
            ),
        )
        per_minute = made["waiting"] / waiting["seconds"] / count * 60
        waiting_rate = f"{per_minute:.1f}/min per execution while waiting"
    else:
        waiting_row = BenchRow(
            bench,
            variant,
            "CPU while waiting",
            "not measured",
            goal="< 5% of one core" if judged else "",
            met=False if judged else None,
            note=f"start-up outlasted the executions' sleep: no steady window left; events: {statuses}",
        )
        waiting_rate = "no steady window"
    return [
        waiting_row,
        BenchRow(
            bench,
            variant,
            "CPU over the whole wait",
            f"{total_cpu / total_seconds * 60:.2f} CPU-s/min ({total_cpu / total_seconds:.1%} of one core)",
            note=(
                f"{startup_note}; completion {completion['cpu']:.1f} CPU-s in {completion['seconds']:.1f} s; "
                f"launch to last event {total_seconds:.0f} s (creating the {count} executions before: "
                f"{report['create_seconds']:.0f} s, not counted)"
            ),
        ),
        BenchRow(
            bench,
            variant,
            "memory per waiting trigger",
            f"{per_trigger / 1024:.0f} KB",
            goal="< 100 KB" if judged else "",
            met=per_trigger < GOAL_BYTES_PER_TRIGGER if judged else None,
            note=f"RSS delta / {count}: {rss_before:.0f} -> {rss_waiting:.0f} MiB",
        ),
        BenchRow(
            bench,
            variant,
            "HTTP requests per execution",
            f"{made['total'] / count:.1f}",
            note=(
                f"{made['startup'] / count:.1f} during start-up, {waiting_rate} "
                "(counted by the simulator's request journal)"
            ),
        ),
    ]


def deferred_scale_report(
    server: BenchServer, conn_id: str, count: int, sleep: float, settle: float, mode: str = "trigger"
) -> dict[str, Any]:
    """Run :func:`main` in a fresh interpreter and return its JSON report (raises with stderr's last line)."""
    args = [mode, server.url, server.username, server.password, conn_id, str(count), str(sleep), str(settle)]
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), *args],
        capture_output=True,
        text=True,
        timeout=sleep * 3 + 180 + count / 20,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit {done.returncode}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def run_deferred_scale(
    server: BenchServer, conn_id: str, count: int, sleep: float, settle: float, mode: str = "trigger"
) -> list[BenchRow]:
    """Run :func:`main` in a fresh interpreter and turn its report into table rows."""
    if mode == "trigger":
        variant, judged = f"{count} KestraExecutionTriggers, one loop", True
    else:
        variant = f"reference: {count} KestraAsyncHook.wait_for_execution (SSE follow), one loop"
        judged = False
    try:
        report = deferred_scale_report(server, conn_id, count, sleep, settle, mode)
    except RuntimeError as err:
        return [BenchRow("2. Deferred waits at scale", variant, "all", "n/a", note=str(err))]
    return scale_rows(report, variant, judged)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
