"""Airflow 3 the distributed way, on one machine: CeleryExecutor, Redis, PostgreSQL, two Celery workers,
two triggerers, a scheduler, a dag-processor and an api-server, each its own process group.

Why: ``tests/support/airflow_stack.py`` runs the LocalExecutor with SQLite, where one
triggerer holds every trigger and a task can only ever run in one place. Issue 10 is about what happens
in production deployments: a trigger handed to another triggerer when its triggerer dies, a task retried
on another worker after its worker was killed, and triggers spread over several triggerers. This harness
starts that topology from the machine's PostgreSQL and Redis binaries (Debian packages ``postgresql`` and
``redis-server``) and a virtualenv with ``apache-airflow[celery,postgres]`` (``scripts/run-distributed.sh``
builds both), on free loopback ports, in throw-away directories, and always stops what it started.

* PostgreSQL: a private cluster (``initdb`` as the ``postgres`` user when run as root), ``trust`` auth on
  127.0.0.1, durability off (``fsync=off``): a test database, not a server.
* Redis: ``redis-server --save "" --appendonly no`` (no persistence), the Celery broker.
* Each Airflow process gets ``KESTRA_DIST_PROCESS=<role>``; ``kestra_distributed_hostname.hostname`` (the
  ``hostname_callable``) makes it the ``hostname`` Airflow records for task instances (the worker) and
  jobs (the triggerer), so a test can tell which process to kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.airflow_stack import (
    AirflowProcessGroup,
    airflow_environment,
    api_server_answers,
    free_loopback_port,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

HERE = Path(__file__).resolve().parent
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", *TRIGGERERS, *WORKERS)


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` (Debian's layout), else PATH's."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parent.parent.name.isdigit()),
        key=lambda p: int(p.parent.parent.name),
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def missing_system_tools() -> list[str]:
    """The Debian packages this harness needs and the machine lacks (empty when all are there)."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


class PostgresCluster:
    """A private PostgreSQL cluster in a temporary directory, on a free port, with database ``airflow``.

    As root, the cluster belongs to the ``postgres`` system user (PostgreSQL refuses to run as root);
    otherwise to the current user.
    """

    def __init__(self, root: Path, user: str = "airflow", database: str = "airflow") -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.user = user
        self.database = database
        self.port = free_loopback_port()
        self._owner = "postgres" if os.geteuid() == 0 else None

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def celery_result_backend(self) -> str:
        return f"db+postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._owner is not None:
            command = ["runuser", "-u", self._owner, "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.data.mkdir()
        if self._owner is not None:
            entry = pwd.getpwnam(self._owner)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
            self.log.touch()
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c max_connections=400 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start"
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)


class RedisServer:
    """``redis-server`` on a free loopback port, without persistence (the Celery broker)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_loopback_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "redis.log").open("wb")
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_port(self.port, 30, "redis-server")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None


class AirflowDistributedStack(AirflowProcessGroup):
    """PostgreSQL, Redis and the Airflow processes of one distributed test session.

    Use it as a context manager: leaving the block stops every process group, Redis and PostgreSQL, and
    removes their directories (the Airflow home is kept: it is the caller's, with the process logs).
    ``timings`` records how long each start-up phase took.
    """

    PROCESSES = AIRFLOW_PROCESSES
    SQL_PARAM = "%s"
    RUN_POLL_SECONDS = 2.0

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        worker_concurrency: int = 12,
        triggerer_capacity: int = 35,
        python: str = sys.executable,
    ) -> None:
        super().__init__(home, python)
        self.dags_folder = dags_folder
        self.worker_concurrency = worker_concurrency
        self.triggerer_capacity = triggerer_capacity
        self.services_root = Path(tempfile.mkdtemp(prefix="kestra-distributed-"))
        self.services_root.chmod(0o755)  # the postgres user must reach its cluster directory
        self.postgres = PostgresCluster(self.services_root / "postgres")
        self.redis = RedisServer(self.services_root / "redis")
        self.api_port = free_loopback_port()
        self.env = self._environment(extra_env or {})
        self.timings: dict[str, float] = {}
        self._killed: set[str] = set()
        self._db: Any = None

    def _environment(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        env = airflow_environment(self.home, self.dags_folder, self.api_port)
        python_path = [str(HERE), *filter(None, [env.get("PYTHONPATH")])]
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(python_path),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": "128",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "128",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "kestra_distributed_hostname.hostname",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.sqlalchemy_url,
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": self.postgres.celery_result_backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                # A killed worker's tasks are noticed after 20 s (default 300 s) and retried elsewhere;
                # tasks stuck queued on it (prefetched) are requeued after 60 s (default 600 s).
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
                # A killed triggerer's triggers go to the other one after 10 s without a heartbeat.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__TRIGGERER__CAPACITY": str(self.triggerer_capacity),
            }
        )
        env.update(extra_env)
        return env

    # -- lifecycle -------------------------------------------------------------------------------------
    def _timed(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.monotonic() - started, 1)

    def start(self, ready_timeout: float = 240.0) -> None:
        """PostgreSQL, Redis, ``airflow db migrate``, then every Airflow process; returns once the
        api-server answers, both workers are ready and both triggerers heartbeat."""
        began = time.monotonic()
        self.postgres.start()
        self._timed("postgres", began)
        mark = time.monotonic()
        self.redis.start()
        self._timed("redis", mark)
        mark = time.monotonic()
        self.airflow("db", "migrate", timeout=600)
        self._timed("db migrate", mark)
        mark = time.monotonic()
        for name in AIRFLOW_PROCESSES:
            self.start_process(name)
        self._wait_ready(ready_timeout)
        self._timed("airflow processes ready", mark)
        self._timed("stack start", began)

    def _command(self, name: str) -> list[str]:
        if name in WORKERS:
            return [
                "celery",
                "worker",
                "--concurrency",
                str(self.worker_concurrency),
                "--celery-hostname",
                f"{name}@%h",
                "--skip-serve-logs",
                "--without-gossip",
                "--without-mingle",
            ]
        if name in TRIGGERERS:
            return ["triggerer", "--skip-serve-logs"]
        return [name]

    def _env_for(self, role: str) -> dict[str, str]:
        """Every process and CLI command runs with ``KESTRA_DIST_PROCESS=<role>`` (the hostname Airflow
        records, see the module docstring)."""
        return {**self.env, "KESTRA_DIST_PROCESS": role}

    def _exited_on_purpose(self, key: str) -> bool:
        return key in self._killed

    def start_process(self, name: str) -> None:
        """Start (or start again, after a kill) one Airflow process in its own process group."""
        self._start(name, *self._command(name))
        self._killed.discard(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` (default SIGKILL) to the whole process group of ``name`` (the worker's pool and
        task processes die with it); returns the group id."""
        process = self._processes[name]
        self._killed.add(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        return process.pid

    def stop(self) -> None:
        """Stop every Airflow process group, then Redis and PostgreSQL."""
        super().stop()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        self.redis.stop()
        self.postgres.stop()
        shutil.rmtree(self.services_root, ignore_errors=True)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        api_ok = False
        while time.monotonic() < deadline:
            self.raise_if_a_process_died()
            api_ok = api_ok or api_server_answers(self.api_port)
            workers_ok = all(" ready." in self.process_log(name) for name in WORKERS)
            triggerers = {row[0] for row in self.query(_ALIVE_TRIGGERERS)}
            if api_ok and workers_ok and set(TRIGGERERS) <= triggerers:
                return
            time.sleep(1)
        raise TimeoutError(f"the stack was not ready within {timeout}s\n{self.diagnostics()}")

    # -- commands and queries --------------------------------------------------------------------------
    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the metadata DB ([] while the schema is not there yet)."""
        import psycopg2

        try:
            if self._db is None or self._db.closed:
                self._db = psycopg2.connect(
                    host="127.0.0.1", port=self.postgres.port, user="airflow", dbname="airflow"
                )
                self._db.autocommit = True
            with self._db.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        except psycopg2.errors.UndefinedTable:
            return []
        except psycopg2.OperationalError:
            self._db = None
            return []

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run: task_id, map_index, state, try_number, hostname, pid."""
        rows = self.query(
            "SELECT task_id, map_index, state, try_number, hostname, pid FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            dag_id,
            run_id,
        )
        keys = ("task_id", "map_index", "state", "try_number", "hostname", "pid")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def triggers_per_triggerer(self) -> dict[str, int]:
        """How many triggers each triggerer holds now (by the role name it runs under)."""
        rows = self.query(
            "SELECT j.hostname, count(*) FROM trigger t JOIN job j ON t.triggerer_id = j.id "
            "GROUP BY j.hostname"
        )
        return {str(host): int(count) for host, count in rows}

    def trigger_job_hosts(self, dag_id: str, run_id: str) -> set[str]:
        """The triggerers (role names) that ran any trigger of this run."""
        return set().union(*self.trigger_hosts_per_task(dag_id, run_id).values())

    def trigger_hosts_per_task(self, dag_id: str, run_id: str) -> dict[str, set[str]]:
        """For each try that deferred (``task_id=.../map_index=.../attempt=N``), the triggerers (role names)
        that ran its trigger: two names mean the trigger moved from one triggerer to the other."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        job_ids: dict[str, set[int]] = {}
        for path in folder.glob("task_id=*/**/attempt=*.log.trigger.*.log"):
            job_id = path.name.rsplit(".", 2)[-2]
            attempt = path.name.split(".log.trigger.", 1)[0]
            if job_id.isdigit():
                job_ids.setdefault(f"{path.parent.relative_to(folder)}/{attempt}", set()).add(int(job_id))
        every_id = sorted({job_id for ids in job_ids.values() for job_id in ids})
        rows = self.query("SELECT id, hostname FROM job WHERE id = ANY(%s)", every_id) if every_id else []
        host_of = {int(job_id): str(host) for job_id, host in rows}
        return {task: {host_of.get(j, str(j)) for j in ids} for task, ids in job_ids.items()}

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """Every log file of one task instance (each try and its triggerer part), concatenated."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("attempt=*.log*")))

    def describe(self) -> str:
        """One line for the test output: ports and timings."""
        return json.dumps(
            {
                "api": self.api_port,
                "postgres": self.postgres.port,
                "redis": self.redis.port,
                "timings": self.timings,
            }
        )


_ALIVE_TRIGGERERS = (
    "SELECT hostname FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
    "AND latest_heartbeat > now() - interval '10 seconds'"
)
