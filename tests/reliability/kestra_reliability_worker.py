"""An Airflow worker that can be killed: run an operator's ``execute`` in a child process.

``dag.test()`` runs tasks inside the test process, so it cannot show what happens when the worker dies after
the Kestra execution was created, or when a user kills a running task (Airflow's task runner answers SIGTERM
by calling the operator's ``on_kill``). :class:`KestraWorkerProcess` starts this file as a script that builds
the operator from JSON keyword arguments, gives it the context Airflow would (task instance identity, try
number, an XCom sink), installs the task runner's SIGTERM behaviour and runs ``execute``. The parent can
SIGKILL it (a worker dying) or SIGTERM it (a user kill), then run the next try.

Run as a script: ``python kestra_reliability_worker.py '<json spec>'``; prints one JSON line
``{"result": ..., "xcom": {...}, "rss_kb_before": ..., "peak_rss_kb": ...}`` (``"error"`` instead of
``"result"`` when the task failed): the resident size just before ``execute`` and the peak during it (Linux)
show what the task itself needed in memory.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import IO, Any


@dataclass(frozen=True)
class KestraWorkerTry:
    """One Airflow task try as the worker sees it."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    operator_kwargs: dict[str, Any]
    map_index: int = -1
    operator: str = "airflow_provider_kestra.operators.kestra.KestraTriggerExecutionOperator"

    def spec(self) -> str:
        return json.dumps(self.__dict__)


class KestraWorkerProcess:
    """One task try running in a child process; always reaped when the ``with`` block ends."""

    def __init__(self, task_try: KestraWorkerTry) -> None:
        self.task_try = task_try
        self._process: subprocess.Popen[bytes] | None = None
        # Files, not pipes: a chatty task must never block on a full pipe nobody reads yet.
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> KestraWorkerProcess:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), self.task_try.spec()],
            env=os.environ.copy(),
            stdout=self._stdout,
            stderr=self._stderr,
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(timeout=30)
        self._stdout.close()
        self._stderr.close()

    def signal(self, signum: int) -> None:
        """Send ``signum`` (SIGKILL: the worker dies; SIGTERM: Airflow kills the task)."""
        assert self._process is not None
        self._process.send_signal(signum)

    def finish(self, timeout: float = 120.0) -> tuple[int, dict[str, Any], str]:
        """Wait for the child; its exit code, its JSON report (empty if it died) and its output's end.

        The output is the task's log (stderr, then stdout, where Airflow's logging may write).
        """
        assert self._process is not None
        code = self._process.wait(timeout=timeout)
        stdout = _read(self._stdout)
        report: dict[str, Any] = {}
        for line in stdout.splitlines():
            if line.startswith("{") and '"xcom"' in line:
                report = json.loads(line)
        return code, report, _read(self._stderr)[-20_000:] + stdout[-20_000:]


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace")


class _WorkerTaskInstance(SimpleNamespace):
    """The parts of Airflow's task instance an operator uses: identity, try number and XCom."""

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcom.get(key)


def worker_context(task_try: KestraWorkerTry, operator: Any) -> dict[str, Any]:
    """The execution context Airflow gives ``operator`` for this try (``max_tries`` as on a first run)."""
    ti = _WorkerTaskInstance(
        dag_id=task_try.dag_id,
        run_id=task_try.run_id,
        task_id=task_try.task_id,
        try_number=task_try.try_number,
        map_index=task_try.map_index,
        max_tries=int(operator.retries or 0),
        start_date=datetime.now(timezone.utc),
        task=operator,
        xcom={},
    )
    dag = SimpleNamespace(dag_id=task_try.dag_id)
    dag_run = SimpleNamespace(dag_id=task_try.dag_id, run_id=task_try.run_id, conf={})
    return {
        "ti": ti,
        "task_instance": ti,
        "dag": dag,
        "dag_run": dag_run,
        "run_id": task_try.run_id,
        "task": operator,
    }


PEAK_RSS_RESET = Path("/proc/self/clear_refs")
"""Writing ``5`` here resets the kernel's peak resident size (Linux), so start-up does not hide the task's."""


def reset_peak_rss_kb() -> int:
    """Reset the peak resident size to the current one and return it (kB)."""
    gc.collect()
    PEAK_RSS_RESET.write_text("5")
    return proc_status_kb("VmRSS")


def proc_status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``: resident now, ``VmHWM``: peak resident)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def build_operator(task_try: KestraWorkerTry) -> Any:
    """The operator of this try, built from its class path and keyword arguments."""
    module_name, _, class_name = task_try.operator.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(
        task_id=task_try.task_id, **task_try.operator_kwargs
    )


def _main(spec: str) -> int:
    task_try = KestraWorkerTry(**json.loads(spec))
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)

    rss_before_kb = reset_peak_rss_kb()

    def report(**fields: Any) -> None:
        memory = {"rss_kb_before": rss_before_kb, "peak_rss_kb": proc_status_kb("VmHWM")}
        print(json.dumps({**fields, **memory, "xcom": context["ti"].xcom}, default=repr), flush=True)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        operator.on_kill()
        report(error="killed by SIGTERM")
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = operator.execute(context)
    except Exception as err:
        report(error=f"{type(err).__name__}: {err}")
        return 1
    report(result=result)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
