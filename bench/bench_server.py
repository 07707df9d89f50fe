"""The Kestra simulator as a separate process, and the few raw API calls the benchmarks set up with.

The simulator runs through its ``kestra-sim`` console script in its own process, so its CPU time and
memory never count against the client being measured. Setup (deploying flows, creating executions,
reading terminal timestamps) uses plain ``requests`` rather than the hook, so a benchmark measures the
provider's code only where it means to.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

if TYPE_CHECKING:
    from collections.abc import Iterator

SIM_USERNAME = "admin@kestra.io"
SIM_PASSWORD = "Kestra-Sim-Pass1"
NAMESPACE = "bench"
_URL_PATTERN = re.compile(r"https?://127\.0\.0\.1:\d+")
_FRACTION = re.compile(r"\.(\d+)")


@dataclass
class BenchServer:
    """A running simulator process and a keep-alive session to set it up with."""

    url: str
    process: subprocess.Popen[bytes]
    username: str = SIM_USERNAME
    password: str = SIM_PASSWORD
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.auth = (self.username, self.password)

    @property
    def api(self) -> str:
        """Base of the tenant's API routes."""
        return f"{self.url}/api/v1/main"

    def connection_uri(self) -> str:
        """An ``AIRFLOW_CONN_...`` value for the hooks (credentials URL-encoded, as the contract says)."""
        host_port = self.url.split("://", 1)[1]
        return f"kestra://{quote(self.username, safe='')}:{quote(self.password, safe='')}@{host_port}"

    def deploy_flow(self, source: str, flow_id: str) -> None:
        """Create the flow, or update it when it already exists."""
        headers = {"Content-Type": "application/x-yaml"}
        response = self.session.post(f"{self.api}/flows", data=source, headers=headers, timeout=30)
        if response.status_code in (409, 422) and "exists" in response.text:
            response = self.session.put(
                f"{self.api}/flows/{NAMESPACE}/{flow_id}", data=source, headers=headers, timeout=30
            )
        response.raise_for_status()

    def create_execution(self, flow_id: str, inputs: dict[str, str] | None = None) -> str:
        """Start one execution (``wait=false``) and return its id."""
        files = {name: (None, value) for name, value in (inputs or {}).items()}
        response = self.session.post(
            f"{self.api}/executions/{NAMESPACE}/{flow_id}", files=files or None, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        """The execution JSON as the server returns it."""
        response = self.session.get(f"{self.api}/executions/{execution_id}", timeout=30)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_until_terminal(self, execution_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the execution has an ``endDate`` and is not PAUSED; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get_execution(execution_id)
            state = execution["state"]
            if state.get("endDate") and state["current"] != "PAUSED":
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} still {state['current']} after {timeout} s")
            time.sleep(0.05)

    def terminal_time(self, execution_id: str) -> float:
        """Epoch seconds at which the simulator moved the execution to its terminal state (``endDate``)."""
        return parse_instant(self.get_execution(execution_id)["state"]["endDate"])

    def add_fault(self, **rule: Any) -> None:
        """Add a fault-injection rule through the simulator's admin API (``POST /_simulator/faults``)."""
        self.session.post(f"{self.url}/_simulator/faults", json=rule, timeout=30).raise_for_status()

    def clear_faults(self) -> None:
        """Remove every fault-injection rule."""
        self.session.delete(f"{self.url}/_simulator/faults", timeout=30).raise_for_status()

    def stop(self) -> None:
        """Stop the simulator process (SIGINT first, so it can close its sockets)."""
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def parse_instant(text: str) -> float:
    """Epoch seconds of a Kestra ``Instant`` (``Z`` suffix, 0-9 fractional digits)."""
    value = text.replace("Z", "+00:00")
    match = _FRACTION.search(value)
    if match:
        value = value.replace(match.group(0), "." + (match.group(1) + "000000")[:6], 1)
    return datetime.fromisoformat(value).astimezone(timezone.utc).timestamp()


def start_simulator(
    log_path: Path, *, startup_timeout: float = 60.0, extra_args: tuple[str, ...] = ()
) -> BenchServer:
    """Start ``kestra-sim`` on a free port (output to ``log_path``) and wait until it answers."""
    script = Path(sys.executable).with_name("kestra-sim")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(script), "--port", "0", *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    deadline = time.monotonic() + startup_timeout
    url = None
    while url is None and process.poll() is None and time.monotonic() < deadline:
        found = _URL_PATTERN.search(log_path.read_text())
        url = found.group(0) if found else None
        time.sleep(0.1)
    if url is None:
        process.kill()
        raise RuntimeError(f"kestra-sim did not print its URL; see {log_path}")
    server = BenchServer(url=url, process=process)
    while time.monotonic() < deadline:
        try:
            if server.session.get(f"{url}/api/v1/configs", timeout=5).ok:
                return server
        except requests.ConnectionError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"kestra-sim at {url} did not answer; see {log_path}")


ISSUE12_CONN_ID = "kestra_bench"


@contextlib.contextmanager
def issue12_simulator(workdir: Path, name: str) -> Iterator[BenchServer]:
    """A simulator of its own for one issue-12 benchmark (journal large enough for 5,000 polling
    triggers), with ``AIRFLOW_CONN_KESTRA_BENCH`` pointing at it while the block runs."""
    server = start_simulator(workdir / f"kestra-sim-{name}.log", extra_args=("--journal-size", "1000000"))
    variable = f"AIRFLOW_CONN_{ISSUE12_CONN_ID.upper()}"
    previous = os.environ.get(variable)
    os.environ[variable] = server.connection_uri()
    try:
        yield server
    finally:
        server.stop()
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous
