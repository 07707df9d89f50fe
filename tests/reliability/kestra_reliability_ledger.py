"""The Kestra side of the reliability checks: which executions an Airflow task left behind.

Executions are read straight from the simulator's store (inside its event loop), not through the provider's
hook: the hook is what is under test, and its label search must not be the judge of its own duplicates.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from support.kestra_side import labels_of, state_of

from airflow_provider_kestra.utils.state import is_terminal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kestra_reliability_recorder import KestraReliabilityRecorder

    from airflow_provider_kestra.testing import KestraSimulator

TRY_NUMBER_LABEL = "airflow.try_number"
KILLED_STATES = frozenset({"KILLED", "KILLING"})


def task_labels(dag_id: str, run_id: str, task_id: str = "run") -> dict[str, str]:
    """The labels the trigger operator puts on every execution of one task instance (all its tries)."""
    return {"airflow.dag_id": dag_id, "airflow.run_id": run_id, "airflow.task_id": task_id}


class KestraExecutionLedger:
    """Counts the executions of one simulator by label and records duplicates and orphans."""

    def __init__(self, sim: KestraSimulator) -> None:
        self.sim = sim

    def executions(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Deep copies of every stored execution carrying all of ``labels``."""
        wanted = dict(labels)

        def matching() -> list[dict[str, Any]]:
            return [
                copy.deepcopy(execution)
                for execution in self.sim.store.executions.values()
                if wanted.items() <= labels_of(execution).items()
            ]

        return list(self.sim.call(matching))

    def execution(self, execution_id: str) -> dict[str, Any]:
        return dict(self.sim.call(lambda: copy.deepcopy(self.sim.store.executions[execution_id])))

    def wait_for_running(self, labels: Mapping[str, str], timeout: float = 60.0) -> dict[str, Any]:
        """The first execution with ``labels`` once it is RUNNING (the worker has created it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.executions(labels) if state_of(e) == "RUNNING"]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no RUNNING execution with labels {dict(labels)} within {timeout}s")

    def settle(self, labels: Mapping[str, str], timeout: float = 5.0) -> list[dict[str, Any]]:
        """The executions with ``labels`` once all are terminal, or as they are after ``timeout``.

        A kill is asynchronous in Kestra (KILLING, then KILLED), so a short grace period is given.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.executions(labels)
            if all(is_terminal(state_of(e)) for e in found) or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def account(
        self,
        recorder: KestraReliabilityRecorder,
        labels: Mapping[str, str],
        *,
        expected: int,
        killed: int = 0,
        running: int = 0,
    ) -> list[dict[str, Any]]:
        """Record and check the executions of one task instance: ``expected`` in all, none running.

        Each try that started an execution must have started exactly one (a retry that reattached to an
        earlier try's execution started none); every execution must have ended. ``killed`` is how many a
        deadline or a person's action killed: any other KILLED execution was killed without cause. ``running``
        is how many the scenario leaves running on purpose (a try stopped without cause: the next try would
        reattach); they are not orphans, and they are killed here so they do not outlive the test.
        """
        found = self.settle(labels, timeout=5.0 if not running else 1.0)
        per_try = Counter(int(labels_of(e).get(TRY_NUMBER_LABEL, "0")) for e in found)
        still_running = [
            e for e in found if not is_terminal(state_of(e)) and state_of(e) not in KILLED_STATES
        ]
        was_killed = [e for e in found if state_of(e) in KILLED_STATES]
        without_cause = max(0, len(was_killed) - killed)
        recorder.executions(dict(per_try), max(0, len(still_running) - running), without_cause)
        summary = [(e["id"], labels_of(e).get(TRY_NUMBER_LABEL), state_of(e)) for e in found]
        if running:
            from airflow_provider_kestra.hooks.kestra import KestraHook

            hook = KestraHook("kestra_default")
            for execution in still_running[:running]:
                hook.kill_execution(execution["id"])  # the test's own clean-up, after the count
        assert all(count == 1 for count in per_try.values()), f"a try started several executions: {summary}"
        assert len(found) == expected, f"expected {expected} execution(s), found {summary}"
        assert len(still_running) == running, f"executions left running: {summary}"
        assert not without_cause, f"executions killed without a deadline or a person's action: {summary}"
        return found
