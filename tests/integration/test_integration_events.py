"""End to end: a Kestra execution started outside Airflow schedules a DAG through an AssetWatcher.

Real scheduler, dag-processor, triggerer and api-server (``AirflowStack``) against the simulator:

* an execution started through Kestra's API (not by Airflow) leads to exactly one asset event and one DAG
  run, whose task sees the execution in ``triggering_asset_events``;
* the triggerer is killed (SIGKILL, no clean shutdown) after that event, an execution succeeds while no
  triggerer runs, the triggerer starts again: that execution fires once, the first one does not fire
  again, and an execution after the restart fires once too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest
from support.airflow_stack import AirflowStack

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="AssetWatcher and the process harness are Airflow 3"),
]

DAG_ID = "kestra_e2e_events"
ASSET = "kestra_e2e_nightly"
NAMESPACE = "airflow.e2e.events"
TIMEOUT = 120.0

FLOW = f"""id: nightly
namespace: {NAMESPACE}
inputs:
  - id: day
    type: STRING
tasks:
  - id: load
    type: io.kestra.plugin.core.log.Log
    message: "loading {{{{ inputs.day }}}}"
outputs:
  - id: day
    type: STRING
    value: "{{{{ inputs.day }}}}"
"""

DAG_FILE = f"""
from __future__ import annotations

import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger

nightly = Asset(
    name={ASSET!r},
    uri="kestra://{NAMESPACE}/nightly",
    watchers=[
        AssetWatcher(
            name="kestra_e2e_watcher",
            trigger=KestraExecutionEventTrigger(
                namespace={NAMESPACE!r},
                flow_id="nightly",
                poll_interval=1,
                hook_params={{"retry_limit": 1, "retry_delay": 0.2}},
            ),
        )
    ],
)

with DAG({DAG_ID!r}, schedule=[nightly], start_date=datetime.datetime(2024, 1, 1), catchup=False):

    @task
    def record(triggering_asset_events=None):
        return [event.extra["payload"] for event in triggering_asset_events[nightly]]

    record()
"""


class AirflowEventStack(AirflowStack):
    """``AirflowStack`` that can kill one process hard and start it again (same env, log appended)."""

    def kill(self, name: str) -> None:
        process = self._processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def start_process(self, name: str) -> None:
        self._start(name, name)

    def asset_event_payloads(self) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = ? ORDER BY e.id",
            ASSET,
        )
        return [json.loads(str(row[0]))["payload"] for row in rows]

    def ledger(self) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
            "WHERE a.name = ? AND s.key LIKE 'kestra_execution_events.%'",
            ASSET,
        )
        if not rows:
            return None
        value = json.loads(str(rows[0][0]))
        return value if isinstance(value, dict) else None

    def runs(self) -> list[tuple[str, str]]:
        rows = self.query("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", DAG_ID)
        return [(str(r[0]), str(r[1])) for r in rows]

    def wait(self, what: str, check: Any, timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_if_a_process_died()
            result = check()
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.diagnostics()}")


@pytest.fixture
def sim() -> Iterator[KestraSimulator]:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as simulator:
        yield simulator


def _kestra(sim: KestraSimulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
    return KestraHook()


def _run_nightly(hook: Any, day: str) -> str:
    """Start the flow through Kestra's API, as Kestra's own schedule would, and wait for its end."""
    execution_id = str(hook.create_execution(NAMESPACE, "nightly", inputs={"day": day})["id"])
    assert (
        hook.wait_for_execution(execution_id, timeout=30, poll_interval=0.1)["state"]["current"] == "SUCCESS"
    )
    return execution_id


def test_kestra_execution_schedules_one_dag_run_and_survives_a_triggerer_kill(
    tmp_path: Path, sim: KestraSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _kestra(sim, monkeypatch)
    hook.upsert_flow(FLOW)
    dags = tmp_path / "dags"
    dags.mkdir()
    (tmp_path / "home").mkdir()
    (dags / "kestra_e2e_events.py").write_text(textwrap.dedent(DAG_FILE))
    env = {
        "AIRFLOW_CONN_KESTRA_DEFAULT": sim.connection_uri(),
        # A killed triggerer's triggers go to the next one once its heartbeat is this old.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
    }
    with AirflowEventStack(tmp_path / "home", dags, env) as stack:
        stack.wait_for_dag(DAG_ID, timeout=TIMEOUT)
        # The watcher is running once it has written its ledger (its "since" instant).
        stack.wait("the watcher's first ledger", stack.ledger)

        first = _run_nightly(hook, "2026-11-01")
        stack.wait("one asset event", lambda: len(stack.asset_event_payloads()) >= 1)
        runs = stack.wait("the DAG run", stack.runs)
        run_id = runs[0][0]
        assert stack.wait_for_run(DAG_ID, run_id, TIMEOUT) == "success", stack.diagnostics()
        payloads = stack.xcom(DAG_ID, run_id, "record")
        assert isinstance(payloads, list) and len(payloads) == 1
        assert payloads[0]["execution_id"] == first
        assert payloads[0]["state"] == "SUCCESS"
        assert payloads[0]["outputs"] == {"day": "2026-11-01"}
        assert payloads[0]["url"].endswith(f"/executions/{NAMESPACE}/nightly/{first}")
        # The event is recorded in the ledger (after the commit delay), then the triggerer dies hard.
        stack.wait(
            "the first event in the ledger", lambda: first in ((stack.ledger() or {}).get("seen") or {})
        )
        stack.kill("triggerer")

        during_gap = _run_nightly(hook, "2026-11-02")
        time.sleep(2)
        stack.start_process("triggerer")
        stack.wait("the execution of the gap", lambda: len(stack.asset_event_payloads()) >= 2)
        after_restart = _run_nightly(hook, "2026-11-03")
        stack.wait("the execution after the restart", lambda: len(stack.asset_event_payloads()) >= 3)
        time.sleep(8)  # several more polls and a ledger write: nothing may fire again

        fired = [p["execution_id"] for p in stack.asset_event_payloads()]
        assert fired == [first, during_gap, after_restart], fired
        for run_id, _state in stack.runs():
            assert stack.wait_for_run(DAG_ID, run_id, TIMEOUT) == "success", stack.diagnostics()
        seen_by_runs = [
            p["execution_id"] for run_id, _ in stack.runs() for p in stack.xcom(DAG_ID, run_id, "record")
        ]
        assert sorted(seen_by_runs) == sorted(fired)
    hook.close()
