"""Issue 12, goal 1: the log relay with the operator's defaults, at 1k / 10k / 50k log lines.

A ``KestraTriggerExecutionOperator`` built with its defaults (``stream_logs=True``, ``log_level="INFO"``,
``poll_interval=5``) and ``deferrable=True`` runs the way Airflow runs it, through its public entry points,
in a fresh interpreter (so its CPU time is its own; the simulator is another process):

1. worker: ``execute(context)`` starts the execution and raises ``TaskDeferred``;
2. triggerer: the trigger is serialized and rebuilt from its kwargs (as the triggerer does), its ``run()``
   is a task of an asyncio loop until its single event, then ``cleanup()``;
3. worker: ``execute_complete(context, event)``.

The flow logs at a constant rate of :data:`LINES_PER_SECOND` (batches of :data:`BATCH` lines, then a
``Sleep``), so a longer log takes longer to write, as in a real job: 1k lines ~1 s, 50k lines ~50 s.

Measured per phase: response-body bytes received on each route (a counting transport installed in the
measured process: ``bench_http_counter.ResponseByteCounter``), requests per route (the simulator's
request journal), ``time.process_time``. The log size is the body of one ``GET /logs/{id}?minLevel=INFO``
read after the end by the parent process. Every relayed line is counted in the task output, to check
each line shows exactly once.

Goals: bytes downloaded for logs <= 1.5x the log size at 10k and 50k lines; relay CPU per new line within
1.5x between 1k and 50k.

Relay CPU is the CPU of the triggerer run plus ``execute_complete`` minus the same for a run of the 1k flow
with ``stream_logs=False`` (what waiting costs without the relay), divided by the lines. The task output is
written at INFO (``AIRFLOW__LOGGING__LOGGING_LEVEL=INFO``), as a task log is.

Usage (subprocess): ``python bench_log_relay.py URL USERNAME PASSWORD CONN_ID LINES STREAM_LOGS REPORT_PATH``
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from bench_http_counter import (
    HttpRequestCounter,
    ResponseByteCounter,
    by_route,
    format_routes,
    journal_entries,
)
from bench_report import BenchRow

if TYPE_CHECKING:
    from bench_server import BenchServer

GOAL_BYTES_RATIO = 1.5
GOAL_CPU_RATIO = 1.5
SIZES = (1_000, 10_000, 50_000)
QUICK_SIZES = (1_000, 10_000)
LINES_PER_SECOND = 1_000
BATCH = 5_000
#: What a relayed line looks like in the task output (``log_kestra_entries``).
RELAYED_MARK = "[kestra:log"
BENCH = "12.1 Log relay (defaults)"
SELECT = {12, 121}


def flow_source(flow_id: str, lines: int) -> str:
    """A flow that logs ``lines`` INFO lines at :data:`LINES_PER_SECOND`, in batches of :data:`BATCH`."""
    tasks, done, batch = [], 0, 0
    while done < lines:
        size = min(BATCH, lines - done)
        messages = "\n".join(
            f'      - "relay line {done + i:06d} of {lines}: the quick brown fox jumps over the lazy dog"'
            for i in range(size)
        )
        tasks.append(f"  - id: log{batch}\n    type: io.kestra.plugin.core.log.Log\n    message:\n{messages}")
        tasks.append(
            f"  - id: pause{batch}\n    type: io.kestra.plugin.core.flow.Sleep\n"
            f'    duration: "PT{size / LINES_PER_SECOND:g}S"'
        )
        done, batch = done + size, batch + 1
    return f"id: {flow_id}\nnamespace: bench\ntasks:\n" + "\n".join(tasks) + "\n"


class _FakeTaskInstance(SimpleNamespace):
    """The few ``ti`` attributes the operator reads (first try, no mapping); XComs are kept, not stored."""

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def fake_context(task_id: str) -> dict[str, Any]:
    """An Airflow context with just what ``execute``/``execute_complete`` read."""
    ti = _FakeTaskInstance(
        dag_id="bench_issue12",
        task_id=task_id,
        run_id=f"bench_{int(time.time() * 1000)}",
        try_number=1,
        max_tries=0,
        map_index=-1,
        start_date=None,
        xcoms={},
    )
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id}


def import_string(dotted_path: str) -> Any:
    """The triggerer's ``import_string`` (Airflow 3: ``airflow._shared.module_loading``)."""
    try:
        from airflow._shared.module_loading import import_string as load
    except ImportError:  # Airflow 2
        from airflow.utils.module_loading import import_string as load  # type: ignore[no-redef]
    return load(dotted_path)


async def run_trigger_as_triggerer(trigger: Any) -> dict[str, Any]:
    """Rebuild ``trigger`` from ``serialize()`` (as the triggerer does) and consume its single event."""
    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)
    try:
        async for event in rebuilt.run():
            return dict(event.payload)
        return {"status": "no event"}
    finally:
        await rebuilt.cleanup()


def _phase(counter: HttpRequestCounter, seq: int, bytes_before: Any, byte_counter: Any, cpu: float) -> dict:
    used = time.process_time() - cpu
    after = byte_counter.snapshot()
    entries = journal_entries(counter, since=seq)
    return {
        "cpu": used,
        "requests": dict(by_route(entries)),
        "bytes": {
            route: after[route] - bytes_before[route] for route in after if after[route] > bytes_before[route]
        },
    }


def main(argv: list[str]) -> int:
    """Run one deferred operator with defaults over a flow of LINES lines; write the JSON report."""
    url, _username, _password, conn_id, lines, stream_logs, report_path = argv
    # A running triggerer and worker have these loaded already: their import is goal 5's, not the relay's.
    import httpx  # noqa: F401
    from airflow.exceptions import TaskDeferred

    import airflow_provider_kestra.hooks.kestra_async
    import airflow_provider_kestra.triggers.kestra  # noqa: F401
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    n = int(lines)
    byte_counter = ResponseByteCounter().install()
    counter = HttpRequestCounter(url).start()
    operator = KestraTriggerExecutionOperator(
        task_id="relay",
        namespace="bench",
        flow_id=f"relay{n}",
        deferrable=True,
        kestra_conn_id=conn_id,
        **({} if stream_logs == "on" else {"stream_logs": False}),
    )
    context = fake_context("relay")
    phases: dict[str, Any] = {}
    seq, before, cpu, wall = counter.start()._since, byte_counter.snapshot(), time.process_time(), time.time()
    try:
        operator.execute(context)  # type: ignore[arg-type]
        raise RuntimeError("the operator did not defer")
    except TaskDeferred as deferred:
        trigger = deferred.trigger
    phases["worker: execute -> defer"] = _phase(counter, seq, before, byte_counter, cpu)
    seq, before, cpu = counter.start()._since, byte_counter.snapshot(), time.process_time()
    event = asyncio.run(run_trigger_as_triggerer(trigger))
    phases["triggerer: trigger run"] = _phase(counter, seq, before, byte_counter, cpu)
    seq, before, cpu = counter.start()._since, byte_counter.snapshot(), time.process_time()
    operator.execute_complete(context, event)  # type: ignore[arg-type]
    phases["worker: execute_complete"] = _phase(counter, seq, before, byte_counter, cpu)
    report = {
        "lines": n,
        "execution_id": event.get("execution_id"),
        "status": event.get("status"),
        "seconds": time.time() - wall,
        "phases": phases,
    }
    Path(report_path).write_text(json.dumps(report))
    return 0


def _log_bytes(report: dict[str, Any], phase: str) -> int:
    return sum(n for route, n in report["phases"][phase]["bytes"].items() if "/logs/" in route)


def _log_requests(report: dict[str, Any], phase: str) -> int:
    return sum(n for route, n in report["phases"][phase]["requests"].items() if "/logs/" in route)


def measure_log_relay(
    server: BenchServer, conn_id: str, lines: int, workdir: Path, stream_logs: bool = True
) -> dict[str, Any]:
    """Deploy the flow, run :func:`main` in a fresh interpreter, add the log size and the relayed count."""
    flow_id = f"relay{lines}"
    server.deploy_flow(flow_source(flow_id, lines), flow_id)
    report_path = workdir / f"log-relay-{lines}-{stream_logs}.json"
    switch = "on" if stream_logs else "off"
    args = [server.url, server.username, server.password, conn_id, str(lines), switch, str(report_path)]
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), *args],
        capture_output=True,
        text=True,
        timeout=lines / LINES_PER_SECOND * 4 + 180,
        check=False,
        env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"},
    )
    if done.returncode != 0 or not report_path.exists():
        tail = done.stderr.strip().splitlines()
        raise RuntimeError(tail[-1] if tail else f"exit {done.returncode}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    response = server.session.get(
        f"{server.api}/logs/{report['execution_id']}", params={"minLevel": "INFO"}, timeout=120
    )
    response.raise_for_status()
    report["log_bytes"] = len(response.content)
    report["log_lines"] = len(response.json())
    report["relayed"] = (done.stdout + done.stderr).count(RELAYED_MARK)
    return report


def log_relay_rows(reports: list[dict[str, Any]], baseline: dict[str, Any] | None) -> list[BenchRow]:
    """One row per size (bytes ratio, CPU per line), and the CPU-per-line ratio between the extremes;
    ``baseline`` is the ``stream_logs=False`` run whose CPU is taken off (None: nothing taken off)."""
    rows, cpu_per_line = [], {}
    trig, before, after = "triggerer: trigger run", "worker: execute -> defer", "worker: execute_complete"
    fixed = 0.0
    if baseline is not None:
        fixed = baseline["phases"][trig]["cpu"] + baseline["phases"][after]["cpu"]
    for report in reports:
        n, size = report["lines"], report["log_bytes"]
        trigger_bytes, worker_bytes = (
            _log_bytes(report, trig),
            _log_bytes(report, before) + _log_bytes(report, after),
        )
        total = trigger_bytes + worker_bytes
        ratio = total / size if size else float("inf")
        cpu = {phase: report["phases"][phase]["cpu"] for phase in (before, trig, after)}
        per_line = max(0.0, cpu[trig] + cpu[after] - fixed) / n
        cpu_per_line[n] = per_line
        judged = n >= 10_000
        rows.append(
            BenchRow(
                BENCH,
                f"{n:,} lines ({n / LINES_PER_SECOND:g} s of logging), deferred operator defaults",
                "log bytes downloaded / log size",
                f"{total / 2**20:.1f} MB / {size / 2**20:.1f} MB = {ratio:.1f}x",
                goal="<= 1.5x" if judged else "",
                met=ratio <= GOAL_BYTES_RATIO if judged else None,
                note=(
                    f"triggerer {trigger_bytes / 2**20:.1f} MB in {_log_requests(report, trig)} log "
                    "requests, "
                    f"worker {worker_bytes / 2**20:.1f} MB in {_log_requests(report, before)} + "
                    f"{_log_requests(report, after)} (before defer + execute_complete); "
                    f"relay CPU {per_line * 1e6:.0f} us per line (trigger {cpu[trig]:.2f} s + "
                    f"execute_complete {cpu[after]:.2f} s - {fixed:.2f} s without relay; execute "
                    f"{cpu[before]:.2f} s not counted); "
                    f"relayed {report['relayed']:,} of {report['log_lines']:,} lines; "
                    f"event {report['status']}, {report['seconds']:.0f} s; triggerer requests: "
                    f"{format_routes(_counter(report['phases'][trig]['requests']))}"
                ),
            )
        )
    if len(cpu_per_line) >= 2:
        small, large = min(cpu_per_line), max(cpu_per_line)
        ratio = cpu_per_line[large] / cpu_per_line[small]
        rows.append(
            BenchRow(
                BENCH,
                f"relay CPU per new line, {large:,} vs {small:,} lines",
                "CPU per line ratio",
                f"{ratio:.2f}x ({cpu_per_line[large] * 1e6:.0f} vs {cpu_per_line[small] * 1e6:.0f} us/line)",
                goal="<= 1.5x",
                met=ratio <= GOAL_CPU_RATIO,
                note=(
                    "(triggerer run + execute_complete CPU - the same with stream_logs=False on the 1k flow) "
                    "/ lines; process_time of the measured process"
                ),
            )
        )
    return rows


def _counter(mapping: dict[str, int]) -> Any:
    from collections import Counter

    return Counter(mapping)


def run_log_relay(server: BenchServer, conn_id: str, workdir: Path, quick: bool) -> list[BenchRow]:
    """Goal 1 at each size; a failed size becomes an ``n/a`` row."""
    reports, rows = [], []
    try:
        baseline = measure_log_relay(server, conn_id, SIZES[0], workdir, stream_logs=False)
    except Exception as err:
        baseline = None
        rows.append(BenchRow(BENCH, "stream_logs=False baseline", "all", "n/a", note=str(err)[:300]))
    for lines in QUICK_SIZES if quick else SIZES:
        try:
            reports.append(measure_log_relay(server, conn_id, lines, workdir))
        except Exception as err:
            rows.append(BenchRow(BENCH, f"{lines:,} lines", "all", "n/a", note=str(err)[:300]))
    return log_relay_rows(reports, baseline) + rows


def _rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """``run.py``'s hook (``--only 12`` or ``121``): 1k, 10k, 50k lines (1k and 10k with ``--quick``)."""
    if not selected & SELECT:
        return []
    from bench_server import ISSUE12_CONN_ID, issue12_simulator

    print("12.1 Log relay with the operator's defaults ...", flush=True)
    with issue12_simulator(workdir, "log-relay") as server:
        return run_log_relay(server, ISSUE12_CONN_ID, workdir, quick)


def rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """:func:`_rows_if_selected` with the load average at its start and end in every note."""
    from bench_machine import load_average
    from bench_report import with_load

    start = load_average()
    rows = _rows_if_selected(selected, workdir, quick)
    return with_load(rows, start, load_average()) if rows else rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
