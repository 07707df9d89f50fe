"""Benchmark 5: 100 ``KestraExecutionEventTrigger`` watchers in one event loop, shared vs standalone.

100 watchers (one per flow: 100 flows of one namespace, as 100 DAGs each scheduled on "my flow
succeeded") poll one simulator every ``POLL`` seconds for ``WINDOW`` seconds while the parent process
starts ``EXECUTIONS`` executions spread over the flows. Two variants, each in its own interpreter so its
CPU time belongs to the watchers alone (the simulator is a third process):

* ``shared``: through Airflow 3.3's own ``SharedStreamManager``, as the triggerer runs watchers whose
  ``shared_stream_key()`` is equal: one search loop, each watcher's ``filter_shared_stream``;
* ``standalone``: each watcher's ``run()`` (what Airflow 3.0-3.2 does, or a trigger without sharing).

Requests are counted at ``httpx.AsyncClient.send`` (``bench_http_counter.py``; the simulator has no request
journal), CPU with ``time.process_time()`` over the window, after a warm-up. Every event is checked: each
execution must fire exactly one event, for the one watcher of its flow.

Usage: ``python bench/bench_event_watchers.py [--write]`` (``--write`` appends a section to results.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

WATCHERS = 100
POLL = 5.0
WARM_UP = 6.0
WINDOW = 60.0
EXECUTIONS = 20
FLOW = """id: {flow_id}
namespace: bench.events
tasks:
  - id: done
    type: io.kestra.plugin.core.output.OutputValues
    values:
      flow: "{flow_id}"
outputs:
  - id: flow
    type: STRING
    value: "{{{{ outputs.done.values.flow }}}}"
"""


def flow_id(index: int) -> str:
    return f"flow_{index:03d}"


async def child(mode: str) -> dict[str, Any]:
    """Run the watchers for WARM_UP + WINDOW seconds; report requests, CPU and events of the window."""
    import httpx

    from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger

    counts = {"total": 0, "searches": 0}
    original_send = httpx.AsyncClient.send

    async def counting_send(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        counts["total"] += 1
        counts["searches"] += request.url.path.endswith("/executions/search")
        return await original_send(client, request, **kwargs)

    httpx.AsyncClient.send = counting_send  # type: ignore[method-assign]
    triggers = [
        KestraExecutionEventTrigger(
            namespace="bench.events", flow_id=flow_id(i), kestra_conn_id="kestra_bench", poll_interval=POLL
        )
        for i in range(WATCHERS)
    ]
    events: list[tuple[int, dict[str, Any]]] = []
    manager = None
    if mode == "shared":
        from airflow.triggers.shared_stream import SharedStreamManager

        manager = SharedStreamManager()
        streams = [
            t.filter_shared_stream(manager.subscribe(trigger_id=i, trigger=t, key=t.shared_stream_key()))
            for i, t in enumerate(triggers)
        ]
    else:
        streams = [t.run() for t in triggers]

    async def collect(index: int, stream: Any) -> None:
        async for event in stream:
            events.append((index, event.payload))

    tasks = [asyncio.ensure_future(collect(i, s)) for i, s in enumerate(streams)]
    await asyncio.sleep(WARM_UP)
    before, cpu_before, wall_before = dict(counts), time.process_time(), time.monotonic()
    print("WINDOW-START", flush=True)
    await asyncio.sleep(WINDOW)
    cpu = time.process_time() - cpu_before
    requests, searches = counts["total"] - before["total"], counts["searches"] - before["searches"]
    wall = time.monotonic() - wall_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for trigger in triggers:
        await trigger.cleanup()
    if manager is not None:
        await manager.stop_all()
    httpx.AsyncClient.send = original_send  # type: ignore[method-assign]
    return {
        "mode": mode,
        "requests": requests,
        "searches": searches,
        "requests_per_min": requests / wall * 60,
        "cpu_seconds": cpu,
        "cpu_share": cpu / wall,
        "window": wall,
        "events": [
            {"watcher": i, "execution_id": p["execution_id"], "flow_id": p["flow_id"]} for i, p in events
        ],
    }


def run_variant(mode: str, server: Any, log_dir: Path) -> dict[str, Any]:
    """Start the child, create the executions during its window, return its report plus the ids created."""
    env = dict(
        os.environ, AIRFLOW_CONN_KESTRA_BENCH=server.connection_uri(), PYTHONPATH=str(Path(__file__).parent)
    )
    env.setdefault("AIRFLOW_HOME", str(log_dir))
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", mode], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    created: list[tuple[str, str]] = []
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while not any("WINDOW-START" in line for line in lines):
        if process.poll() is not None:
            raise RuntimeError(f"{mode} child exited early: {''.join(lines)[-2000:]}")
        time.sleep(0.1)
    pause = (WINDOW - 15) / EXECUTIONS
    for number in range(EXECUTIONS):
        target = flow_id((number * 37) % WATCHERS)
        created.append((server.create_execution_in("bench.events", target), target))
        time.sleep(pause)
    process.wait(timeout=WINDOW + 120)
    reader.join(timeout=5)
    report = json.loads(lines[-1])
    report["created"] = created
    return report


def verdict(report: dict[str, Any]) -> str:
    """Each created execution fired exactly once, for the watcher of its flow."""
    fired = [(e["execution_id"], flow_id(e["watcher"])) for e in report["events"]]
    expected = sorted(report["created"])
    if sorted(fired) == expected:
        return f"{len(fired)} events for {len(expected)} executions, each once, to the right watcher"
    return f"MISMATCH: {len(fired)} events for {len(expected)} executions"


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_machine import describe_machine, load_average
    from bench_report import BenchRow, markdown_table
    from bench_server import BenchServer, start_simulator

    def create_execution_in(self: BenchServer, namespace: str, flow: str) -> str:
        response = self.session.post(f"{self.api}/executions/{namespace}/{flow}", timeout=30)
        response.raise_for_status()
        return str(response.json()["id"])

    BenchServer.create_execution_in = create_execution_in  # type: ignore[attr-defined]
    machine = describe_machine()  # includes the load average at the start
    work = Path(tempfile.mkdtemp(prefix="bench-events-"))
    server = start_simulator(work / "sim.log")
    try:
        headers = {"Content-Type": "application/x-yaml"}
        for i in range(WATCHERS):
            source = FLOW.format(flow_id=flow_id(i))
            server.session.post(
                f"{server.api}/flows", data=source, headers=headers, timeout=30
            ).raise_for_status()
        reports = {mode: run_variant(mode, server, work) for mode in ("shared", "standalone")}
    finally:
        server.stop()
    rows = []
    for mode, label in (
        ("shared", f"{WATCHERS} watchers, shared stream (Airflow 3.3 SharedStreamManager)"),
        ("standalone", f"{WATCHERS} watchers, standalone run() each"),
    ):
        r = reports[mode]
        searches_per_interval = r["searches"] / (r["window"] / POLL)
        rows.append(
            BenchRow(
                "5. Event watchers",
                label,
                "HTTP requests per minute; watcher CPU",
                f"{r['requests_per_min']:.0f} /min; {r['cpu_seconds'] / r['window'] * 60:.2f} CPU-s/min "
                f"({r['cpu_share'] * 100:.1f}% of one core)",
                "1 search per poll interval" if mode == "shared" else "",
                searches_per_interval <= 1.1 if mode == "shared" else None,
                f"poll {POLL:.0f} s, window {r['window']:.0f} s: {r['searches']} searches "
                f"({searches_per_interval:.1f} per interval), {r['requests'] - r['searches']} others; "
                f"{verdict(r)}",
            )
        )
    table = markdown_table(rows)
    print(table)
    if "--write" in sys.argv:
        results = Path(__file__).with_name("results.md")
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = [
            "",
            f"## 5. Event watchers (`bench/bench_event_watchers.py`, {stamp})",
            "",
            "| | |",
            "|---|---|",
            *(f"| {name} | {value} |" for name, value in machine),
            f"| Load average at end (1/5/15 min) | {load_average()} |",
            "",
            table,
            "",
        ]
        with results.open("a") as handle:
            handle.write("\n".join(section))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(child(sys.argv[2]))), flush=True)
    else:
        main()
