"""Issue 12, goal 5: how long the FIRST Kestra trigger stalls a triggerer's event loop.

A fresh interpreter first imports what a running Airflow 3 triggerer already has loaded
(``airflow.jobs.triggerer_job_runner``, which brings Airflow, the Task SDK, httpx and structlog), then
starts an asyncio loop with a 5 ms ticker and does on that loop what ``TriggerRunner.create_triggers`` and
``run_trigger`` do: ``import_string`` of the trigger's class path, build it from the kwargs the operator
defers with by default (log streaming on), run it until its event, ``cleanup()``. The worst ticker lateness
is the stall; the modules the trigger pulled in on the loop are listed (requests, yaml and the sync hook
have no business in a triggerer). The execution is a 1 s ``Sleep`` after one log line.

The second half of goal 5 (start-up of 5,000 triggers <= 1 s of stall) is measured by
``bench_defaults_deferred.py --count 5000`` (row "start-up stall").

Goal: first trigger stalls its loop <= 50 ms. Usage (subprocess):
``python bench_startup_stall.py URL USERNAME PASSWORD CONN_ID REPORT_PATH``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_report import BenchRow

if TYPE_CHECKING:
    from bench_server import BenchServer

BENCH = "12.5 First-trigger loop stall"
SELECT = {12, 125}
GOAL_STALL_SECONDS = 0.050
TRIGGER_CLASS = "airflow_provider_kestra.triggers.kestra.KestraExecutionTrigger"
HEAVY = ("requests", "yaml", "httpx", "airflow_provider_kestra.hooks.kestra", "urllib3", "starlette")
FLOW_ID = "firsttrigger"
FLOW_SOURCE = f"""id: {FLOW_ID}
namespace: bench
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello from the first trigger"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
"""


def operator_default_kwargs(conn_id: str, execution_id: str) -> dict[str, Any]:
    """The kwargs ``KestraTriggerExecutionOperator._defer`` passes with the operator's defaults."""
    return {
        "kestra_conn_id": conn_id,
        "execution_id": execution_id,
        "success_states": ["SUCCESS"],
        "poll_interval": 5.0,
        "deadline": None,
        "hook_params": {},
        "stream_logs": True,
        "log_level": "INFO",
        "log_cursor": None,
        "cancel_on_kill": True,
    }


def _import_string(dotted_path: str) -> Any:
    """The triggerer's ``import_string`` (kept here: ``bench_log_relay`` would load requests early)."""
    try:
        from airflow._shared.module_loading import import_string
    except ImportError:  # Airflow 2
        from airflow.utils.module_loading import import_string  # type: ignore[no-redef]
    return import_string(dotted_path)


async def _first_trigger(conn_id: str, execution_id: str) -> dict[str, Any]:
    worst, ticks = 0.0, 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst, ticks
        while not stop.is_set():
            expected = time.monotonic() + 0.005
            await asyncio.sleep(0.005)
            worst = max(worst, time.monotonic() - expected)
            ticks += 1

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.1)
    worst = 0.0
    before = set(sys.modules)
    started = time.perf_counter()
    trigger_class = _import_string(TRIGGER_CLASS)  # TriggerRunner.create_triggers does this on the loop
    import_seconds = time.perf_counter() - started
    trigger = trigger_class(**operator_default_kwargs(conn_id, execution_id))
    status = "no event"
    try:
        async for event in trigger.run():
            status = str(event.payload.get("status"))
            break
    finally:
        await trigger.cleanup()
    stop.set()
    await tick
    loaded = sorted(set(sys.modules) - before)
    return {
        "worst_stall": worst,
        "import_seconds": import_seconds,
        "status": status,
        "heavy": [name for name in HEAVY if name in loaded],
        "provider_modules": [name for name in loaded if name.startswith("airflow_provider_kestra")],
        "modules_loaded": len(loaded),
    }


def main(argv: list[str]) -> int:
    """Create the execution (plain requests, before the loop), then measure the first trigger."""
    url, username, password, conn_id, report_path = argv
    import airflow.jobs.triggerer_job_runner  # noqa: F401 - what a triggerer process has loaded

    already = [name for name in HEAVY if name in sys.modules]
    import requests  # setup only; listed in "already" when the triggerer has it anyway

    requests_preloaded = "requests" in already
    with requests.Session() as session:
        session.auth = (username, password)
        created = session.post(f"{url}/api/v1/main/executions/bench/{FLOW_ID}", timeout=30)
        created.raise_for_status()
        execution_id = created.json()["id"]
    if not requests_preloaded:
        for name in [
            name for name in sys.modules if name == "requests" or name.startswith(("requests.", "urllib3"))
        ]:
            del sys.modules[name]  # so the trigger's own import of requests is seen (and paid) again
    report = asyncio.run(_first_trigger(conn_id, execution_id))
    report["preloaded"] = already
    Path(report_path).write_text(json.dumps(report))
    return 0


def measure_first_trigger(server: BenchServer, conn_id: str, workdir: Path) -> dict[str, Any]:
    """Deploy the flow and run :func:`main` in a fresh interpreter."""
    server.deploy_flow(FLOW_SOURCE, FLOW_ID)
    report_path = workdir / "first-trigger.json"
    args = [server.url, server.username, server.password, conn_id, str(report_path)]
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), *args], capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0 or not report_path.exists():
        tail = done.stderr.strip().splitlines()
        raise RuntimeError(tail[-1] if tail else f"exit {done.returncode}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    return report


def stall_rows(reports: list[dict[str, Any]]) -> list[BenchRow]:
    """The median worst stall over the samples (judged), the samples and what was imported on the loop."""
    stalls = sorted(report["worst_stall"] for report in reports)
    median = stalls[len(stalls) // 2]
    first = reports[0]
    return [
        BenchRow(
            BENCH,
            "fresh triggerer process (triggerer_job_runner imported), operator-default kwargs",
            "worst loop stall while the first trigger starts and runs (median of samples)",
            f"{median * 1000:.0f} ms",
            goal="<= 50 ms",
            met=median <= GOAL_STALL_SECONDS,
            note=(
                f"samples {', '.join(f'{s * 1000:.0f}' for s in stalls)} ms (5 ms ticker); "
                "import_string of the "
                f"trigger {first['import_seconds'] * 1000:.0f} ms; imported on the loop: "
                f"{', '.join(first['heavy']) or 'nothing heavy'} and "
                f"{len(first['provider_modules'])} provider modules ({first['modules_loaded']} modules in "
                f"all); already loaded by the triggerer: "
                f"{', '.join(first['preloaded']) or 'none'}; event {first['status']}"
            ),
        )
    ]


def _rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """``run.py``'s hook (``--only 12`` or ``125``): 3 samples (1 with ``--quick``)."""
    if not selected & SELECT:
        return []
    from bench_server import ISSUE12_CONN_ID, issue12_simulator

    print("12.5 First-trigger loop stall ...", flush=True)
    with issue12_simulator(workdir, "first-trigger") as server:
        try:
            reports = [
                measure_first_trigger(server, ISSUE12_CONN_ID, workdir) for _ in range(1 if quick else 3)
            ]
        except Exception as err:
            return [BenchRow(BENCH, "first trigger", "all", "n/a", note=str(err)[:300])]
    return stall_rows(reports)


def rows_if_selected(selected: set[int], workdir: Path, quick: bool) -> list[BenchRow]:
    """:func:`_rows_if_selected` with the load average at its start and end in every note."""
    from bench_machine import load_average
    from bench_report import with_load

    start = load_average()
    rows = _rows_if_selected(selected, workdir, quick)
    return with_load(rows, start, load_average()) if rows else rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
