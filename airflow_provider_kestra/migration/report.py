"""Where shadow runs are recorded (a JSON-lines ledger, plus XCom) and the parity report built from it.

Each shadow run appends one JSON line to ``<ledger folder>/<dag_id>.jsonl``. The folder is
``[kestra] migration_ledger_folder`` (env ``AIRFLOW__KESTRA__MIGRATION_LEDGER_FOLDER``), by default
``$AIRFLOW_HOME/kestra-migration``. A plain file needs no extra infrastructure: the report command reads
it without Airflow's metadata DB or a running Kestra. With several workers, point the option at a shared
volume (each record is appended in one ``write``), or concatenate the workers' files. The same record is
also pushed to the task's XCom ``kestra_shadow`` (visible in the UI) and summarised in the task log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from airflow_provider_kestra.migration.compare import format_differences

LEDGER_FOLDER_OPTION = "migration_ledger_folder"
LEDGER_SUFFIX = ".jsonl"
SHADOW_XCOM_KEY = "kestra_shadow"
"""XCom key of the shadow record on the Airflow task."""
VERDICTS = ("match", "mismatch", "kestra_failed", "no_verdict", "error", "airflow_failed")
"""``kestra_failed``: the flow did not succeed; ``no_verdict``: it did not finish within the budget;
``error``: the shadow run could not be started or read (the Airflow task is never failed for that);
``airflow_failed``: the Airflow task itself failed, so there was nothing to compare."""


def default_ledger_folder() -> Path:
    """``[kestra] migration_ledger_folder``, else ``$AIRFLOW_HOME/kestra-migration``."""
    from airflow.configuration import AIRFLOW_HOME, conf

    folder = conf.get("kestra", LEDGER_FOLDER_OPTION, fallback=None)
    return Path(folder).expanduser() if folder else Path(AIRFLOW_HOME) / "kestra-migration"


class KestraParityLedger:
    """Append-only JSON-lines file of shadow-run records, one file per DAG."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_ledger_folder()

    def path_for(self, dag_id: str) -> Path:
        """The ledger file of one DAG."""
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in dag_id)
        return self.folder / f"{safe}{LEDGER_SUFFIX}"

    def append(self, record: dict[str, Any]) -> Path:
        """Add one record (a single ``write`` in append mode, so concurrent tasks do not interleave)."""
        path = self.path_for(str(record["dag_id"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return path

    def read(self, dag_id: str) -> list[dict[str, Any]]:
        """Every record of the DAG, oldest first (a torn or foreign line is skipped)."""
        path = self.path_for(dag_id)
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("dag_id") == dag_id:
                records.append(record)
        return records


@dataclass
class KestraParitySummary:
    """The parity of one task over its shadow runs."""

    task_id: str
    flow: str = ""
    runs: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    airflow_seconds: list[float] = field(default_factory=list)
    kestra_seconds: list[float] = field(default_factory=list)
    last_problem: dict[str, Any] | None = None

    def add(self, record: dict[str, Any]) -> None:
        """Count one record."""
        self.runs += 1
        self.flow = f"{record.get('namespace')}.{record.get('flow_id')}"
        verdict = str(record.get("verdict"))
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        for name, values in (
            ("airflow_seconds", self.airflow_seconds),
            ("kestra_seconds", self.kestra_seconds),
        ):
            value = record.get(name)
            if isinstance(value, (int, float)):
                values.append(float(value))
        if verdict != "match":
            self.last_problem = record

    @property
    def ready(self) -> bool:
        """Every compared shadow run matched (at least one): the task can move to ``kestra`` mode.

        Runs where the Airflow task failed were not compared, so they neither count for nor against."""
        matches = self.verdicts.get("match", 0)
        return matches > 0 and matches + self.verdicts.get("airflow_failed", 0) == self.runs

    def as_dict(self) -> dict[str, Any]:
        """JSON form of the summary."""
        return {
            "task_id": self.task_id,
            "flow": self.flow,
            "runs": self.runs,
            "verdicts": self.verdicts,
            "airflow_median_seconds": _median(self.airflow_seconds),
            "kestra_median_seconds": _median(self.kestra_seconds),
            "ready_for_kestra_mode": self.ready,
            "last_problem": self.last_problem,
        }


def _median(values: list[float]) -> float | None:
    return round(median(values), 3) if values else None


def build_parity(records: list[dict[str, Any]], task_id: str | None = None) -> list[KestraParitySummary]:
    """One summary per task (sorted by task id), optionally only for ``task_id``."""
    by_task: dict[str, KestraParitySummary] = {}
    for record in records:
        tid = str(record.get("task_id"))
        if task_id is not None and tid != task_id:
            continue
        by_task.setdefault(tid, KestraParitySummary(tid)).add(record)
    return [by_task[tid] for tid in sorted(by_task)]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def format_parity_report(dag_id: str, parity: list[KestraParitySummary], ledger_path: Path) -> str:
    """The text report: one row per task, then the latest problem of each task with its diff."""
    if not parity:
        return f"DAG {dag_id}: no shadow runs recorded in {ledger_path}"
    task_width = max(4, *(len(task.task_id) for task in parity))
    flow_width = max(4, *(len(task.flow) for task in parity))
    header = (
        f"{'task':<{task_width}}  {'flow':<{flow_width}}  {'runs':>4} {'match':>5} {'mismatch':>8} "
        f"{'k-fail':>6} {'no-verd':>7} {'error':>5} {'a-fail':>6} {'airflow':>8} {'kestra':>8}  ready"
    )
    lines = [f"Parity of DAG {dag_id} ({ledger_path})", header, "-" * len(header)]
    for task in parity:
        v = task.verdicts
        lines.append(
            f"{task.task_id:<{task_width}}  {task.flow:<{flow_width}}  {task.runs:>4} {v.get('match', 0):>5} "
            f"{v.get('mismatch', 0):>8} {v.get('kestra_failed', 0):>6} {v.get('no_verdict', 0):>7} "
            f"{v.get('error', 0):>5} {v.get('airflow_failed', 0):>6} "
            f"{_seconds(_median(task.airflow_seconds)):>8} {_seconds(_median(task.kestra_seconds)):>8}  "
            f"{'yes' if task.ready else 'no'}"
        )
    lines.append("(airflow / kestra: median durations of the two sides)")
    for task in parity:
        problem = task.last_problem
        if problem is None:
            continue
        lines.append("")
        lines.append(
            f"Latest {problem.get('verdict')} of {task.task_id}: run {problem.get('run_id')}, "
            f"Kestra execution {problem.get('execution_id')} ({problem.get('execution_url') or 'no URL'})"
        )
        if problem.get("message"):
            lines.append(f"  {problem['message']}")
        if problem.get("differences"):
            lines.append(format_differences(problem["differences"]))
    return "\n".join(lines)
