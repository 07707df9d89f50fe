"""Kestra execution states, and the one policy that decides whether a wait ended well, badly or not yet.

The 17 values are Kestra's ``State.Type`` enum (1.x and 2.x). Older servers send fewer, newer ones may
send more: any string that is not known here is tolerated everywhere and treated as "not finished".

:class:`KestraOutcome` is that decision for the operator, the sensor and the trigger alike, so the
three cannot drift apart (they used to validate and compare states each in their own way).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from airflow_provider_kestra.utils.models import KestraExecution


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

KILL_STATES: frozenset[str] = frozenset({S.KILLING.value, S.KILLED.value})
"""Someone killed the execution (or is killing it): it is never waited for again nor restarted."""

KNOWN_STATES: frozenset[str] = frozenset(s.value for s in KestraExecutionState)


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


def failed_task_ids(execution: KestraExecution) -> list[str]:
    """Ids of the Kestra tasks whose runs ended in a failure state (each once, in run order)."""
    found: list[str] = []
    for task_run in execution.get("taskRunList") or []:
        task_id = task_run.get("taskId")
        if task_id and task_id not in found and is_failed(state_of(task_run)):
            found.append(task_id)
    return found


ERROR_LINES_IN_FAILURE = 5


def failure_message(
    execution: KestraExecution,
    success_states: Iterable[str],
    read_errors: Callable[[], Sequence[Mapping[str, Any]]],
) -> str:
    """Why an execution failed: its state, the failed Kestra tasks and the last ERROR log lines, which
    ``read_errors`` reads (a failure to read them is named in the message, never raised)."""
    lines = [
        f"Kestra execution {execution['id']} of flow {execution.get('namespace')}.{execution.get('flowId')} "
        f"ended in {state_of(execution)} (success states: {', '.join(sorted(success_states))})."
    ]
    failed_tasks = failed_task_ids(execution)
    if failed_tasks:
        lines.append(f"Failed Kestra tasks: {', '.join(failed_tasks)}.")
    try:
        errors = read_errors()
    except Exception as err:
        lines.append(f"(Could not read the error logs: {err})")
    else:
        if errors:
            lines.append("Last error log lines:")
            lines.extend(
                f"  [{e.get('taskId') or 'execution'}] {e.get('message', '')}"
                for e in errors[-ERROR_LINES_IN_FAILURE:]
            )
    return "\n".join(lines)


def _upper(states: Iterable[str] | str) -> frozenset[str]:
    return frozenset(str(s).upper() for s in ((states,) if isinstance(states, str) else states))


@dataclass(frozen=True)
class KestraOutcome:
    """Which states end a wait, and how. Unknown states keep waiting; a state is never both.

    The operator, the sensor and the trigger all decide with this one object, on both sides of the
    trigger boundary (it crosses it as :meth:`to_json`).

    :param success: States that end the wait successfully.
    :param failure: States that end the wait as a failure.
    """

    success: frozenset[str]
    failure: frozenset[str]

    @classmethod
    def of(
        cls,
        success_states: Iterable[str] | str,
        failure_states: Iterable[str] | str | None = None,
        *,
        terminal_only: bool,
    ) -> KestraOutcome:
        """The outcome for these user-given states (any case), validated once for every caller.

        :param success_states: One state or several; must be known Kestra states.
        :param failure_states: ``None`` means every terminal state that is not a success.
        :param terminal_only: The operator's rule: success states must be terminal (it starts the
            execution and waits for its end). The sensor may also succeed on a state such as ``PAUSED``.
        :raises ValueError: One message naming every problem.
        """
        success = _upper(success_states)
        failure = TERMINAL_STATES - success if failure_states is None else _upper(failure_states)
        allowed = TERMINAL_STATES if terminal_only else KNOWN_STATES
        problems = []
        if not success:
            problems.append("none given")
        if success - KNOWN_STATES:
            problems.append(f"unknown success state(s) {sorted(success - KNOWN_STATES)}")
        if (success & KNOWN_STATES) - allowed:
            problems.append(f"success state(s) {sorted((success & KNOWN_STATES) - allowed)} are not terminal")
        if success & failure:
            problems.append(f"success state(s) {sorted(success & failure)} overlap failure_states")
        if problems:
            kind = "terminal " if terminal_only else ""
            raise ValueError(
                f"success_states must be one or more {kind}Kestra states from {sorted(allowed)}, none of "
                f"them in failure_states: {'; '.join(problems)} (got success_states={success_states!r}, "
                f"failure_states={failure_states!r})"
            )
        return cls(success, failure)

    def classify(self, state: str) -> Literal["success", "failed"] | None:
        """``success`` or ``failed`` when ``state`` ends the wait; ``None`` (keep waiting) otherwise,
        which includes every state this provider does not know."""
        name = _name(state)
        if name in self.success:
            return "success"
        if name in self.failure:
            return "failed"
        return None

    def to_json(self) -> dict[str, list[str]]:
        """The JSON-safe form, under the keyword names the trigger and the sensor take."""
        return {"success_states": sorted(self.success), "failure_states": sorted(self.failure)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KestraOutcome:
        """Rebuild from :meth:`to_json` (validated again: the data may come from an older release)."""
        return cls.of(data["success_states"], data.get("failure_states"), terminal_only=False)
