"""Run every provider benchmark side by side against one simulator process and print the results table.

Usage (from the repository root)::

    .venv/af33/bin/python bench/run.py [--only 1,2,3,4,5,12,1250] [--quick] [--output bench/results.md]

The table is printed and written to ``bench/results.md`` with a description of the machine and the load
average at the start and the end of the run (the numbers are only as quiet as the machine was). The
simulator's own benchmark (``bench/bench_simulator.py``) is separate and not run from here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_deferred_scale import run_deferred_scale
from bench_deploy import run_deploy
from bench_detection_latency import run_detection_latency
from bench_hook_throughput import THROUGHPUT_FLOW, run_hook_throughput
from bench_machine import describe_machine, load_average
from bench_parse_cost import run_parse_cost
from bench_report import BenchRow, markdown_table
from bench_server import start_simulator

BENCH_DIR = Path(__file__).resolve().parent
CONN_ID = "kestra_bench"


def _prepare_environment(workdir: Path) -> None:
    """An Airflow home of our own (no DB is touched) and the connection the hooks and triggers use."""
    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


def _write_results(
    path: Path, machine: list[tuple[str, str]], rows: list[BenchRow], load_end: str, seconds: float
) -> str:
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# airflow-provider-kestra benchmarks",
        "",
        f"Produced by `.venv/af33/bin/python bench/run.py` on {started} in {seconds:.0f} s. "
        "See bench/README.md for what each benchmark measures and how.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in machine),
        f"| Load average at end (1/5/15 min) | {load_end} |",
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, print the table and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default="1,2,3,4,5,12,1250",
        help="comma-separated benchmark numbers (12: issue 12's rows with the operator's defaults; 1250: "
        "its 5,000 deferred waits; 121, 122, 123, 125, 126: one issue-12 row)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller samples, for trying the harness")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.md")
    args = parser.parse_args(argv)
    selected = {int(part) for part in args.only.split(",") if part.strip()}
    quick = args.quick

    workdir = Path(tempfile.mkdtemp(prefix="kestra-bench-"))
    _prepare_environment(workdir)
    started = time.monotonic()
    machine = describe_machine()
    print("\n".join(f"{label}: {value}" for label, value in machine), flush=True)
    rows: list[BenchRow] = []

    if 4 in selected:
        print("4. DAG-parse cost ...", flush=True)
        rows += run_parse_cost(samples=3 if quick else 5)

    if selected & {1, 2, 3, 5}:
        server = start_simulator(workdir / "kestra-sim.log")
        print(
            f"simulator at {server.url} (pid {server.process.pid}, log {workdir / 'kestra-sim.log'})",
            flush=True,
        )
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = server.connection_uri()
        try:
            if 3 in selected:
                print("3. Hook throughput ...", flush=True)
                server.deploy_flow(THROUGHPUT_FLOW, "throughput")
                execution_id = server.create_execution("throughput")
                server.wait_until_terminal(execution_id)
                rows += run_hook_throughput(
                    server, CONN_ID, execution_id, rounds=3 if quick else 9, seconds=0.5 if quick else 0.7
                )
            if 5 in selected:
                print("5. Flow deploy ...", flush=True)
                rows += run_deploy(server, CONN_ID, count=500)
            if 1 in selected:
                print("1. Detection latency ...", flush=True)
                rows += run_detection_latency(server, CONN_ID, count=10 if quick else 30)
            if 2 in selected:
                print("2. Deferred waits at scale ...", flush=True)
                for mode in ("trigger", "hook-follow"):
                    rows += run_deferred_scale(
                        server,
                        CONN_ID,
                        count=100 if quick else 1000,
                        sleep=30.0 if quick else 60.0,
                        settle=1.0,
                        mode=mode,
                    )
        finally:
            server.stop()
    rows += __import__("bench_log_relay").rows_if_selected(selected, workdir, quick)
    rows += __import__("bench_defaults_deferred").rows_if_selected(selected, workdir, quick)
    rows += __import__("bench_requests_per_execution").rows_if_selected(selected, workdir, quick)
    rows += __import__("bench_startup_stall").rows_if_selected(selected, workdir, quick)
    rows += __import__("bench_detection_latency").rows_if_selected(selected, workdir, quick)

    text = _write_results(args.output, machine, rows, load_average(), time.monotonic() - started)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
