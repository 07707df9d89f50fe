"""The Kestra side of a test against the simulator: deploy flows, start, inspect and resume executions.

Integration and reliability tests use it to set the scene and to check, on Kestra's side, what the Airflow
tasks did. It talks to the simulator through ``KestraHook`` with the same ``kestra_default`` connection the
operators use. :func:`kestra_side_for` wires a simulator as that connection for one test (the
``kestra_side`` fixture of ``support.fixtures``).
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pytest

    from airflow_provider_kestra.hooks.kestra import KestraExecution, KestraHook
    from airflow_provider_kestra.testing import KestraSimulator

FLOW_NAMESPACE = "airflow.integration"
AIRFLOW_LABEL_KEYS = ("airflow.dag_id", "airflow.run_id", "airflow.task_id", "airflow.map_index")


class KestraTestSide:
    """What a test does on the Kestra side, outside Airflow: deploy flows, look at executions, resume.

    It talks to the simulator through ``KestraHook`` with the same connection the operators use.
    """

    def __init__(self, sim: KestraSimulator, flow_prefix: str) -> None:
        self.sim = sim
        self.flow_prefix = flow_prefix

    @cached_property
    def hook(self) -> KestraHook:
        from airflow_provider_kestra.hooks.kestra import KestraHook

        return KestraHook(retry_limit=2, retry_delay=0.1)

    def close(self) -> None:
        """Close the hook's HTTP session, if one was opened."""
        if "hook" in self.__dict__:
            self.hook.close()

    def flow_id(self, name: str) -> str:
        """A flow id unique to this test and profile."""
        return f"{self.flow_prefix}_{name}"

    def deploy(self, name: str, tasks_yaml: str, extra_yaml: str = "") -> str:
        """Deploy flow ``name`` (tasks given as YAML, indented two spaces) and return its flow id."""
        flow_id = self.flow_id(name)
        self.hook.upsert_flow(flow_source(flow_id, tasks_yaml, extra_yaml))
        return flow_id

    def executions_of(self, flow_id: str, labels: dict[str, str] | None = None) -> list[KestraExecution]:
        """Every execution of the flow (carrying ``labels`` when given), newest first."""
        return self.hook.search_executions(namespace=FLOW_NAMESPACE, flow_id=flow_id, labels=labels)

    def execution(self, execution_id: str) -> KestraExecution:
        return self.hook.get_execution(execution_id)

    def start(self, flow_id: str, labels: dict[str, str] | None = None, **inputs: Any) -> str:
        """Start an execution outside Airflow (for the sensor) and return its id."""
        return str(
            self.hook.create_execution(FLOW_NAMESPACE, flow_id, inputs=inputs or None, labels=labels)["id"]
        )

    def wait_for_state(self, execution_id: str, states: set[str], timeout: float = 30.0) -> str:
        """Poll until the execution is in one of ``states``; returns the state (or the last one seen)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = state_of(self.execution(execution_id))
            if state in states:
                return state
            time.sleep(0.2)
        return state


def flow_source(flow_id: str, tasks_yaml: str, extra_yaml: str = "") -> str:
    """Flow YAML in the test namespace: ``extra_yaml`` (inputs, outputs...) goes before ``tasks:``."""
    return f"id: {flow_id}\nnamespace: {FLOW_NAMESPACE}\n{extra_yaml}tasks:\n{tasks_yaml}"


def labels_of(execution: Mapping[str, Any]) -> dict[str, str]:
    """An execution's labels as a dict (Kestra sends a list of key/value pairs)."""
    return {str(item["key"]): str(item["value"]) for item in execution.get("labels") or []}


def state_of(execution: Mapping[str, Any]) -> str:
    """An execution's current state."""
    return str(execution["state"]["current"])


def state_history(execution: Mapping[str, Any]) -> list[str]:
    """Every state the execution went through, oldest first."""
    return [str(h["state"]) for h in execution["state"].get("histories") or []]


def unique_name(request: pytest.FixtureRequest, limit: int = 80) -> str:
    """The current test's name reduced to ``[a-z0-9_]`` (DAG and flow ids unique to the test)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name).strip("_").lower()[:limit]


@contextmanager
def kestra_side_for(
    sim: KestraSimulator, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KestraTestSide]:
    """``sim`` as Airflow's ``kestra_default`` connection for one test, no fault rules before or after."""
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", sim.connection_uri())
    if not AIRFLOW_V_3_0_PLUS:
        # Airflow 2's unit-test config selects LocalExecutor, which refuses SQLite as soon as a sensor's
        # dependency check loads the executor; dag.test() never uses the executor anyway.
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    sim.faults.clear()
    side = KestraTestSide(sim, unique_name(request))
    try:
        yield side
    finally:
        side.close()
        sim.faults.clear()
