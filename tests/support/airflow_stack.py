"""Run Airflow 3's real processes (api-server, scheduler, dag-processor, triggerer) for end-to-end tests.

``dag.test()`` runs tasks and triggers inline in the test process, so it cannot prove that a trigger survives
serialization and runs in the triggerer. ``AirflowStack`` starts the same set of processes as
``airflow standalone`` (LocalExecutor, SQLite) in a throw-away AIRFLOW_HOME on free loopback ports, lets a
test trigger a DAG with the CLI and watch the metadata DB, and always stops every process group it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED_RUN_STATES = frozenset({"success", "failed"})


def free_loopback_port() -> int:
    """Ask the OS for a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowStack:
    """The Airflow 3 processes of one end-to-end test, sharing a temporary AIRFLOW_HOME and SQLite DB.

    Use it as a context manager: leaving the block stops every process group, whatever happened inside.
    """

    def __init__(self, home: Path, dags_folder: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.api_port = free_loopback_port()
        self.db_path = home / "airflow.db"
        self.env = self._environment(extra_env or {})
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def _environment(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        # Start from the test process's env minus its Airflow settings: the stack must not share the
        # session's DB or unit-test configuration.
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env)
        return env

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, ready_timeout: float = 120.0) -> None:
        """Migrate the DB, then start every process and wait until the api-server answers."""
        self.airflow("db", "migrate")
        for name in AIRFLOW_PROCESSES:
            log_file = (self.home / f"{name}.log").open("wb")
            self._processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", name],
                env=self.env,
                cwd=self.home,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log_file.close()
        self._wait_for_api_server(ready_timeout)

    def start_extra(self, key: str, name: str) -> None:
        """Start one more Airflow process (e.g. a second ``triggerer``) under ``key``, logging to
        ``<key>.log``; stopped with the others."""
        log_file = (self.home / f"{key}.log").open("wb")
        self._processes[key] = subprocess.Popen(
            [sys.executable, "-m", "airflow", name],
            env=self.env,
            cwd=self.home,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()

    def signal_process(self, key: str, signum: int) -> None:
        """Send ``signum`` to the process group of one process (SIGSTOP freezes it, SIGCONT wakes it)."""
        os.killpg(self._processes[key].pid, signum)

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """A read-only query of the metadata DB (an empty list while it is locked or not there yet)."""
        return self._query(sql, *params)

    def stop(self) -> None:
        """Stop every process group started here: SIGTERM, then SIGKILL for those that linger."""
        for process in self._processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self._processes.values():
            # The group may outlive its leader (LocalExecutor workers, task supervisors): kill it whole.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self._processes.clear()

    def _wait_for_api_server(self, timeout: float) -> None:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_a_process_died()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"api-server did not answer {url} within {timeout}s\n{self.diagnostics()}")

    def _raise_if_a_process_died(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with code {process.returncode}\n{self.diagnostics()}"
                )

    # -- commands and queries --------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120.0) -> str:
        """Run an ``airflow`` CLI command; returns stdout, raises (with output) on failure."""
        completed = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
            )
        return completed.stdout

    def _query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        if not self.db_path.exists():
            return []
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            # The schema is not there yet, or the DB is locked by a writer: the caller polls again.
            return []
        finally:
            connection.close()

    def wait_for_dag(self, dag_id: str, timeout: float) -> None:
        """Wait until the dag-processor has serialized ``dag_id`` (it can be triggered from then on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_a_process_died()
            if self._query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", dag_id):
                return
            errors = self._query("SELECT filename, stacktrace FROM import_error")
            if errors:
                raise RuntimeError(f"DAG import errors: {errors}")
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout}s\n{self.diagnostics()}")

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self._query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return str(rows[0][0]) if rows else None

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        rows = self._query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id
        )
        return {str(task_id): None if state is None else str(state) for task_id, state in rows}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Poll the DB until the run finishes or ``timeout`` passes; returns the last state seen."""
        deadline = time.monotonic() + timeout
        state: str | None = None
        while time.monotonic() < deadline:
            self._raise_if_a_process_died()
            state = self.run_state(dag_id, run_id)
            if state in FINISHED_RUN_STATES:
                return state
            time.sleep(1)
        return str(state)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> object:
        """One XCom value of the run, decoded from its JSON column (``None`` when absent)."""
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
            dag_id,
            run_id,
            task_id,
            key,
        )
        return json.loads(str(rows[0][0])) if rows and rows[0][0] is not None else None

    def trigger_logs(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        """The log files the triggerer wrote for this task (``attempt=N.log.trigger.<job id>.log``)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob("attempt=*.log.trigger.*.log"))

    def process_log(self, name: str) -> str:  # also an extra process's key
        """The whole output of one of the processes (e.g. ``"triggerer"``)."""
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every log file of one task (each attempt and its triggerer part), concatenated."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*.log")))

    def diagnostics(self, tail: int = 4000) -> str:
        """The end of every process log, for assertion messages."""
        parts = []
        for name in AIRFLOW_PROCESSES:
            parts.append(f"----- {name} -----\n{self.process_log(name)[-tail:]}")
        return "\n".join(parts)
