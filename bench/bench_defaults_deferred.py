"""Issue 12, goal 2 (and goal 5's start-up stall at scale): deferred waits with the operator's DEFAULTS.

One implementation with benchmark 2: ``bench_deferred_scale.py`` in mode ``operator-defaults`` (the
trigger exactly as ``KestraTriggerExecutionOperator`` defers with its defaults: log streaming on, INFO,
poll interval 5 s) against mode ``trigger`` (log streaming off). The executions ``Sleep`` and log nothing,
so any log request while waiting is a request for nothing.

Goals: 1,000 waits <= 5% of one core while waiting; 5,000 waits <= 10%, worst event-loop stall
<= 100 ms, every event within 1 s of the execution's end; no log request while the execution logs
nothing; start-up of 5,000 triggers <= 1 s of stall (goal 5). 5,000 runs only with ``--count 5000``
(``python bench/bench_defaults_deferred.py --count 5000``) or ``run.py --only 1250``: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_deferred_scale import deferred_scale_report
from bench_report import BenchRow, percentile

if TYPE_CHECKING:
    from bench_server import BenchServer

BENCH = "12.2 Deferred waits, operator defaults"
SELECT = {12, 122}
SELECT_5000 = {1250}
GOALS = {1000: 0.05, 5000: 0.10}
GOAL_STALL_SECONDS = 0.100
GOAL_LATE_SECONDS = 1.0
GOAL_STARTUP_STALL_SECONDS = 1.0


def _gc_note(report: dict[str, Any]) -> str:
    """CPython's cyclic collector during start-up: its time, full collections, longest pause."""
    collected = report.get("gc", {}).get("startup")
    if not collected:
        return "collector time not recorded"
    return (
        f"garbage collector during start-up {collected['seconds']:.2f} s, {collected['full']:.0f} full "
        f"collections, longest {collected['worst'] * 1000:.0f} ms"
    )


def defaults_rows(report: dict[str, Any], variant: str, judged: bool) -> list[BenchRow]:
    """Goal-2 rows for one report of ``bench_deferred_scale.main``."""
    count = int(report["count"])
    startup, waiting, completion = report["startup"], report["waiting"], report["completion"]
    share = waiting["cpu"] / waiting["seconds"] if waiting["seconds"] > 0 else float("nan")
    goal = GOALS.get(count, 0.05)
    late = report["lateness"]
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report["statuses"].items()))
    worst_stall = max(waiting["lag"], completion["lag"])
    made = report["requests"]
    quiet, quiet_seconds = made["logs_second_half"], report["second_half_seconds"]
    rows = [
        BenchRow(
            BENCH,
            variant,
            "CPU while waiting",
            f"{share:.1%} of one core ({share * 60:.2f} CPU-s/min)",
            goal=f"<= {goal:.0%}" if judged else "",
            met=share <= goal if judged else None,
            note=(
                f"steady window {waiting['seconds']:.0f} s; {made['total'] / count:.1f} requests per "
                f"execution ({made['waiting'] / max(waiting['seconds'], 1e-9) / count * 60:.1f}/min each "
                "while waiting); "
                f"events: {statuses}"
            ),
        ),
        BenchRow(
            BENCH,
            variant,
            "log requests while nothing is logged",
            f"{quiet:,} ({quiet / max(quiet_seconds, 1e-9):.0f}/s)",
            goal="0" if judged else "",
            met=quiet == 0 if judged else None,
            note=(
                f"GET /logs/... in the second half of the steady window ({quiet_seconds:.0f} s; the flow "
                f"only sleeps); first half {made['logs_first_half']:,}: the one read each trigger makes "
                "about poll_interval (jittered) after its execution's task run started"
            ),
        ),
    ]
    if late:
        p50, worst = percentile(late, 50), max(late)
        rows.append(
            BenchRow(
                BENCH,
                variant,
                "event lateness after the execution's end p50 / p95 / max",
                f"{p50 * 1000:.0f} ms / {percentile(late, 95) * 1000:.0f} ms / {worst * 1000:.0f} ms",
                goal="every event <= 1 s" if judged and count >= 5000 else "",
                met=worst <= GOAL_LATE_SECONDS if judged and count >= 5000 else None,
                note=f"n={len(late)} of {count}; completion phase {completion['seconds']:.1f} s",
            )
        )
    rows.append(
        BenchRow(
            BENCH,
            variant,
            "worst event-loop stall waiting+completion; start-up stall worst / total",
            f"{worst_stall * 1000:.0f} ms; {startup['lag'] * 1000:.0f} ms / {startup['stall']:.1f} s",
            goal="<= 100 ms; start-up total <= 1 s" if judged and count >= 5000 else "",
            met=(worst_stall <= GOAL_STALL_SECONDS and startup["stall"] <= GOAL_STARTUP_STALL_SECONDS)
            if judged and count >= 5000
            else None,
            note=(
                f"50 ms ticker; start-up {startup['cpu']:.1f} CPU-s in {startup['seconds']:.0f} s "
                f"(total = summed lateness of ticks > 5 ms late); {_gc_note(report)}"
            ),
        )
    )
    return rows


def floor_rows(report: dict[str, Any], variant: str) -> list[BenchRow]:
    """The start-up stall of the plain-httpx reference (mode ``httpx-stream``): the floor any waiter that
    holds one httpx SSE stream per execution pays on this Python, next to the trigger's figure."""
    startup = report["startup"]
    return [
        BenchRow(
            BENCH,
            variant,
            "start-up stall worst / total",
            f"{startup['lag'] * 1000:.0f} ms / {startup['stall']:.1f} s",
            note=(
                "no provider code: httpx clients shared as the provider shares them, each waiter reads "
                f"its execution's follow stream; start-up {startup['cpu']:.1f} CPU-s in "
                f"{startup['seconds']:.0f} s; {_gc_note(report)}"
            ),
        )
    ]


def run_defaults_deferred(
    server: BenchServer,
    conn_id: str,
    count: int = 1000,
    sleep: float = 60.0,
    with_logs_off: bool = True,
    with_floor: bool = False,
) -> list[BenchRow]:
    """Goal 2 at ``count`` waits with the operator's defaults, and the same with log streaming off and/or
    the plain-httpx floor."""
    rows = []
    modes = [("operator-defaults", f"{count:,} triggers as the operator defers (defaults: logs on)", True)]
    if with_logs_off:
        modes.append(("trigger", f"{count:,} triggers, stream_logs=False (reference)", False))
    if with_floor:
        modes.append(("httpx-stream", f"reference: {count:,} plain httpx SSE reads, no provider code", False))
    for mode, variant, judged in modes:
        try:
            report = deferred_scale_report(server, conn_id, count, sleep, 1.0, mode)
        except Exception as err:
            rows.append(BenchRow(BENCH, variant, "all", "n/a", note=str(err)[:300]))
            continue
        if mode == "httpx-stream":
            rows += floor_rows(report, variant)
        else:
            rows += defaults_rows(report, variant, judged)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Standalone: start a simulator, run the selected count, print the rows."""
    from bench_machine import load_average
    from bench_report import markdown_table
    from bench_server import start_simulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--sleep", type=float, default=60.0)
    parser.add_argument("--no-reference", action="store_true", help="skip the stream_logs=False run")
    parser.add_argument("--floor", action="store_true", help="also run the plain-httpx reference")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kestra-bench-"))
    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    server = start_simulator(workdir / "kestra-sim.log", extra_args=("--journal-size", "2000000"))
    os.environ["AIRFLOW_CONN_KESTRA_BENCH"] = server.connection_uri()
    start = load_average()
    try:
        rows = run_defaults_deferred(
            server, "kestra_bench", args.count, args.sleep, not args.no_reference, args.floor
        )
    finally:
        server.stop()
    print(f"load average at start {start}, at end {load_average()}")
    print(markdown_table(rows))
    return 0


def _rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """``run.py``'s hook: 1,000 waits for ``--only 12``/``122``; 5,000 (no reference run) for ``1250``."""
    from bench_server import ISSUE12_CONN_ID, issue12_simulator

    rows = []
    if selected & SELECT:
        print("12.2 Deferred waits with the operator's defaults ...", flush=True)
        with issue12_simulator(workdir, "defaults-deferred") as server:
            count, sleep = (100, 30.0) if quick else (1000, 60.0)
            rows += run_defaults_deferred(server, ISSUE12_CONN_ID, count, sleep)
    if selected & SELECT_5000:
        print("12.2 Deferred waits with the operator's defaults, 5,000 ...", flush=True)
        with issue12_simulator(workdir, "defaults-deferred-5000") as server:
            rows += run_defaults_deferred(
                server, ISSUE12_CONN_ID, 5000, 120.0, with_logs_off=False, with_floor=True
            )
    return rows


def rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """:func:`_rows_if_selected` with the load average at its start and end in every note."""
    from bench_machine import load_average
    from bench_report import with_load

    start = load_average()
    rows = _rows_if_selected(selected, workdir, quick)
    return with_load(rows, start, load_average()) if rows else rows


if __name__ == "__main__":
    sys.exit(main())
