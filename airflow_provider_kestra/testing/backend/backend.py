"""``KestraSimBackend``: what Kestra's services do, for the HTTP layer to call (moto's ``*Backend``).

Every operation of the API lives here as a method taking plain values (tenant, ids, parsed parameters)
and returning store objects or raising :mod:`.exceptions`; the HTTP handlers only parse a request, call
one method and render the result. Nothing here imports Starlette or knows a status code.
"""

from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_kestra.testing.backend.clock import new_kestra_id, now_instant, parse_instant
from airflow_provider_kestra.testing.backend.engine import level_at_least
from airflow_provider_kestra.testing.backend.exceptions import (
    KestraSimActionFailed,
    KestraSimActionTimeout,
    KestraSimAlreadyExists,
    KestraSimConflict,
    KestraSimConstraintViolation,
    KestraSimError,
    KestraSimHttpStatus,
    KestraSimIllegalArgument,
    KestraSimIllegalState,
    KestraSimNotFound,
    KestraSimViolation,
)
from airflow_provider_kestra.testing.backend.executions import new_execution
from airflow_provider_kestra.testing.backend.flows import (
    PAUSE,
    WEBHOOK,
    KestraSimFlow,
    flow_sources_equal,
    is_valid_label_key,
    parse_flow,
)
from airflow_provider_kestra.testing.backend.inputs import KestraSimUploadedFile, read_execution_inputs
from airflow_provider_kestra.testing.backend.pebble import KestraPebbleError, render, render_value
from airflow_provider_kestra.testing.backend.search import KestraSimFilters, sort_executions
from airflow_provider_kestra.testing.backend.store import FAILED_STATES, TERMINAL_STATES, transition
from airflow_provider_kestra.testing.backend.tasks import storage_prefix

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_provider_kestra.testing.backend.engine import KestraSimEngine
    from airflow_provider_kestra.testing.backend.store import KestraSimFlowRevision, KestraSimStore
    from airflow_provider_kestra.testing.profiles import KestraSimulatorProfile

_EXECUTION_IN_PATH = re.compile(r"/executions/([^/]+)/")
_LABEL_KEY_MESSAGE = (
    "Invalid label key. A valid key contains only lowercase letters numbers hyphens (-) "
    "underscores (_) or periods (.) and must begin with a lowercase letter."
)


def execution_age(execution: dict[str, Any]) -> float:
    """Seconds since the execution was created (its first ``CREATED`` state)."""
    created = parse_instant(execution["state"]["histories"][0]["date"])
    return (parse_instant(now_instant()) - created).total_seconds()


class KestraSimActionRule(Protocol):
    """What the backend reads of a fired ``action_timeout`` fault rule."""

    applied: bool


class KestraSimLagRule(Protocol):
    """What the backend reads of a ``search_lag`` / ``read_after_write_lag`` fault rule."""

    lag: float


class KestraSimActionFaults(Protocol):
    """Where the backend asks about the faults it decides itself (``KestraSimulatorFaults``): awaited
    action timeouts and the lag of an eventually consistent store."""

    def decide_action(self, action: str) -> KestraSimActionRule | None:
        """The fault rule that fires for ``action``, if any."""
        ...

    def decide_lag(self, kind: str) -> Any:
        """The ``search_lag`` / ``read_after_write_lag`` rule in force (a ``KestraSimLagRule``), or None."""
        ...

    def lag_fired(self, rule: Any) -> None:
        """Count an answer the rule changed."""
        ...


@dataclass(frozen=True)
class KestraSimStoredFile:
    """An internal-storage file an execution may read: its storage path and content."""

    path: str
    content: bytes


@dataclass(frozen=True)
class KestraSimFileElsewhere:
    """A file of another execution of the flow: Kestra redirects to that execution's endpoint."""

    execution_id: str


@dataclass(frozen=True)
class KestraSimDeployment:
    """What a namespace or bulk deploy did: flows deleted first, then flows created or updated."""

    deleted: list[KestraSimFlowRevision]
    saved: list[KestraSimFlowRevision]


class KestraSimBackend:
    """The simulator's services over one store and engine, for one profile."""

    def __init__(
        self,
        store: KestraSimStore,
        engine: KestraSimEngine,
        profile: KestraSimulatorProfile,
        faults: KestraSimActionFaults | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.profile = profile
        self.faults = faults

    # -- flows -----------------------------------------------------------------------------------------------
    def create_flow(self, tenant: str, source: str) -> KestraSimFlowRevision:
        """``FlowService.create``: a new flow at revision 1 (numbering continues after a delete)."""
        flow = parse_flow(source)
        if self.store.latest_flow(tenant, flow.namespace, flow.id) is not None:
            raise KestraSimAlreadyExists("Flow id already exists", "flow.id")
        return self.store.save_flow(tenant, flow)

    def update_flow(self, tenant: str, namespace: str, flow_id: str, source: str) -> KestraSimFlowRevision:
        """Update an existing flow (404 when missing); an identical source keeps its revision."""
        existing = self.store.latest_flow(tenant, namespace, flow_id)
        if existing is None:
            raise KestraSimNotFound()
        return self._update(tenant, existing, parse_flow(source))

    def _update(
        self, tenant: str, existing: KestraSimFlowRevision, flow: KestraSimFlow
    ) -> KestraSimFlowRevision:
        problems = []
        if flow.id != existing.flow.id:
            problems.append(KestraSimViolation("flow.id", "Illegal flow id update"))
        if flow.namespace != existing.flow.namespace:
            problems.append(KestraSimViolation("flow.namespace", "Illegal namespace update"))
        if problems:
            raise KestraSimConstraintViolation(problems)
        if flow_sources_equal(flow.source, existing.flow.source):
            return existing
        return self.store.save_flow(tenant, flow)

    def get_flow(
        self, tenant: str, namespace: str, flow_id: str, revision: int | None, *, allow_deleted: bool
    ) -> KestraSimFlowRevision:
        """One revision (the latest by default); deleted ones only with ``allow_deleted``."""
        revisions = self.store.flows.get((tenant, namespace, flow_id), [])
        item = None
        if revision is not None:
            item = next(
                (r for r in revisions if r.revision == revision and (allow_deleted or not r.deleted)), None
            )
        elif revisions and (allow_deleted or not revisions[-1].deleted):
            item = revisions[-1]
        if item is None:
            raise KestraSimNotFound()
        return item

    def delete_flow(self, tenant: str, namespace: str, flow_id: str) -> None:
        """Soft delete (a new revision marked deleted); 404 when there is no live flow."""
        if self.store.delete_flow(tenant, namespace, flow_id) is None:
            raise KestraSimNotFound()

    def flow_revisions(
        self, tenant: str, namespace: str, flow_id: str, *, allow_deleted: bool
    ) -> list[KestraSimFlowRevision]:
        """Every stored revision (deleted ones with ``allow_deleted``)."""
        revisions = self.store.flows.get((tenant, namespace, flow_id), [])
        return [r for r in revisions if allow_deleted or not r.deleted]

    def delete_flow_revisions(self, tenant: str, namespace: str, flow_id: str, numbers: list[int]) -> None:
        """Drop revisions; every number must be at least 1 (a bean-validation violation otherwise)."""
        if any(n < 1 for n in numbers):
            raise KestraSimConstraintViolation(
                [KestraSimViolation("deleteRevisions.revisions[0]", "must be greater than or equal to 1")]
            )
        key = (tenant, namespace, flow_id)
        if key not in self.store.flows:
            raise KestraSimNotFound()
        self.store.flows[key] = [r for r in self.store.flows[key] if r.revision not in numbers]

    def find_flows(self, tenant: str, filters: KestraSimFilters) -> list[KestraSimFlowRevision]:
        """Live flows matching ``filters``, sorted by namespace and id."""
        return [r for r in self.store.live_flows(tenant) if filters.match_flow(r)]

    def namespace_flows(self, tenant: str, namespace: str) -> list[KestraSimFlowRevision]:
        """Live flows of exactly that namespace."""
        return [r for r in self.store.live_flows(tenant) if r.flow.namespace == namespace]

    def deploy(
        self,
        tenant: str,
        sources: list[str],
        *,
        namespace: str | None,
        allow_children: bool,
        delete: bool,
    ) -> KestraSimDeployment:
        """``bulkUpdateOrCreate``: check namespaces and ids, delete missing flows first, then save each."""
        flows = [parse_flow(source) for source in sources]
        if namespace is not None:
            invalid = [
                KestraSimViolation(
                    "flow.namespace", f"{tenant}_{f.namespace}_{f.id} - flow namespace is invalid"
                )
                for f in flows
                if f.namespace != namespace and not (allow_children and f.namespace.startswith(namespace))
            ]
            if invalid:
                raise KestraSimConstraintViolation(invalid)
        ids = [f.id for f in flows]
        if len(set(ids)) < len(ids):
            raise KestraSimConstraintViolation([KestraSimViolation("flow.id", "Duplicate flow id")])
        deleted: list[KestraSimFlowRevision] = []
        if delete:
            for item in self.store.live_flows(tenant):
                if (namespace is None or item.flow.namespace == namespace) and item.flow.id not in ids:
                    self.store.delete_flow(tenant, item.flow.namespace, item.flow.id)
                    deleted.append(item)
        saved = []
        for flow in flows:
            existing = self.store.latest_flow(tenant, flow.namespace, flow.id)
            saved.append(
                self._update(tenant, existing, flow) if existing else self.store.save_flow(tenant, flow)
            )
        return KestraSimDeployment(deleted, saved)

    # -- executions ------------------------------------------------------------------------------------------
    def find_execution(self, tenant: str, execution_id: str, detail: str | None = None) -> dict[str, Any]:
        """The execution of that tenant, or ``NotFound[: detail]`` (deleted executions are invisible)."""
        execution = self.store.execution(tenant, execution_id)
        if execution is None:
            raise KestraSimNotFound(detail)
        return execution

    def _lag_rule(self, kind: str) -> KestraSimLagRule | None:
        rule: KestraSimLagRule | None = self.faults.decide_lag(kind) if self.faults is not None else None
        return rule

    def get_execution(self, tenant: str, execution_id: str, fired: list[str] | None = None) -> dict[str, Any]:
        """``GET /executions/{id}``: :meth:`find_execution`, except that under a ``read_after_write_lag``
        fault an execution younger than the lag is not found yet (its kind is appended to ``fired``)."""
        execution = self.find_execution(tenant, execution_id)
        rule = self._lag_rule("read_after_write_lag")
        if rule is not None and execution_age(execution) < rule.lag:
            assert self.faults is not None
            self.faults.lag_fired(rule)
            if fired is not None:
                fired.append("read_after_write_lag")
            raise KestraSimNotFound()
        return execution

    def executable_flow(
        self, tenant: str, namespace: str, flow_id: str, revision: int | None
    ) -> KestraSimFlowRevision:
        """``FlowService#getFlowIfExecutableOrThrow``: missing -> not found, disabled -> illegal state."""
        item = self.store.flow_revision(tenant, namespace, flow_id, revision)
        if item is None:
            raise KestraSimNotFound("Requested Flow is not found.")
        if item.flow.disabled:
            raise KestraSimIllegalState("Requested Flow is disabled.")
        return item

    def create_execution(
        self,
        item: KestraSimFlowRevision,
        labels: list[dict[str, str]],
        parts: Mapping[str, str | KestraSimUploadedFile],
        *,
        schedule_date: str | None = None,
        kind: str | None = None,
    ) -> dict[str, Any]:
        """A new execution of ``item`` with typed inputs, registered and started in the background.

        ``system.from=api`` is added unless given, where the profile's Kestra line does so.
        """
        labels = list(labels)
        if self.profile.system_from_label and not any(label["key"] == "system.from" for label in labels):
            labels.append({"key": "system.from", "value": "api"})
        execution = new_execution(item, labels, schedule_date=schedule_date, kind=kind)
        inputs = self.read_inputs(execution, item.flow.inputs, parts)
        if inputs:
            execution["inputs"] = inputs
        self.register(execution)
        return execution

    def read_inputs(
        self,
        execution: dict[str, Any],
        definitions: list[dict[str, Any]],
        parts: Mapping[str, str | KestraSimUploadedFile],
    ) -> dict[str, Any]:
        """Typed inputs from multipart ``parts``; FILE uploads are stored under the execution's ``inputs/``
        storage prefix, as Kestra does."""

        def store_file(input_id: str, upload: KestraSimUploadedFile) -> str:
            uri = f"kestra://{storage_prefix(execution)}inputs/{input_id}/{upload.filename}"
            self.store.files[(execution["tenantId"], uri)] = upload.content
            return uri

        flow = {
            "id": execution["flowId"],
            "namespace": execution["namespace"],
            "revision": execution["flowRevision"],
        }
        context = {"flow": flow, "execution": {"id": execution["id"]}}
        return read_execution_inputs(definitions, parts, store_file, context)

    def register(self, execution: dict[str, Any]) -> None:
        """Store a new execution, tell followers it exists, and start running it."""
        self.store.executions[execution["id"]] = execution
        self.engine.changed(execution)
        self.engine.launch(execution["id"])

    async def wait_until_stopped(self, execution: dict[str, Any], timeout: float = 3600) -> None:
        """Hold until the execution and its task runs are terminal (``wait=true``; Kestra's 1 h limit)."""
        await self.engine.wait_until_stopped(execution, timeout=timeout)

    def search_executions(
        self,
        tenant: str,
        filters: KestraSimFilters,
        sorts: Sequence[str],
        now: str,
        fired: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Executions of the tenant matching ``filters`` (evaluated at ``now``), sorted by ``sorts``.

        Under a ``search_lag`` fault, executions younger than the lag are left out, as from a search index
        that has not caught up with the writes yet (the kind is appended to ``fired`` when that hid one).
        """
        matches = [
            e
            for e in self.store.executions.values()
            if e["tenantId"] == tenant and not e.get("deleted") and filters.match_execution(e, now)
        ]
        rule = self._lag_rule("search_lag")
        if rule is not None:
            visible = [e for e in matches if execution_age(e) >= rule.lag]
            if len(visible) < len(matches):
                assert self.faults is not None
                self.faults.lag_fired(rule)
                if fired is not None:
                    fired.append("search_lag")
            matches = visible
        return sort_executions(sorts, matches)

    def delete_execution(
        self, tenant: str, execution_id: str, *, delete_logs: bool, delete_storage: bool
    ) -> None:
        """Mark deleted (no check that it is terminated, like Kestra), drop logs and files, stop it."""
        execution = self.find_execution(tenant, execution_id)
        execution["deleted"] = True
        if delete_logs:
            self.store.logs.pop(execution["id"], None)
        if delete_storage:
            prefix = "kestra://" + storage_prefix(execution)
            for key in [k for k in self.store.files if k[0] == tenant and k[1].startswith(prefix)]:
                del self.store.files[key]
        self.engine.forget(execution["id"])
        self.engine.changed(execution)

    def _missing(self, tenant: str, execution_id: str) -> dict[str, Any]:
        """The execution, or the bare ``HttpResponse.notFound()`` of kill and set-labels (no body in 1.x)."""
        execution = self.store.execution(tenant, execution_id)
        if execution is None:
            raise KestraSimHttpStatus(404, bodiless=True)
        return execution

    def _act(
        self, tenant: str, execution: dict[str, Any], action: str, title: str, apply: Callable[[], None]
    ) -> dict[str, Any]:
        """Apply an action; in 2.0 as a command awaited through the executor (``awaitBlockingAction``).

        There, what the executor refuses answers 409 ``Failed to execute action '<title>' on execution <id>
        (operation_id=<id>). Cause: <message>``, an ``action_timeout`` fault answers 504 (the command still
        applies unless the rule says otherwise), and the answer is the execution re-read by its id.
        """
        if not self.profile.awaited_actions:
            apply()
            return execution
        rule = self.faults.decide_action(action) if self.faults is not None else None
        if rule is not None:
            if rule.applied:
                with contextlib.suppress(KestraSimError):
                    apply()
            raise KestraSimActionTimeout("Operation timed out waiting for state transition")
        try:
            apply()
        except KestraSimError as refused:
            raise KestraSimActionFailed(
                f"Failed to execute action '{title}' on execution {execution['id']} "
                f"(operation_id={new_kestra_id()}). Cause: {refused.message}"
            ) from None
        found = self.store.execution(tenant, execution["id"])
        if found is None:
            raise KestraSimNotFound(f"Execution disappeared after {title.lower()}: {execution['id']}")
        return found

    def kill(self, tenant: str, execution_id: str, *, cascade: bool) -> dict[str, Any]:
        """KILLING then KILLED; an already finished execution only fails without ``isOnKillCascade``."""
        execution = self._missing(tenant, execution_id)
        if execution["state"]["current"] in TERMINAL_STATES and not cascade:
            if self.profile.conflict_refusals:
                raise KestraSimConflict("Cannot kill execution: execution is already terminated.")
            raise KestraSimIllegalState("Execution is already finished, can't kill it")
        return self._act(tenant, execution, "kill", "Kill", lambda: self.engine.kill(execution))

    def pause(self, tenant: str, execution_id: str) -> dict[str, Any]:
        """Pause a RUNNING execution (``ExecutionService#pause`` in 1.x, a 409 conflict otherwise in 2.0)."""
        execution = self.find_execution(tenant, execution_id)
        if execution["state"]["current"] != "RUNNING":
            if self.profile.conflict_refusals:
                raise KestraSimConflict("Cannot pause execution: execution is not running.")
            raise KestraSimIllegalArgument("The execution is not running")
        return self._act(tenant, execution, "pause", "Pause", lambda: self.engine.pause(execution))

    def restart(self, tenant: str, execution_id: str, revision: int | None = None) -> dict[str, Any]:
        """``ExecutionService#restart``: failed task runs (and their parents) run again, label
        ``system.restarted``, ``metadata.attemptNumber + 1``, ``errors``/``finally`` runs dropped.

        Without ``revision`` the same execution restarts; with one, a NEW execution (new id, ``parentId`` the
        old one) runs on that flow revision, and an unknown revision is ``Unable to find revision N on flow
        ns.id`` (``controlRevision``). 1.x answers the restarted execution; 2.0 the execution re-read by the
        requested id (``awaitBlockingAction``), so with a revision it answers the original one.
        """
        execution = self.find_execution(tenant, execution_id)
        if (
            revision is not None
            and self.store.flow_revision(tenant, execution["namespace"], execution["flowId"], revision)
            is None
        ):
            raise KestraSimNotFound(
                f"Unable to find revision {revision} on flow {execution['namespace']}.{execution['flowId']}"
            )
        current = execution["state"]["current"]
        if current == "KILLED" or (current not in TERMINAL_STATES and current != "PAUSED"):
            if self.profile.conflict_refusals:
                raise KestraSimConflict(
                    f"Cannot restart execution: current state is '{current}', expected terminated or paused."
                )
            raise KestraSimIllegalState(
                "Execution must be terminated or paused and not killed to be restarted, "
                f"current state is '{current}' !"
            )
        restarted: list[dict[str, Any]] = []
        self._act(
            tenant,
            execution,
            "restart",
            "Restart",
            lambda: restarted.append(self._restart(execution, revision)),
        )
        return execution if self.profile.awaited_actions else restarted[0]

    def _restart(self, execution: dict[str, Any], revision: int | None) -> dict[str, Any]:
        task_runs = execution.get("taskRunList", [])
        to_restart = {tr["id"] for tr in task_runs if tr["state"]["current"] in FAILED_STATES | {"PAUSED"}}
        if not to_restart:
            raise KestraSimIllegalArgument("No task found to restart execution from!")
        by_id = {tr["id"]: tr for tr in task_runs}
        for task_run_id in list(to_restart):
            parent = by_id[task_run_id].get("parentTaskRunId")
            while parent:
                to_restart.add(parent)
                parent = by_id[parent].get("parentTaskRunId") if parent in by_id else None
        flow = self.engine.flow_of(execution)
        cleanup = {t.id for task in [*flow.errors, *flow.finally_tasks] for t in task.walk()}
        new_ids: dict[str, str] = {}
        target = execution
        if revision is not None:
            target, new_ids = self._child_execution(execution, revision)
        target["taskRunList"] = [tr for tr in target.get("taskRunList", []) if tr["taskId"] not in cleanup]
        restarted_ids = {new_ids.get(task_run_id, task_run_id) for task_run_id in to_restart}
        for task_run in target["taskRunList"]:
            if task_run["id"] in restarted_ids:
                transition(task_run["state"], "RESTARTED")
        transition(target["state"], "RESTARTED")
        if {"key": "system.restarted", "value": "true"} not in target["labels"]:
            target["labels"].append({"key": "system.restarted", "value": "true"})
        target["metadata"]["attemptNumber"] = target["metadata"].get("attemptNumber", 1) + 1
        if revision is None:
            self.engine.changed(target)
            self.engine.launch(target["id"])
        else:
            self.register(target)
        return target

    @staticmethod
    def _child_execution(execution: dict[str, Any], revision: int) -> tuple[dict[str, Any], dict[str, str]]:
        """``Execution#childExecution`` with a new id (``parentId`` the old one) on ``revision``: task runs
        copied under new ids (``mapTaskRunId``). Returns the child and the old -> new task run ids."""
        child = copy.deepcopy(execution)
        child_id = new_kestra_id()
        new_ids = {tr["id"]: new_kestra_id() for tr in execution.get("taskRunList", [])}
        for task_run in child.get("taskRunList", []):
            task_run["id"] = new_ids[task_run["id"]]
            task_run["executionId"] = child_id
            if task_run.get("parentTaskRunId"):
                task_run["parentTaskRunId"] = new_ids.get(task_run["parentTaskRunId"])
        child.update(id=child_id, parentId=execution["id"], flowRevision=revision)
        return child, new_ids

    def resume(
        self, tenant: str, execution_id: str, parts: Mapping[str, str | KestraSimUploadedFile]
    ) -> dict[str, Any]:
        """Resume a PAUSED execution (``getExecutionIfPause``); ``parts`` are the ``onResume`` inputs."""
        execution = self.find_execution(tenant, execution_id, f"Execution '{execution_id}' not found.")
        if execution["state"]["current"] != "PAUSED":
            raise KestraSimIllegalState(f"Execution '{execution_id}' is not paused, can't resume it")
        flow = self.engine.flow_of(execution)
        paused = next(
            (tr for tr in execution.get("taskRunList", []) if tr["state"]["current"] == "PAUSED"), None
        )
        task = flow.find_task(paused["taskId"]) if paused else None
        definitions = (
            list(task.properties.get("onResume") or []) if task is not None and task.type == PAUSE else []
        )
        definitions = [{"required": True, **d} for d in definitions if isinstance(d, dict)]
        inputs = self.read_inputs(execution, definitions, parts)
        return self._act(tenant, execution, "resume", "Resume", lambda: self.engine.resume(execution, inputs))

    def set_labels(self, tenant: str, execution_id: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace the non-system labels of a terminated execution (``setLabelsOnTerminatedExecution``)."""
        execution = self._missing(tenant, execution_id)
        problems = []
        for index, label in enumerate(labels):
            key, value = str(label.get("key") or ""), label.get("value")
            if not is_valid_label_key(key):
                problems.append(
                    KestraSimViolation(
                        f"setLabelsOnTerminatedExecution.labels[{index}].key", _LABEL_KEY_MESSAGE
                    )
                )
            if value is None or str(value) == "":
                problems.append(
                    KestraSimViolation(
                        f"setLabelsOnTerminatedExecution.labels[{index}].value", "must not be blank"
                    )
                )
        if problems:
            raise KestraSimConstraintViolation(problems)
        if execution["state"]["current"] not in TERMINAL_STATES:
            raise KestraSimHttpStatus(400, "The execution is not terminated", plain=True)
        system = [label for label in execution["labels"] if label["key"].startswith("system.")]
        for label in labels:
            candidate = {"key": str(label["key"]), "value": str(label["value"])}
            if candidate["key"].startswith("system.") and candidate not in system:
                raise KestraSimIllegalArgument(
                    "System labels can only be set by Kestra itself, offending label: "
                    f"{candidate['key']}={candidate['value']}"
                )
        new_labels: dict[str, str] = {str(label["key"]): str(label["value"]) for label in labels}
        for label in system:
            new_labels.setdefault(label["key"], label["value"])

        def apply() -> None:
            execution["labels"] = [{"key": k, "value": v} for k, v in new_labels.items()]
            self.engine.changed(execution)

        return self._act(tenant, execution, "labels", "Set labels", apply)

    # -- outputs (2.0 OutputController) -------------------------------------------------------------------
    def flow_outputs(self, tenant: str, execution_id: str) -> dict[str, Any]:
        """``getExecutionOutputs``: the flow-level outputs (``{}`` before they are computed)."""
        execution = self.find_execution(tenant, execution_id)
        return dict(execution.get("outputs") or {})

    def task_outputs_information(self, tenant: str, execution_id: str) -> list[dict[str, Any]]:
        """``getTaskOutputsInformation``: ``TaskOutputInformation(taskId, taskRunId, value, iteration,
        inline)`` of each task run that stored outputs (``value``/``iteration`` left out when null)."""
        execution = self.find_execution(tenant, execution_id)
        found = []
        for task_run in execution.get("taskRunList", []):
            if not task_run.get("outputs"):
                continue
            entry: dict[str, Any] = {"taskId": task_run["taskId"], "taskRunId": task_run["id"]}
            if task_run.get("value") is not None:
                entry["value"] = task_run["value"]
            if task_run.get("iteration") is not None:
                entry["iteration"] = task_run["iteration"]
            entry["inline"] = True
            found.append(entry)
        return found

    def task_run_outputs(self, tenant: str, execution_id: str, task_run_id: str) -> dict[str, Any]:
        """``getTaskRunOutputs``: one task run's outputs map; unknown task run -> ``NotFoundException``."""
        execution = self.find_execution(tenant, execution_id)
        for task_run in execution.get("taskRunList", []):
            if task_run["id"] == task_run_id:
                return dict(task_run.get("outputs") or {})
        raise KestraSimNotFound()

    # -- webhooks --------------------------------------------------------------------------------------------
    def webhook_execution(
        self,
        tenant: str,
        namespace: str,
        flow_id: str,
        key: str,
        *,
        extra_path: bool,
        variables: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start the flow of a webhook trigger whose rendered ``key`` matches; returns (execution, trigger).

        ``variables`` become ``trigger.variables`` (``body``, ``headers``, ``parameters``).
        """
        item = self.store.latest_flow(tenant, namespace, flow_id)
        if item is None:
            raise KestraSimHttpStatus(404, "Flow not found")
        if item.flow.disabled:
            if self.profile.conflict_refusals:
                raise KestraSimConflict("Cannot execute flow: flow is disabled.")
            raise KestraSimIllegalState("Cannot execute a disabled flow")
        flow_context = {
            "flow": {"id": item.flow.id, "namespace": item.flow.namespace, "revision": item.revision}
        }
        trigger = None
        for candidate in item.flow.triggers:
            if candidate.get("type") != WEBHOOK or candidate.get("disabled"):
                continue
            try:
                if render(str(candidate.get("key", "")), flow_context).strip() == key:
                    trigger = candidate
                    break
            except KestraPebbleError:
                continue
        if trigger is None:
            raise KestraSimHttpStatus(404, "Webhook not found")
        if extra_path:
            raise KestraSimNotFound()
        execution = new_execution(
            item,
            [{"key": "system.from", "value": "trigger"}],
            trigger={"id": trigger["id"], "type": WEBHOOK, "variables": variables},
        )
        inputs = {str(d["id"]): d["defaults"] for d in item.flow.inputs if d.get("defaults") is not None}
        if trigger.get("inputs"):
            try:
                inputs.update(render_value(trigger["inputs"], {**flow_context, "trigger": variables}))
            except KestraPebbleError as exc:
                raise KestraSimIllegalArgument(str(exc)) from None
        if inputs:
            execution["inputs"] = inputs
        self.register(execution)
        return execution, trigger

    # -- files and logs --------------------------------------------------------------------------------------
    def execution_file(
        self, tenant: str, execution_id: str, raw_path: str
    ) -> KestraSimStoredFile | KestraSimFileElsewhere:
        """``validateFile``: the URI must lie under the execution's storage prefix; a file of another
        execution is elsewhere (redirected), any other path is an IllegalArgument."""
        execution = self.find_execution(tenant, execution_id, f"Unable to find execution id '{execution_id}'")
        uri = urlsplit(raw_path)
        if uri.scheme == "file":
            raise KestraSimHttpStatus(403, "Local file preview is disabled", plain=True)
        if uri.scheme == "nsfile":
            raise KestraSimNotFound("Namespace files are not stored by the Kestra simulator")
        if uri.scheme != "kestra":
            raise KestraSimIllegalArgument(f"Scheme not supported: {uri.scheme}")
        if not uri.path.startswith(storage_prefix(execution)):
            other = _EXECUTION_IN_PATH.search(uri.path)
            if other:
                return KestraSimFileElsewhere(other.group(1))
            raise KestraSimIllegalArgument("Invalid prefix path")
        content = self.store.files.get((tenant, f"kestra://{uri.path}"))
        if content is None:
            raise KestraSimNotFound(f"{raw_path} (File not found)")
        return KestraSimStoredFile(uri.path, content)

    def execution_logs(
        self,
        tenant: str,
        execution_id: str,
        *,
        min_level: str | None = None,
        task_run_id: str | None = None,
        task_id: str | None = None,
        attempt: int | None = None,
    ) -> list[dict[str, Any]]:
        """The LogEntries of one execution, oldest first (an unknown execution has none: Kestra answers
        ``[]``). As ``ExecutionLogService#getExecutionLogs`` picks its query: ``taskId`` wins over
        ``taskRunId``, and ``attempt`` counts only with ``taskRunId``."""
        execution = self.store.executions.get(execution_id)
        if execution is None or execution["tenantId"] != tenant:
            return []
        if task_id is not None:
            task_run_id = attempt = None
        elif task_run_id is None:
            attempt = None
        return [
            entry
            for entry in self.store.logs.get(execution_id, [])
            if level_at_least(entry["level"], min_level)
            and (task_run_id is None or entry.get("taskRunId") == task_run_id)
            and (task_id is None or entry.get("taskId") == task_id)
            and (attempt is None or entry.get("attemptNumber") == attempt)
        ]

    def stored_logs(self, tenant: str, execution_id: str) -> list[dict[str, Any]]:
        """The stored log list of an execution (read-only; it only grows), for log follow streams."""
        execution = self.store.executions.get(execution_id)
        if execution is None or execution["tenantId"] != tenant:
            return []
        return self.store.logs.get(execution_id, [])

    def is_running(self, tenant: str, execution_id: str) -> bool:
        """Whether a visible execution exists and is not terminal yet."""
        execution = self.store.executions.get(execution_id)
        return (
            execution is not None
            and execution["tenantId"] == tenant
            and execution["state"]["current"] not in TERMINAL_STATES
        )

    def search_logs(
        self, tenant: str, filters: KestraSimFilters, sorts: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """LogEntries of the tenant matching ``filters``, NORMAL executions only (``NORMAL_KIND_CONDITION``).

        1.x+ (``AbstractJdbcLogRepository.find``): ordered by ``timestamp`` descending whatever ``sort``
        says (lines of one instant keep the order they were stored in). 0.2x: ``sort`` (``field:asc|desc``)
        applied, oldest first without one. A malformed ``sort`` is ``PageableUtils``' IllegalArgument."""
        for spec in sorts:
            if len(spec.split(":")) != 2:
                raise KestraSimIllegalArgument("Invalid sort parameter")
        now = now_instant()
        entries = [
            entry
            for execution_id, logs in self.store.logs.items()
            if (execution := self.store.executions.get(execution_id)) is not None
            and execution["tenantId"] == tenant
            for entry in logs
            if entry.get("executionKind") in (None, "NORMAL") and filters.match_log(entry, now)
        ]
        newest_first = self.profile.logs_search_query_filters
        entries.sort(key=lambda e: parse_instant(str(e["timestamp"])), reverse=newest_first)
        if newest_first:
            return entries
        for spec in reversed(sorts):
            name, _, direction = spec.partition(":")

            def key(entry: dict[str, Any], name: str = name) -> str:
                return str(entry.get(name) or "")

            entries.sort(key=key, reverse=direction == "desc")
        return entries

    def delete_logs(self, tenant: str, execution_id: str) -> None:
        """Drop the logs of one execution (nothing happens for an unknown one)."""
        execution = self.store.executions.get(execution_id)
        if execution is not None and execution["tenantId"] == tenant:
            self.store.logs.pop(execution["id"], None)
