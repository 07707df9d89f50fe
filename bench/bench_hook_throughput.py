"""Benchmark 3: execution status reads per second through ``KestraHook.get_execution``.

The same ``GET /api/v1/main/executions/{id}`` (JSON decoded) is issued in a tight loop by:

* ``KestraHook.get_execution`` (one ``requests.Session`` per hook);
* a raw keep-alive ``requests.Session`` — the ceiling a sync Python client can reach on this machine;
* a fresh connection per call (``requests.get``), the way most Airflow HTTP hooks work;
* the official client ``kestrapy``, in its own throwaway virtualenv (see ``bench_kestrapy_poll.py``),
  driven round by round from here.

All variants run in interleaved rounds so a burst of load from other processes hits all of
them alike; the median round is reported, and the share of the ceiling is the median of the per-round
ratios (each round's variant against the same round's raw session), which cancels most of that load.
The simulator runs in another process, so the server's cost is the same for every variant. The client's
own CPU time per read (``time.process_time``) is reported too: it is what the client adds on top of the
server, and it is far less sensitive to load from other processes.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

import requests
from bench_report import BenchRow

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench_server import BenchServer

GOAL_RATIO = 0.90
CEILING = "raw keep-alive requests.Session (ceiling)"
KESTRAPY = "official client kestrapy (polling script, own process)"
KESTRAPY_VENV = Path("/tmp/kestrapy-venv")
KESTRAPY_PACKAGES = ("kestrapy", "regex")
UV = Path(shutil.which("uv") or Path(sys.executable).with_name("uv"))
"""uv from PATH, else the one the test set-up installs into the running venv (scripts/lib/venv.sh)."""
POLL_SCRIPT = Path(__file__).with_name("bench_kestrapy_poll.py")
#: A finished execution with a few task runs and outputs: the size of a typical status read.
THROUGHPUT_FLOW = """id: throughput
namespace: bench
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello from the benchmark
  - id: value
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message: bye
outputs:
  - id: result
    type: STRING
    value: "{{ outputs.value.value }}"
"""


def _reads_per_second(read: Callable[[], object], seconds: float) -> tuple[float, float]:
    """Reads per second over ``seconds``, and this process's CPU seconds per read."""
    calls = 0
    cpu_started, started = time.process_time(), time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        read()
        calls += 1
    return calls / (time.perf_counter() - started), (time.process_time() - cpu_started) / calls


def ensure_kestrapy_python() -> tuple[Path | None, str]:
    """The throwaway venv's interpreter with kestrapy installed, or None and the reason it failed.

    kestrapy 2.0.x imports ``regex`` without declaring it, so ``regex`` is installed next to it.
    """
    python = KESTRAPY_VENV / "bin" / "python"
    steps: list[list[str]] = []
    if not python.exists():
        steps.append([str(UV), "venv", "--quiet", str(KESTRAPY_VENV)])
    steps.append([str(UV), "pip", "install", "--quiet", "--python", str(python), *KESTRAPY_PACKAGES])
    steps.append([str(python), "-c", "import kestrapy"])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return None, f"`{' '.join(step[:3])}` failed: {lines[-1] if lines else done.returncode}"
    return python, "installed in a throwaway venv (plus `regex`, an undeclared kestrapy dependency)"


class KestrapyPoller:
    """``bench_kestrapy_poll.py`` running in the kestrapy venv, answering one round per request."""

    def __init__(self, python: Path, server: BenchServer, execution_id: str) -> None:
        args = [server.url, server.username, server.password, execution_id]
        self.process = subprocess.Popen(
            [str(python), str(POLL_SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.version = ""
        if self._read_line() != "ready":
            raise RuntimeError(self._failure())

    def _read_line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def _failure(self) -> str:
        self.process.kill()
        _, stderr = self.process.communicate(timeout=30)
        lines = stderr.strip().splitlines()
        return f"kestrapy poll failed: {lines[-1] if lines else self.process.returncode}"

    def round(self, seconds: float) -> tuple[float, float]:
        """One round of ``seconds``: reads per second and CPU seconds per read (in the kestrapy process)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        line = self._read_line()
        if not line:
            raise RuntimeError(self._failure())
        report = json.loads(line)
        self.version = str(report["version"])
        return float(report["rate"]), float(report["cpu_per_read"])

    def close(self) -> None:
        """End the script (end of its input) and wait for it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def run_hook_throughput(
    server: BenchServer, conn_id: str, execution_id: str, rounds: int, seconds: float
) -> list[BenchRow]:
    """Measure the four ways to read one execution's status; the ratio to the raw session is the goal."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    url = f"{server.url}/api/v1/main/executions/{execution_id}"
    auth = (server.username, server.password)
    hook = KestraHook(conn_id)
    session = requests.Session()
    session.auth = auth

    def read_raw() -> object:
        response = session.get(url, timeout=30)
        response.raise_for_status()
        return response.json()

    def read_fresh() -> object:
        response = requests.get(url, auth=auth, timeout=30, headers={"Connection": "close"})
        response.raise_for_status()
        return response.json()

    reads: dict[str, Callable[[], object]] = {
        CEILING: read_raw,
        "KestraHook.get_execution": lambda: hook.get_execution(execution_id),
        "fresh connection per call (requests.get)": read_fresh,
    }
    for read in reads.values():
        read()
    variants: dict[str, Callable[[float], tuple[float, float]]] = {
        name: functools.partial(_reads_per_second, read) for name, read in reads.items()
    }
    python, kestrapy_note = ensure_kestrapy_python()
    poller = None
    if python is not None:
        try:
            poller = KestrapyPoller(python, server, execution_id)
            variants[KESTRAPY] = poller.round
        except RuntimeError as error:
            kestrapy_note = str(error)
    else:
        kestrapy_note = f"kestrapy could not be installed: {kestrapy_note}"

    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(rounds):
            for name, measure in variants.items():
                rate, cpu_per_read = measure(seconds)
                rates[name].append(rate)
                cpu[name].append(cpu_per_read)
    finally:
        session.close()
        if poller is not None:
            poller.close()
            kestrapy_note = f"kestrapy {poller.version}; {kestrapy_note}"

    rows = []
    for name, values in rates.items():
        ratio = median(value / raw for value, raw in zip(values, rates[CEILING], strict=True))
        is_hook = name.startswith("KestraHook")
        note = (
            f"client CPU {median(cpu[name]) * 1000:.2f} ms/read; "
            f"{rounds} rounds of {seconds:g} s: {min(values):.0f}-{max(values):.0f}/s"
        )
        rows.append(
            BenchRow(
                "3. Hook throughput",
                name,
                "status reads/s (median round); share of ceiling (median of per-round ratios)",
                f"{median(values):.0f} /s; {ratio:.0%}",
                goal=f">= {GOAL_RATIO:.0%} of ceiling" if is_hook else "",
                met=(ratio >= GOAL_RATIO) if is_hook else None,
                note=f"{note}; {kestrapy_note}" if name == KESTRAPY else note,
            )
        )
    if KESTRAPY not in rates:
        rows.append(
            BenchRow("3. Hook throughput", KESTRAPY, "status reads/s", "not measured", note=kestrapy_note)
        )
    return rows
