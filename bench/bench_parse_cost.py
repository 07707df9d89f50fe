"""Benchmark 4: DAG-parse cost of the provider's operator and sensor modules.

Every DAG file that uses the provider imports these two modules in the DAG processor, so their import time
is paid on every parse. Each sample is a fresh interpreter that first imports the baseline (``airflow.sdk``),
then the two provider modules, and reports the second step only, as wall time and as this process's CPU
time. The goal is judged on the median CPU time: on a loaded shared machine the wall time of an import is
mostly time spent waiting for a core (it grows with the load average), while its CPU time is what the
import costs. Modules that should stay out of parse time (requests, httpx, yaml, the hook, the simulator)
and appear only after the provider import are named in the note, with the largest provider-side imports
from ``python -X importtime`` (which every sample runs with) saying where the time goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from statistics import median

from bench_report import BenchRow

GOAL_SECONDS = 0.050
PROVIDER_MODULES = ("airflow_provider_kestra.operators.kestra", "airflow_provider_kestra.sensors.kestra")
HEAVY_MODULES = (
    "requests",
    "httpx",
    "yaml",
    "airflow_provider_kestra.hooks.kestra",
    "airflow_provider_kestra.testing",
)
BASELINE = "import airflow.sdk"

_SAMPLE_SCRIPT = """
import json, sys, time
heavy = {heavy!r}
w0, c0 = time.perf_counter(), time.process_time()
exec({baseline!r})
w1, c1 = time.perf_counter(), time.process_time()
before = set(sys.modules)
for name in {modules!r}:
    exec("import " + name)  # an import statement, so -X importtime logs it
w2, c2 = time.perf_counter(), time.process_time()
pulled = sorted(m for m in heavy if m in sys.modules and m not in before)
print(json.dumps({{"baseline": w1 - w0, "wall": w2 - w1, "cpu": c2 - c1, "pulled": pulled}}))
"""


@dataclass(frozen=True)
class ParseCostSample:
    """One fresh interpreter's numbers (seconds)."""

    baseline_wall: float
    wall: float
    cpu: float
    pulled: tuple[str, ...]
    #: ``(cumulative microseconds, module)`` of the provider-side imports, from ``-X importtime``.
    imports: tuple[tuple[int, str], ...]


def _provider_side_imports(importtime_log: str) -> tuple[tuple[int, str], ...]:
    """Imports from the first provider module on (the baseline's own imports come before it)."""
    entries: list[tuple[int, str]] = []
    for line in importtime_log.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if entries or name.startswith("airflow_provider_kestra"):
            entries.append((int(parts[1].strip()), name))
    return tuple(sorted(entries, reverse=True))


def _sample(env: dict[str, str]) -> ParseCostSample:
    script = _SAMPLE_SCRIPT.format(heavy=HEAVY_MODULES, baseline=BASELINE, modules=PROVIDER_MODULES)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
        raise RuntimeError(lines[-1] if lines else f"import failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return ParseCostSample(
        baseline_wall=float(result["baseline"]),
        wall=float(result["wall"]),
        cpu=float(result["cpu"]),
        pulled=tuple(result["pulled"]),
        imports=_provider_side_imports(done.stderr),
    )


def run_parse_cost(samples: int, env: dict[str, str] | None = None) -> list[BenchRow]:
    """Measure the provider import over ``import airflow.sdk`` in ``samples`` fresh interpreters."""
    env = dict(env or os.environ)
    variant = f"operators+sensors over `{BASELINE}`"
    try:
        results = [_sample(env) for _ in range(samples)]
    except RuntimeError as error:
        return [BenchRow("4. DAG-parse cost", variant, "import time", "n/a", note=str(error))]
    cpu, wall = median(r.cpu for r in results), median(r.wall for r in results)
    typical = sorted(results, key=lambda r: r.cpu)[len(results) // 2]
    pulled = sorted({name for r in results for name in r.pulled})
    largest = ", ".join(f"{name} {micros / 1000:.1f} ms" for micros, name in typical.imports[:5])
    note = (
        f"median of {samples} fresh interpreters; wall time {wall * 1000:.1f} ms "
        f"(`{BASELINE}` itself: {median(r.baseline_wall for r in results):.1f} s wall); "
        + (f"pulled in at parse time: {', '.join(pulled)}" if pulled else "no heavy module pulled in")
        + f"; largest provider-side imports (cumulative, -X importtime): {largest}"
    )
    return [
        BenchRow(
            "4. DAG-parse cost",
            variant,
            "import CPU time (median)",
            f"{cpu * 1000:.1f} ms",
            goal="< 50 ms",
            met=cpu < GOAL_SECONDS,
            note=note,
        )
    ]
