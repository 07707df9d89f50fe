"""Benchmark: the DAG-parse cost of ``migrate_to_kestra(dag)`` on a 200-task DAG.

A DAG file calling ``migrate_to_kestra`` pays, on every parse: importing the migration package (and, when a
task is in kestra mode, the trigger operator module), reading and checking the state file (including
parsing every Jinja input template), and rewiring the tasks (shadow hooks, proxy operators). Each sample is
a fresh interpreter that imports ``airflow.sdk``, builds a 200-task DAG (a fan of chains) without the
provider, then imports the migration package and applies a state file naming every task: a third in each
mode (airflow, shadow, kestra), each migrated task with two templated inputs. It reports CPU time (what
parsing costs; wall time on a shared machine is mostly waiting for a core) of the DAG build and of the
migration (import + apply), and which heavy modules (HTTP clients, the hook, the simulator) were pulled
in: none should be, since nothing may call Kestra at parse time.

Usage: ``python bench/bench_migration_parse.py [--samples 5] [--tasks 200]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import BenchRow, markdown_table

GOAL_SECONDS_PER_TASK = 0.001
"""Migration cost (imports + apply) per task of the DAG, CPU time (median): 200 ms for 200 tasks, about
what building the DAG's tasks themselves costs with real operators."""
HEAVY_MODULES = (
    "requests",
    "httpx",
    "airflow_provider_kestra.hooks.kestra",
    "airflow_provider_kestra.testing",
)

_DAG_FILE = """
from datetime import datetime, timezone
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

TASKS = {tasks}
with DAG("bench_migration", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)) as dag:
    start = EmptyOperator(task_id="t000")
    previous = {{}}
    for index in range(1, TASKS):
        task = EmptyOperator(task_id=f"t{{index:03d}}")
        lane = index % 10
        (previous.get(lane) or start) >> task
        previous[lane] = task
"""

_SAMPLE = """
import json, sys, time, runpy
w0, c0 = time.perf_counter(), time.process_time()
import airflow.sdk
w1, c1 = time.perf_counter(), time.process_time()
dag = runpy.run_path({dag_file!r})["dag"]
w2, c2 = time.perf_counter(), time.process_time()
before = set(sys.modules)
from airflow_provider_kestra.migration import migrate_to_kestra
w3, c3 = time.perf_counter(), time.process_time()
import airflow_provider_kestra.migration.operators  # the proxy's module (the trigger operator's)
w4, c4 = time.perf_counter(), time.process_time()
plan = migrate_to_kestra(dag, state_file={state_file!r})
w5, c5 = time.perf_counter(), time.process_time()
heavy = sorted(m for m in {heavy!r} if m in sys.modules and m not in before)
modes = {{m: len(plan.tasks_in(m)) for m in ("airflow", "shadow", "kestra")}}
print(json.dumps({{"dag_cpu": c2 - c1, "import_cpu": c3 - c2, "operator_import_cpu": c4 - c3,
                  "apply_cpu": c5 - c4, "migration_wall": w5 - w2, "heavy": heavy, "modes": modes}}))
"""


def _state_file(tasks: int) -> str:
    lines = ["version: 1", "defaults: {namespace: bench.migration}", "tasks:"]
    for index in range(tasks):
        mode = ("airflow", "shadow", "kestra")[index % 3]
        lines.append(f"  t{index:03d}:")
        lines.append(f"    mode: {mode}")
        lines.append(f"    flow_id: flow_{index:03d}")
        lines.append("    inputs:")
        lines.append('      day: "{{ ds }}"')
        lines.append(f"      rows: \"{{{{ ti.xcom_pull(task_ids='t{max(index - 10, 0):03d}') | tojson }}}}\"")
    return "\n".join(lines) + "\n"


def _ms(results: list[dict[str, Any]], key: str) -> str:
    return f"{median(r[key] for r in results) * 1000:.1f} ms"


def run(samples: int, tasks: int) -> list[BenchRow]:
    """Measure ``samples`` fresh interpreters; one row for the migration cost, one for the DAG build."""
    folder = Path(tempfile.mkdtemp(prefix="bench-migration-"))
    dag_file, state_file = folder / "bench_migration.py", folder / "bench_migration.kestra-migration.yml"
    dag_file.write_text(_DAG_FILE.format(tasks=tasks))
    state_file.write_text(_state_file(tasks))
    script = _SAMPLE.format(dag_file=str(dag_file), state_file=str(state_file), heavy=HEAVY_MODULES)
    results = []
    for _ in range(samples):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            return [BenchRow("migration parse", f"{tasks} tasks", "CPU", "n/a", note=done.stderr[-400:])]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    migration = median(r["import_cpu"] + r["operator_import_cpu"] + r["apply_cpu"] for r in results)
    dag_build = median(r["dag_cpu"] for r in results)
    heavy = sorted({m for r in results for m in r["heavy"]})
    note = (
        f"median of {samples} fresh interpreters; import {_ms(results, 'import_cpu')} + operator module "
        f"{_ms(results, 'operator_import_cpu')} + apply (read, check, rewire) {_ms(results, 'apply_cpu')}; "
        f"modes {results[0]['modes']}; "
        f"{median(r['migration_wall'] for r in results) * 1000:.1f} ms wall; "
        + (f"pulled in at parse time: {', '.join(heavy)}" if heavy else "no HTTP client or hook imported")
    )
    return [
        BenchRow(
            "migration parse",
            f"migrate_to_kestra, {tasks}-task DAG",
            "import + apply CPU time (median)",
            f"{migration * 1000:.1f} ms",
            goal=f"<= {GOAL_SECONDS_PER_TASK * tasks * 1000:.0f} ms (1 ms/task), no HTTP import",
            met=migration <= GOAL_SECONDS_PER_TASK * tasks and not heavy,
            note=note,
        ),
        BenchRow(
            "migration parse",
            f"the same DAG built without the provider ({tasks} EmptyOperators)",
            "DAG build CPU time (median)",
            f"{dag_build * 1000:.1f} ms",
            note=f"migration adds {migration / dag_build * 100:.0f}% to the DAG's own build time",
        ),
    ]


def main() -> None:
    """Parse the command line, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    print(markdown_table(run(args.samples, args.tasks)))


if __name__ == "__main__":
    main()
