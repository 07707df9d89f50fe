"""Run Airflow 3's real processes (api-server, scheduler, dag-processor, triggerer) for end-to-end tests.

``dag.test()`` runs tasks and triggers inline in the test process, so it cannot prove that a trigger survives
serialization and runs in the triggerer. ``AirflowStack`` starts the same set of processes as
``airflow standalone`` (LocalExecutor, SQLite) in a throw-away AIRFLOW_HOME on free loopback ports, lets a
test trigger a DAG with the CLI and watch the metadata DB, and always stops every process group it started.

``AirflowProcessGroup`` is what every end-to-end harness shares (this stack, the distributed stack in
``tests/distributed``, the browser test's api-server): the ``airflow`` CLI, starting and stopping process
groups, and the waits on the metadata DB.
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from typing_extensions import Self

AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED_RUN_STATES = frozenset({"success", "failed"})


def free_loopback_port() -> int:
    """Ask the OS for a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_environment(home: Path, dags_folder: Path, api_port: int) -> dict[str, str]:
    """The environment every process of an Airflow 3 stack starts from; each stack adds its DB and executor.

    The test process's environment minus its Airflow settings (a stack must not share the session's DB or
    unit-test configuration), one AIRFLOW_HOME, the api-server on ``api_port`` letting everyone in as
    admin, and one-second heartbeats.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
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
    return env


def api_server_answers(port: int) -> bool:
    """Whether the api-server on 127.0.0.1:``port`` answers its health check right now."""
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
    return False


class AirflowProcessGroup:
    """Airflow processes sharing one AIRFLOW_HOME, each in its own process group, plus the ``airflow`` CLI.

    A subclass sets ``env``, implements :meth:`start` and :meth:`query` (its metadata DB), and names its
    processes in ``PROCESSES``. Use it as a context manager: leaving the block stops every process group
    started here, whatever happened inside.
    """

    PROCESSES: tuple[str, ...] = AIRFLOW_PROCESSES
    """The processes whose logs :meth:`diagnostics` shows."""
    SQL_PARAM = "?"
    """The DB driver's parameter marker in :meth:`query` (``?`` for sqlite3, ``%s`` for psycopg2)."""
    RUN_POLL_SECONDS = 1.0
    """How often :meth:`wait_for_run` reads the run's state."""

    def __init__(self, home: Path, python: str = sys.executable) -> None:
        self.home = home
        self.python = python
        self.env: dict[str, str] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the processes; returns once they are ready."""
        raise NotImplementedError

    def _env_for(self, role: str) -> dict[str, str]:
        """The environment of the process ``role`` (``"cli"`` for :meth:`airflow`): ``env`` by default."""
        return self.env

    def _start(self, key: str, *airflow_args: str) -> None:
        """Start ``airflow <airflow_args>`` in a new process group under ``key``, its output appended to
        ``<key>.log`` (a process started again after a kill keeps what it wrote before)."""
        with (self.home / f"{key}.log").open("ab") as log_file:
            self._processes[key] = subprocess.Popen(
                [self.python, "-m", "airflow", *airflow_args],
                env=self._env_for(key),
                cwd=self.home,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

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
            # The group may outlive its leader (executor workers, task supervisors): kill it whole.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self._processes.clear()

    def _exited_on_purpose(self, key: str) -> bool:
        """Whether the test stopped the process ``key`` itself (its exit is then no failure)."""
        return False

    def raise_if_a_process_died(self) -> None:
        """Raise (with every process's log) if a process exited that the test did not stop."""
        for name, process in self._processes.items():
            if not self._exited_on_purpose(name) and process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with code {process.returncode}\n{self.diagnostics()}"
                )

    def wait_for_api_server(self, port: int, timeout: float) -> None:
        """Wait until the api-server on ``port`` answers; raises if a process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_if_a_process_died()
            if api_server_answers(port):
                return
            time.sleep(0.5)
        raise TimeoutError(
            f"api-server on port {port} did not answer within {timeout}s\n{self.diagnostics()}"
        )

    # -- commands and queries --------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120.0) -> str:
        """Run an ``airflow`` CLI command; returns stdout, raises (with output) on failure."""
        completed = subprocess.run(
            [self.python, "-m", "airflow", *args],
            env=self._env_for("cli"),
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

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the metadata DB, parameters marked ``SQL_PARAM`` ([] while the DB
        or its schema is not there yet: the caller polls again)."""
        raise NotImplementedError

    def wait_for_dag(self, dag_id: str, timeout: float) -> None:
        """Wait until the dag-processor has serialized ``dag_id`` (it can be triggered from then on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_if_a_process_died()
            if self.query(f"SELECT 1 FROM serialized_dag WHERE dag_id = {self.SQL_PARAM}", dag_id):
                return
            errors = self.query("SELECT filename, stacktrace FROM import_error")
            if errors:
                raise RuntimeError(f"DAG import errors: {errors}")
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout}s\n{self.diagnostics()}")

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        p = self.SQL_PARAM
        rows = self.query(f"SELECT state FROM dag_run WHERE dag_id = {p} AND run_id = {p}", dag_id, run_id)
        return str(rows[0][0]) if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Poll the DB until the run finishes or ``timeout`` passes; returns the last state seen."""
        deadline = time.monotonic() + timeout
        state: str | None = None
        while time.monotonic() < deadline:
            self.raise_if_a_process_died()
            state = self.run_state(dag_id, run_id)
            if state in FINISHED_RUN_STATES:
                return state
            time.sleep(self.RUN_POLL_SECONDS)
        return str(state)

    def process_log(self, name: str) -> str:  # also an extra process's key
        """The whole output of one of the processes (e.g. ``"triggerer"``)."""
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnostics(self, tail: int = 4000) -> str:
        """The end of every process log, for assertion messages."""
        return "\n".join(f"----- {name} -----\n{self.process_log(name)[-tail:]}" for name in self.PROCESSES)


class AirflowStack(AirflowProcessGroup):
    """The Airflow 3 processes of one end-to-end test, sharing a temporary AIRFLOW_HOME and SQLite DB.

    Use it as a context manager: leaving the block stops every process group, whatever happened inside.
    """

    def __init__(self, home: Path, dags_folder: Path, extra_env: Mapping[str, str] | None = None) -> None:
        super().__init__(home)
        self.dags_folder = dags_folder
        self.api_port = free_loopback_port()
        self.db_path = home / "airflow.db"
        self.env = airflow_environment(home, dags_folder, self.api_port)
        self.env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                **(extra_env or {}),
            }
        )

    def start(self, ready_timeout: float = 120.0) -> None:
        """Migrate the DB, then start every process and wait until the api-server answers."""
        self.airflow("db", "migrate")
        for name in AIRFLOW_PROCESSES:
            self._start(name, name)
        self.wait_for_api_server(self.api_port, ready_timeout)

    def start_extra(self, key: str, name: str) -> None:
        """Start one more Airflow process (e.g. a second ``triggerer``) under ``key``, logging to
        ``<key>.log``; stopped with the others."""
        self._start(key, name)

    def signal_process(self, key: str, signum: int) -> None:
        """Send ``signum`` to the process group of one process (SIGSTOP freezes it, SIGCONT wakes it)."""
        os.killpg(self._processes[key].pid, signum)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """A read-only query of the metadata DB (an empty list while it is locked or not there yet)."""
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

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        rows = self.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id
        )
        return {str(task_id): None if state is None else str(state) for task_id, state in rows}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> object:
        """One XCom value of the run, decoded from its JSON column (``None`` when absent)."""
        rows = self.query(
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

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every log file of one task (each attempt and its triggerer part), concatenated."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*.log")))
