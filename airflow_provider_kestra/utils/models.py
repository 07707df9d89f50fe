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
    ``execution_id`` is None only when a search found nothing; ``log_cursor`` is where the operator's log
    relay resumes.
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
