"""A description of the machine the benchmarks ran on, written above the results table.

Numbers from a 2-core VM shared with other engineers' test runs are only comparable with the machine and
its load next to them, so the load average is sampled at the start and at the end of the run.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

VENV_AIRFLOW_2 = Path("/work/venv211/bin/python")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _airflow_version(python: str) -> str:
    try:
        done = subprocess.run(
            [python, "-c", "import airflow; print(airflow.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "not available"
    return done.stdout.strip().splitlines()[-1]


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def describe_machine() -> list[tuple[str, str]]:
    """``(label, value)`` pairs: CPU, cores, memory, kernel, Python and Airflow versions, start load."""
    versions = [f"{_airflow_version(sys.executable)} (measured, {sys.executable})"]
    if VENV_AIRFLOW_2.exists():
        versions.append(f"{_airflow_version(str(VENV_AIRFLOW_2))} (also installed, not measured)")
    return [
        ("CPU", f"{_cpu_model()} ({platform.machine()})"),
        ("Cores", str(os.cpu_count())),
        ("Memory", f"{_memory_gib():.1f} GiB"),
        ("Kernel", platform.release()),
        ("Python", platform.python_version()),
        ("Airflow", "; ".join(versions)),
        ("Load average at start (1/5/15 min)", load_average()),
    ]
