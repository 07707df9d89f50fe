"""Benchmark 5: deploying a folder of 500 flows with ``KestraHook.deploy_flows`` (issue 12 goal 4).

The flows are 500 ``.yml`` files in a temporary folder, read as ``KestraDeployFlowOperator`` reads them. The
simulator adds 20 ms to every answer (its ``latency`` fault), so the time measured is dominated by round
trips, as against a Kestra server a few network hops away. Requests are counted by the simulator's request
journal (``bench_http_counter.py``). The hook learns the server's API generation (``GET /api/v1/configs``)
before the measure: that read happens once per hook, not per deployment.

Two runs: the 500 flows new (goals: at most 5 requests and 2 s), then the same folder again, unchanged
(goal: at most 3 requests; every flow must keep revision 1).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench_http_counter import HttpRequestCounter
from bench_report import BenchRow

if TYPE_CHECKING:
    from bench_server import BenchServer

BENCHMARK = "5. Flow deploy"
NAMESPACE = "bench.deploy"
LATENCY = 0.02


def flow_file_text(number: int) -> str:
    """One small flow, with a Kestra expression that must reach Kestra untouched."""
    return (
        f"id: flow_{number:03d}\nnamespace: {NAMESPACE}\ninputs:\n  - id: name\n    type: STRING\n"
        "tasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n"
        f'    message: "Hello {{{{ inputs.name }}}} from flow {number}"\n'
    )


def _read_folder(folder: Path) -> tuple[list[str], list[str]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml"))
    return [p.read_text(encoding="utf-8") for p in files], [p.relative_to(folder).as_posix() for p in files]


def run_deploy(server: BenchServer, conn_id: str, *, count: int = 500) -> list[BenchRow]:
    """Deploy ``count`` new flows, then deploy them again unchanged; one row per run."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    folder = Path(tempfile.mkdtemp(prefix="kestra-bench-flows-"))
    for number in range(count):
        (folder / f"flow_{number:03d}.yml").write_text(flow_file_text(number), encoding="utf-8")
    hook = KestraHook(conn_id)
    api = hook.api_version.value
    server.add_fault(kind="latency", latency=LATENCY)
    rows = []
    try:
        for variant, goal_requests, goal_seconds, action in (
            (f"{count} new flows", 5, 2.0, "created"),
            (f"unchanged redeploy of the {count}", 3, None, "unchanged"),
        ):
            counter = HttpRequestCounter(server.url, server.session).start()
            started, cpu = time.perf_counter(), time.process_time()
            sources, names = _read_folder(folder)
            results = hook.deploy_flows(sources, namespace=NAMESPACE, filenames=names)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            requests_sent = counter.total
            actions = sorted({r["action"] for r in results})
            revisions = sorted({r["revision"] for r in results if r["revision"] is not None})
            met = requests_sent <= goal_requests and (goal_seconds is None or seconds <= goal_seconds)
            met = met and actions == [action] and revisions == [1]
            goal = f"<= {goal_requests} req" + (f" / <= {goal_seconds:.0f} s" if goal_seconds else "")
            rows.append(
                BenchRow(
                    BENCHMARK,
                    variant,
                    "HTTP requests / wall time",
                    f"{requests_sent} req / {seconds:.2f} s",
                    goal,
                    met,
                    f"{int(LATENCY * 1000)} ms added to every answer; client CPU {cpu:.2f} s (reading, "
                    f"parsing, bodies); API {api}; actions {actions}, revisions {revisions}",
                )
            )
    finally:
        server.clear_faults()
        hook.close()
    return rows
