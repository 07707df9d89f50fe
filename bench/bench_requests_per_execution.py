"""Issue 12, goal 3: HTTP requests per execution for a deferred operator run with the operator's defaults.

Real Airflow: a DAG with one ``KestraTriggerExecutionOperator(deferrable=True)`` and otherwise its defaults
(log streaming on, INFO, poll interval 5 s) runs with ``dag.test()`` (which runs the deferred trigger
inline, to its end) against the simulator, in a fresh interpreter with a throw-away SQLite metadata DB.
The flow logs three lines, sleeps 12 s, logs two more. Every request the simulator answered during the
run is read from its request journal and broken down by route.

Goal: <= 6 requests in total.

Usage (subprocess): ``python bench_requests_per_execution.py URL REPORT_PATH`` (the connection comes from
``AIRFLOW_CONN_KESTRA_BENCH``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_http_counter import HttpRequestCounter, by_route, format_routes, journal_entries
from bench_report import BenchRow

if TYPE_CHECKING:
    from bench_server import BenchServer

BENCH = "12.3 Requests per execution (defaults)"
SELECT = {12, 123}
GOAL_REQUESTS = 6
REPO = Path(__file__).resolve().parent.parent
FLOW_ID = "twelve"
FLOW_SOURCE = f"""id: {FLOW_ID}
namespace: bench
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message:
      - "starting the job"
      - "reading the input"
      - "input has 3 rows"
  - id: work
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT12S
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message:
      - "wrote the output"
      - "done"
"""


def main(argv: list[str]) -> int:
    """Run the DAG once with ``dag.test()`` and write the journal's entries for the run."""
    url, report_path = argv
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))  # the test helpers' package, ``support``
    from support.dag_runner import build_dag, register_dag

    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    dag = build_dag(f"bench_issue12_requests_{int(time.time())}")
    with dag:
        KestraTriggerExecutionOperator(
            task_id="run_flow",
            namespace="bench",
            flow_id=FLOW_ID,
            deferrable=True,
            kestra_conn_id="kestra_bench",
        )
    register_dag(dag)
    counter = HttpRequestCounter(url).start()
    started = time.time()
    dag_run = dag.test()
    seconds = time.time() - started
    entries = journal_entries(counter)
    state = dag_run.state.value if hasattr(dag_run.state, "value") else str(dag_run.state)
    report = {"state": state, "seconds": seconds, "entries": entries}
    Path(report_path).write_text(json.dumps(report))
    return 0


def _airflow_env(workdir: Path) -> dict[str, str]:
    home = workdir / "airflow-dagtest"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
    )
    return env


def measure_requests(server: BenchServer, workdir: Path) -> dict[str, Any]:
    """Migrate a throw-away metadata DB, run :func:`main` in a fresh interpreter, return its report."""
    server.deploy_flow(FLOW_SOURCE, FLOW_ID)
    env = _airflow_env(workdir)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    report_path = workdir / "requests-per-execution.json"
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), server.url, str(report_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=str(REPO),
    )
    if done.returncode != 0 or not report_path.exists():
        tail = done.stderr.strip().splitlines()
        raise RuntimeError(tail[-1] if tail else f"exit {done.returncode}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    return report


def requests_rows(report: dict[str, Any]) -> list[BenchRow]:
    """The judged total, and the breakdown by route in the note."""
    entries = [entry for entry in report["entries"] if not entry["path"].startswith("/_simulator")]
    routes = by_route(entries)
    total = len(entries)
    return [
        BenchRow(
            BENCH,
            "dag.test(), deferrable operator with defaults, 12 s execution, 5 log lines",
            "HTTP requests for the whole task",
            str(total),
            goal=f"<= {GOAL_REQUESTS}",
            met=total <= GOAL_REQUESTS,
            note=f"{format_routes(routes)}; DAG run {report['state']} in {report['seconds']:.1f} s",
        )
    ]


def _rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """``run.py``'s hook (``--only 12`` or ``123``)."""
    if not selected & SELECT:
        return []
    from bench_server import issue12_simulator

    print("12.3 Requests per execution with the operator's defaults ...", flush=True)
    with issue12_simulator(workdir, "requests") as server:
        try:
            return requests_rows(measure_requests(server, workdir))
        except Exception as err:
            return [BenchRow(BENCH, "dag.test()", "all", "n/a", note=str(err)[:300])]


def standalone() -> None:  # pragma: no cover - manual use
    """``python -c 'import bench_requests_per_execution as b; b.standalone()'``: print the row."""
    from bench_report import markdown_table

    print(markdown_table(rows_if_selected({123}, Path(tempfile.mkdtemp()), quick=False)))


def rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """:func:`_rows_if_selected` with the load average at its start and end in every note."""
    from bench_machine import load_average
    from bench_report import with_load

    start = load_average()
    rows = _rows_if_selected(selected, workdir, quick)
    return with_load(rows, start, load_average()) if rows else rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
