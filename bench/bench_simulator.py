"""Benchmark of the Kestra simulator itself: request rate and concurrent follow streams.

Usage (from the repository root)::

    /work/venv33/bin/python bench/bench_simulator.py [--seconds 3] [--streams 2000]

1. ``GET /executions/{id}`` requests per second from ONE keep-alive client, for each uvicorn HTTP parser /
   event loop combination (goal: at least 1,500/s). Measured with two clients: ``http.client`` (minimal
   client cost, shows the server's capacity) and ``requests.Session`` (what the provider's hook uses).
2. Concurrent ``/follow`` SSE streams: N executions are created and parked on a Pause task, N follow streams
   are opened and held (each has received its first ``progress`` frame), then every execution is resumed
   and each stream must receive its ``end`` frame (goal: 2,000 streams). The server's CPU and resident
   memory are read with psutil from its process.

The simulator runs as a separate ``kestra-sim`` process so the client's work never counts against it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

import psutil
import requests
from bench_machine import describe_machine
from bench_report import BenchRow, markdown_table
from bench_server import NAMESPACE, BenchServer, start_simulator

RATE_GOAL = 1500.0
STREAM_GOAL = 2000
READ_FLOW = f"""id: sim_bench_read
namespace: {NAMESPACE}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ execution.id }}}}"
"""
PAUSE_FLOW = f"""id: sim_bench_pause
namespace: {NAMESPACE}
tasks:
  - id: park
    type: io.kestra.plugin.core.flow.Pause
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: done
"""
VARIANTS = (("httptools", "uvloop"), ("httptools", "asyncio"), ("h11", "asyncio"))


def _auth_header(server: BenchServer) -> dict[str, str]:
    token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _rate_http_client(server: BenchServer, path: str, seconds: float) -> tuple[float, int]:
    """(requests/s, requests made) with ``http.client``: the cheapest keep-alive client there is."""
    host, port = server.url.split("://", 1)[1].split(":")
    headers = _auth_header(server)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    count, end = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        count += 1
    connection.close()
    return count / (time.perf_counter() - start), count


def _rate_requests(server: BenchServer, path: str, seconds: float) -> tuple[float, int]:
    """(requests/s, requests made) with a ``requests.Session``, the client the provider's hook uses."""
    session = requests.Session()
    session.auth = (server.username, server.password)
    count, end = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        session.get(server.url + path, timeout=30).raise_for_status()
        count += 1
    session.close()
    return count / (time.perf_counter() - start), count


def measure_request_rate(workdir: Path, seconds: float, rounds: int) -> list[BenchRow]:
    """GET execution req/s per uvicorn variant and client; rounds are interleaved to spread machine noise."""
    servers: dict[tuple[str, str], BenchServer] = {}
    rates: dict[tuple[str, str, str], list[float]] = {}
    cpu_per_request: dict[tuple[str, str], list[float]] = {}
    client_cpu: dict[str, list[float]] = {}
    try:
        for parser, loop in VARIANTS:
            server = start_simulator(
                workdir / f"sim-{parser}-{loop}.log", extra_args=("--http", parser, "--loop", loop)
            )
            servers[(parser, loop)] = server
            server.deploy_flow(READ_FLOW, "sim_bench_read")
            execution_id = server.create_execution("sim_bench_read")
            server.wait_until_terminal(execution_id)
        for _ in range(rounds):
            for (parser, loop), server in servers.items():
                execution_id = server.create_execution("sim_bench_read")
                server.wait_until_terminal(execution_id)
                path = f"/api/v1/main/executions/{execution_id}"
                process = psutil.Process(server.process.pid)
                for client, measure in (
                    ("http.client", _rate_http_client),
                    ("requests.Session", _rate_requests),
                ):
                    cpu_before, own_before = sum(process.cpu_times()[:2]), time.process_time()
                    rate, count = measure(server, path, seconds)
                    cpu = sum(process.cpu_times()[:2]) - cpu_before
                    client_cpu.setdefault(client, []).append(1e6 * (time.process_time() - own_before) / count)
                    rates.setdefault((parser, loop, client), []).append(rate)
                    cpu_per_request.setdefault((parser, loop), []).append(1e6 * cpu / count)
    finally:
        for server in servers.values():
            server.stop()
    rows: list[BenchRow] = []
    for (parser, loop, client), values in rates.items():
        best, middle = max(values), median(values)
        # The goal is about the server; requests' own CPU cost per call caps its rate on a small machine,
        # so that row is informational and says what the client itself spent.
        judged = client == "http.client"
        rows.append(
            BenchRow(
                "simulator GET execution",
                f"{parser}+{loop}, {client}",
                "requests/s, 1 keep-alive client (best / median)",
                f"{best:,.0f} / {middle:,.0f}",
                goal=f">= {RATE_GOAL:,.0f}/s" if judged else "",
                met=best >= RATE_GOAL if judged else None,
                note=f"{rounds} x {seconds:g} s; client CPU {median(client_cpu[client]):,.0f} us/request",
            )
        )
    for (parser, loop), values in cpu_per_request.items():
        rows.append(
            BenchRow(
                "simulator GET execution",
                f"{parser}+{loop}",
                "server CPU per request (median)",
                f"{median(values):,.0f} us",
                note=f"= {1e6 / median(values):,.0f} req/s per fully used core",
            )
        )
    return rows


class StreamTally:
    """Counts of follow streams by how far they got."""

    def __init__(self) -> None:
        self.connected = 0
        self.held = 0
        self.ended = 0
        self.cut = 0


async def _follow(host: str, port: int, path: str, auth: str, tally: StreamTally) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    tally.connected += 1
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    buffer, held = b"", False
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                tally.cut += 1
                return
            buffer = buffer[-64:] + data
            if not held and b"id: progress" in buffer:
                held = True
                tally.held += 1
            if b"id: end" in buffer:
                tally.ended += 1
                return
    finally:
        writer.close()


async def _streams(server: BenchServer, ids: list[str], tally: StreamTally, report: dict[str, float]) -> None:
    host, port = server.url.split("://", 1)[1].split(":")
    auth = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    process = psutil.Process(server.process.pid)
    tasks = []
    for start in range(0, len(ids), 200):
        for execution_id in ids[start : start + 200]:
            path = f"/api/v1/main/executions/{execution_id}/follow"
            tasks.append(asyncio.create_task(_follow(host, int(port), path, auth, tally)))
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + 120
    while tally.held + tally.cut < len(ids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    report["held"] = tally.held
    process.cpu_percent(None)
    await asyncio.sleep(2.0)
    report["idle_cpu"] = process.cpu_percent(None)
    report["held_rss"] = process.memory_info().rss / 2**20
    resumed_at = time.perf_counter()
    cpu_before = sum(process.cpu_times()[:2])

    def resume_all() -> None:
        session = requests.Session()
        session.auth = (server.username, server.password)
        for execution_id in ids:
            session.post(f"{server.api}/executions/{execution_id}/resume", timeout=60).raise_for_status()

    with ThreadPoolExecutor(1) as pool:
        await asyncio.get_running_loop().run_in_executor(pool, resume_all)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 300)
    elapsed = time.perf_counter() - resumed_at
    report["finish_seconds"] = elapsed
    report["finish_cpu"] = 100 * (sum(process.cpu_times()[:2]) - cpu_before) / elapsed
    report["peak_rss"] = max(report["held_rss"], process.memory_info().rss / 2**20)


def measure_streams(workdir: Path, count: int) -> list[BenchRow]:
    """Hold ``count`` follow streams, then let every execution finish."""
    server = start_simulator(workdir / "sim-streams.log")
    try:
        base_rss = psutil.Process(server.process.pid).memory_info().rss / 2**20
        server.deploy_flow(PAUSE_FLOW, "sim_bench_pause")
        ids = [server.create_execution("sim_bench_pause") for _ in range(count)]
        for execution_id in ids[-5:]:
            deadline = time.monotonic() + 60
            while server.get_execution(execution_id)["state"]["current"] != "PAUSED":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{execution_id} never paused")
                time.sleep(0.05)
        tally, report = StreamTally(), dict[str, float]()
        asyncio.run(_streams(server, ids, tally, report))
    finally:
        server.stop()
    variant = f"{count} executions parked on Pause, then resumed"
    return [
        BenchRow(
            "simulator follow streams",
            variant,
            "streams held open at once",
            f"{int(report['held']):,}",
            goal=f">= {STREAM_GOAL:,}",
            met=report["held"] >= STREAM_GOAL,
            note=f"{tally.connected:,} connected, {tally.cut} cut",
        ),
        BenchRow(
            "simulator follow streams",
            variant,
            "streams that received `end` after resume",
            f"{tally.ended:,}",
            goal=f"= {count:,}",
            met=tally.ended == count,
            note=f"all ended {report['finish_seconds']:.1f} s after the first resume",
        ),
        BenchRow(
            "simulator follow streams",
            variant,
            "server CPU (% of one core): held idle / while finishing",
            f"{report['idle_cpu']:.0f} % / {report['finish_cpu']:.0f} %",
        ),
        BenchRow(
            "simulator follow streams",
            variant,
            "server RSS: empty / streams held / peak",
            f"{base_rss:.0f} / {report['held_rss']:.0f} / {report['peak_rss']:.0f} MiB",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each req/s measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant")
    parser.add_argument("--streams", type=int, default=STREAM_GOAL, help="number of follow streams")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sim-bench-") as tmp:
        workdir = Path(tmp)
        machine = describe_machine()
        rows = measure_request_rate(workdir, args.seconds, args.rounds) + measure_streams(
            workdir, args.streams
        )
    print("\n".join(f"{label}: {value}" for label, value in machine))
    print()
    print(markdown_table(rows))
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
