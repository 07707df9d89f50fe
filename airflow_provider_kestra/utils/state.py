"""Kestra execution states and the sets an Airflow task needs to decide when and how a run ended.

The 17 values are Kestra's ``State.Type`` enum (1.x and 2.x). Older servers send fewer, newer ones may
send more: any string that is not known here is tolerated everywhere and treated as "not finished".
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


class KestraExecutionState(str, Enum):
    """Every value of Kestra's ``State.Type``."""

    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    QUEUED = "QUEUED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"
    BREAKPOINT = "BREAKPOINT"
    RESUBMITTED = "RESUBMITTED"


S = KestraExecutionState

TERMINAL_STATES: frozenset[str] = frozenset(
    s.value
    for s in (S.SUCCESS, S.WARNING, S.FAILED, S.KILLED, S.CANCELLED, S.RETRIED, S.SKIPPED, S.RESUBMITTED)
)
"""Kestra's ``isTerminated()`` set."""

SUCCESSFUL_TERMINAL_STATES: frozenset[str] = frozenset(
    s.value for s in (S.SUCCESS, S.WARNING, S.RETRIED, S.SKIPPED, S.RESUBMITTED)
)
"""Terminal states Kestra does not count as a failure."""

FAILED_STATES: frozenset[str] = TERMINAL_STATES - SUCCESSFUL_TERMINAL_STATES
"""Terminal and not successful: FAILED, KILLED, CANCELLED."""

PAUSED_STATES: frozenset[str] = frozenset({S.PAUSED.value, S.BREAKPOINT.value})
"""States that wait for a person (resume) rather than for the engine."""


def _name(state: str | KestraExecutionState | None) -> str:
    if isinstance(state, KestraExecutionState):
        return state.value
    return (state or "").upper()


def state_of(execution_or_task_run: Mapping[str, Any]) -> str:
    """The current state (``state.current``) of an execution or task run, upper case; "" when Kestra did
    not say (never a success)."""
    return str((execution_or_task_run.get("state") or {}).get("current") or "").upper()


def is_terminal(state: str | KestraExecutionState | None) -> bool:
    """Whether the execution has ended; unknown or missing states are not terminal."""
    return _name(state) in TERMINAL_STATES


def is_successful(state: str | KestraExecutionState | None) -> bool:
    """Whether the execution ended without failure (SUCCESS, WARNING, RETRIED, SKIPPED, RESUBMITTED)."""
    return _name(state) in SUCCESSFUL_TERMINAL_STATES


def is_failed(state: str | KestraExecutionState | None) -> bool:
    """Whether the execution ended in FAILED, KILLED or CANCELLED."""
    return _name(state) in FAILED_STATES


def is_paused(state: str | KestraExecutionState | None) -> bool:
    """Whether the execution waits to be resumed (PAUSED, or stopped at a BREAKPOINT)."""
    return _name(state) in PAUSED_STATES
