"""Typed shapes of what the Kestra hooks return (TypedDicts: plain JSON-able dicts, XCom-safe).

Only the fields the provider relies on are declared; Kestra sends more and they are kept (``total=False``
lets the hook return Kestra's JSON as is). Execution fields follow the ``Execution`` / ``ApiExecution``
schemas of the 1.3 and 2.0 OpenAPI specs; ``taskRunList`` is absent from 2.x search results.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

__all__ = [
    "EVENT_STATUSES",
    "KILL_TIMEOUT_SECONDS",
    "KestraDeployAction",
    "KestraExecution",
    "KestraFlow",
    "KestraFlowDeployResult",
    "KestraFlowProblem",
    "KestraLabel",
    "KestraLogCursor",
    "KestraLogEntry",
    "KestraOutputs",
    "KestraServerInfo",
    "KestraState",
    "KestraTaskRun",
    "KestraTriggerEvent",
    "KestraTriggerStatus",
]

KILL_TIMEOUT_SECONDS = 20.0
"""How long an ``on_kill`` (the trigger's, or the operator's) may spend asking Kestra to kill the execution
before letting the task die anyway."""


class KestraLabel(TypedDict):
    key: str
    value: str


class KestraStateHistory(TypedDict, total=False):
    state: str
    date: str


class KestraState(TypedDict, total=False):
    current: str
    histories: list[KestraStateHistory]
    startDate: str
    endDate: str
    duration: str


class KestraTaskRun(TypedDict, total=False):
    id: str
    executionId: str
    namespace: str
    flowId: str
    taskId: str
    parentTaskRunId: str
    value: str
    attempts: list[dict[str, Any]]
    outputs: dict[str, Any] | None
    state: KestraState
    iteration: int


class KestraExecution(TypedDict, total=False):
    tenantId: str
    id: str
    namespace: str
    flowId: str
    flowRevision: int
    taskRunList: list[KestraTaskRun]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    labels: list[KestraLabel]
    variables: dict[str, Any]
    state: KestraState
    parentId: str
    originalId: str
    trigger: dict[str, Any]
    deleted: bool
    metadata: dict[str, Any]
    scheduleDate: str
    kind: str
    url: str
    """Only in the create-execution response."""


class KestraFlow(TypedDict, total=False):
    id: str
    namespace: str
    revision: int
    source: str
    disabled: bool
    deleted: bool
    description: str
    labels: list[KestraLabel] | dict[str, str]
    inputs: list[dict[str, Any]]
    tasks: list[dict[str, Any]]


class KestraLogEntry(TypedDict, total=False):
    namespace: str
    flowId: str
    taskId: str | None
    executionId: str | None
    taskRunId: str | None
    attemptNumber: int | None
    triggerId: str | None
    timestamp: str
    level: str
    thread: str
    message: str


class KestraLogCursor(TypedDict):
    """Where a log reader stopped: ``since`` (ISO instant or None) and fingerprints of lines seen after it.

    JSON-safe on purpose: it travels from the operator to the trigger (kwargs) and back (event).
    """

    since: str | None
    seen: list[str]


KestraTriggerStatus = Literal["success", "failed", "timeout", "error"]
"""How a :class:`~airflow_provider_kestra.triggers.kestra.KestraExecutionTrigger` wait ended."""

EVENT_STATUSES: frozenset[str] = frozenset(get_args(KestraTriggerStatus))
"""Every ``status`` a trigger event can carry; the operator and the sensor fail on any other value."""


class KestraTriggerEvent(TypedDict):
    """The one payload a :class:`~airflow_provider_kestra.triggers.kestra.KestraExecutionTrigger` fires.

    The same five keys an older trigger emitted, so a task deferred before an upgrade still completes.
    ``execution_id`` is None only when a search found nothing; ``log_cursor`` is where the trigger's log
    relay stopped and the operator's resumes (the trigger fires without a final read).
    """

    status: KestraTriggerStatus
    execution_id: str | None
    state: str | None
    message: str
    log_cursor: KestraLogCursor | None


KestraDeployAction = Literal[
    "created", "updated", "unchanged", "deleted", "would-create", "would-update", "would-delete"
]


class KestraFlowDeployResult(TypedDict):
    namespace: str
    flow_id: str
    revision: int | None
    """The flow revision after the action (None for dry runs of new flows and for deletions)."""
    action: KestraDeployAction


class KestraFlowProblem(TypedDict):
    filename: str | None
    index: int
    """Position of the flow in its file (0-based)."""
    namespace: str | None
    flow_id: str | None
    message: str


class KestraServerInfo(TypedDict):
    version: str | None
    edition: str | None
    """``OSS`` or ``EE`` (None on servers older than 1.0, which do not say)."""
    api_version: str
    """``0.22``, ``1`` or ``2``: the URL and body shape the hook uses."""
    is_simulator: bool


class KestraOutputs(TypedDict):
    outputs: dict[str, Any]
    """The flow's ``outputs:`` values."""
    task_outputs: dict[str, Any]
    """``{task_id: {name: value}}``; tasks run per value (ForEach) give ``{task_id: {value: {...}}}``."""


# ------------------------------------------------------------------------------------ execution queries
# Imported here, beside their only user, so this addition stays apart from the TypedDicts above.
from dataclasses import dataclass, field  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime


@dataclass(frozen=True)
class KestraExecutionQuery:
    """Which executions to search for: every given filter must match (namespace and flow exactly, one of
    ``states``, every label, started at or after ``started_after``).

    Refuses to be empty (:class:`~airflow_provider_kestra.exceptions.KestraConfigError`): Kestra reads an
    empty filter set as "every execution of the tenant". Labels are checked against Kestra's key rule
    (``system.*`` keys are allowed: searching on them is fine). It round-trips through JSON
    (:meth:`to_json` / :meth:`from_json`) so a trigger can carry it to the triggerer.
    """

    namespace: str | None = None
    flow_id: str | None = None
    states: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    started_after: str | None = None
    """An ISO-8601 instant with offset; :meth:`of` also takes datetimes (naive ones are taken as UTC)."""

    def __post_init__(self) -> None:
        from airflow_provider_kestra.exceptions import KestraConfigError
        from airflow_provider_kestra.utils.encoding import validate_labels

        object.__setattr__(self, "states", tuple(str(getattr(s, "value", s)).upper() for s in self.states))
        object.__setattr__(self, "labels", validate_labels(self.labels, allow_system=True))
        if not (self.namespace or self.flow_id or self.states or self.labels or self.started_after):
            raise KestraConfigError(
                "refusing to search executions without any filter (Kestra would match all of them)"
            )

    @classmethod
    def of(
        cls,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Iterable[str] | None = None,
        labels: Mapping[str, Any] | None = None,
        started_after: datetime | str | None = None,
    ) -> KestraExecutionQuery:
        """A query from loosely typed filters: states as any iterable (enum members too), label values of
        any JSON type, ``started_after`` as a datetime or an ISO string."""
        from airflow_provider_kestra.utils.encoding import format_instant

        return cls(
            namespace=namespace or None,
            flow_id=flow_id or None,
            states=tuple(states or ()),
            labels=dict(labels or {}),
            started_after=format_instant(started_after) if started_after is not None else None,
        )

    def filters(self) -> list[tuple[str, str]]:
        """The ``filters[...]`` query parameters of ``GET /executions/search`` (never empty)."""
        params: list[tuple[str, str]] = []
        if self.namespace:
            params.append(("filters[namespace][EQUALS]", self.namespace))
        if self.flow_id:
            params.append(("filters[flowId][EQUALS]", self.flow_id))
        if self.states:
            params.append(("filters[state][IN]", ",".join(self.states)))
        params.extend((f"filters[labels][EQUALS][{key}]", value) for key, value in self.labels.items())
        if self.started_after:
            params.append(("filters[startDate][GREATER_THAN_OR_EQUAL_TO]", self.started_after))
        return params

    def params(self, size: int) -> list[tuple[str, str]]:
        """All query parameters of the search: the filters, newest first, the first page of ``size``."""
        return [*self.filters(), ("sort", "state.startDate:desc"), ("page", "1"), ("size", str(int(size)))]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict that :meth:`from_json` turns back into an equal query."""
        return {
            "namespace": self.namespace,
            "flow_id": self.flow_id,
            "states": list(self.states),
            "labels": dict(self.labels),
            "started_after": self.started_after,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KestraExecutionQuery:
        """The query :meth:`to_json` described (missing keys mean "no such filter")."""
        return cls(
            namespace=data.get("namespace"),
            flow_id=data.get("flow_id"),
            states=tuple(data.get("states") or ()),
            labels=dict(data.get("labels") or {}),
            started_after=data.get("started_after"),
        )
