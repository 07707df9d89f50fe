"""The simulator's in-memory repositories: flow revisions, executions, logs and internal-storage files.

Everything is kept in plain Kestra-shaped dicts so that a restart of the HTTP server (``sim.restart()``)
keeps flows, executions, logs and files: the store outlives the server and its event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend.clock import iso_duration, now_instant, parse_instant

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.backend.flows import KestraSimFlow

TERMINAL_STATES = frozenset(
    {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"}
)
FAILED_STATES = frozenset({"FAILED", "KILLED", "CANCELLED"})


def new_state() -> dict[str, Any]:
    """A fresh ``State`` in ``CREATED``."""
    now = now_instant()
    return {"current": "CREATED", "histories": [{"state": "CREATED", "date": now}], "startDate": now}


def transition(state: dict[str, Any], new: str) -> None:
    """Move ``state`` to ``new``; ``endDate``/``duration`` exist only when terminal or PAUSED."""
    if state["current"] == new:
        return
    now = now_instant()
    state["current"] = new
    state["histories"].append({"state": new, "date": now})
    if new in TERMINAL_STATES or new == "PAUSED":
        state["endDate"] = now
        seconds = (parse_instant(now) - parse_instant(state["startDate"])).total_seconds()
        state["duration"] = iso_duration(max(seconds, 0.0))
    else:
        state.pop("endDate", None)
        state.pop("duration", None)


@dataclass
class KestraSimFlowRevision:
    """One stored revision of a flow (a delete is a revision marked ``deleted``)."""

    tenant: str
    flow: KestraSimFlow
    revision: int
    updated: str
    deleted: bool = False


@dataclass
class KestraSimStore:
    """All simulator state; survives a server restart."""

    flows: dict[tuple[str, str, str], list[KestraSimFlowRevision]] = field(default_factory=dict)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)

    # -- flows -------------------------------------------------------------------------------------
    def latest_flow(self, tenant: str, namespace: str, flow_id: str) -> KestraSimFlowRevision | None:
        """The newest revision, or None if the flow never existed or is deleted."""
        revisions = self.flows.get((tenant, namespace, flow_id))
        if not revisions or revisions[-1].deleted:
            return None
        return revisions[-1]

    def flow_revision(
        self, tenant: str, namespace: str, flow_id: str, revision: int | None
    ) -> KestraSimFlowRevision | None:
        """A given revision (or the latest live one when ``revision`` is None)."""
        if revision is None:
            return self.latest_flow(tenant, namespace, flow_id)
        for item in self.flows.get((tenant, namespace, flow_id), []):
            if item.revision == revision and not item.deleted:
                return item
        return None

    def save_flow(self, tenant: str, flow: KestraSimFlow) -> KestraSimFlowRevision:
        """Append a revision (numbering continues across deletes)."""
        revisions = self.flows.setdefault((tenant, flow.namespace, flow.id), [])
        number = revisions[-1].revision + 1 if revisions else 1
        item = KestraSimFlowRevision(tenant=tenant, flow=flow, revision=number, updated=now_instant())
        revisions.append(item)
        return item

    def delete_flow(self, tenant: str, namespace: str, flow_id: str) -> KestraSimFlowRevision | None:
        """Soft-delete: a new revision marked deleted; None if there was no live flow."""
        latest = self.latest_flow(tenant, namespace, flow_id)
        if latest is None:
            return None
        item = KestraSimFlowRevision(
            tenant=tenant, flow=latest.flow, revision=latest.revision + 1, updated=now_instant(), deleted=True
        )
        self.flows[(tenant, namespace, flow_id)].append(item)
        return item

    def live_flows(self, tenant: str) -> list[KestraSimFlowRevision]:
        """Latest live revision of every flow of a tenant, sorted by namespace and id."""
        out = []
        for (flow_tenant, namespace, flow_id), _ in sorted(self.flows.items()):
            if flow_tenant == tenant and (latest := self.latest_flow(tenant, namespace, flow_id)):
                out.append(latest)
        return out

    # -- executions ------------------------------------------------------------------------------------
    def execution(self, tenant: str, execution_id: str) -> dict[str, Any] | None:
        """An execution of that tenant (deleted ones are invisible)."""
        execution = self.executions.get(execution_id)
        if execution is None or execution["tenantId"] != tenant or execution.get("deleted"):
            return None
        return execution

    def add_log(self, entry: dict[str, Any]) -> None:
        """Store a LogEntry under its execution."""
        self.logs.setdefault(entry["executionId"], []).append(entry)
