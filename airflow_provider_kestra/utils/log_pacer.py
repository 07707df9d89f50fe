"""When to read an execution's Kestra log while waiting for it, decided without I/O.

Kestra cannot be asked "anything new?" for free: even a log search for the lines after a cursor is a
request. Reading on a timer costs a request every ``poll_interval`` per waiting task even when the execution
logs nothing (1,000 deferred waits: 162 log requests/s). The wait already holds the execution's event
stream, which sends a frame whenever a task run appears or changes; :class:`KestraLogPacer` reads the log
only after such a change, keeps reading every ``poll_interval`` while a still running task run is logging,
and leaves the last read to the end of the wait (the caller's final relay).

The trade-off: a task run that logs after a long silence shows those lines at the execution's next
task-run change or at the end of the wait, not live.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.utils.state import is_terminal, state_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_provider_kestra.utils.models import KestraExecution

KestraTaskRunSignature = tuple[str | None, tuple[tuple[str, str, int], ...]]
"""The execution's state and ``(taskRunId, state, attempt count)`` of each task run, in Kestra's order."""


@dataclass(frozen=True)
class KestraLogReadResult:
    """What one log read showed the pacer: the task runs the relayed lines came from (None for lines
    without a ``taskRunId``, e.g. the execution's own lines), and whether the read failed."""

    task_run_ids: frozenset[str | None] = field(default_factory=frozenset)
    failed: bool = False


def task_run_signature(execution: KestraExecution | Mapping[str, Any]) -> KestraTaskRunSignature:
    """What a log read cares about in an execution frame: a new task run, a task run's state or attempt
    count, or the execution's state. Anything else in a frame (outputs, durations) changes no log."""
    runs = []
    for run in execution.get("taskRunList") or ():
        if not isinstance(run, dict):
            continue
        attempts = run.get("attempts")
        runs.append(
            (
                str(run.get("id") or ""),
                state_of(run),
                len(attempts) if isinstance(attempts, list) else 0,
            )
        )
    return (state_of(execution) or None, tuple(runs))


class KestraLogPacer:
    """Decides when the next log read of one waited execution is due; the caller does the reading.

    The caller hands every execution frame (stream or poll) to :meth:`frame`, asks :meth:`due_in` how
    long to sleep, and wraps each read in :meth:`begin_read` / :meth:`end_read`. The rules:

    - a frame whose :func:`task_run_signature` differs from the previous frame's schedules a read at
      ``max(frame + poll_interval, last read + poll_interval)``; a read already scheduled earlier stays
      (a burst of frames costs one read). The first read of a pacer gets an extra random delay in
      ``[0, poll_interval)``, so thousands of waits started together do not read at once;
    - after a read, the next is scheduled ``poll_interval`` later only when the read failed (best
      effort: try again) or showed lines of a task run the last frame shows still running (or lines
      without a task run while the execution runs): that task is logging;
    - nothing else: a silent execution costs no read between task-run changes.

    Not thread-safe: a caller that frames and reads from two threads holds one lock around every call.

    :param poll_interval: Seconds between two reads at most once per interval.
    :param clock: Monotonic seconds (injectable for tests).
    :param jitter: A number in ``[0, 1)`` (injectable for tests); scales the first read's extra delay.
    """

    def __init__(
        self,
        poll_interval: float,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.poll_interval = max(0.0, float(poll_interval))
        self.clock = clock
        self.jitter = jitter
        self.next_read: float | None = None
        self.last_read: float | None = None
        self.reads = 0
        self._signature: KestraTaskRunSignature | None = None
        self._running: frozenset[str] = frozenset()
        self._execution_running = True
        self._first_delay: float | None = None

    def frame(self, execution: KestraExecution | Mapping[str, Any]) -> bool:
        """Take an execution frame; True when it moved the next read (the caller wakes its reader)."""
        signature = task_run_signature(execution)
        self._execution_running = not is_terminal(signature[0])
        self._running = frozenset(run_id for run_id, state, _ in signature[1] if not is_terminal(state))
        if signature == self._signature:
            return False
        self._signature = signature
        at = self.clock() + self.poll_interval
        if self.last_read is not None:
            at = max(at, self.last_read + self.poll_interval)
        else:  # the whole first read is staggered, also when later frames of a burst would pull it in
            if self._first_delay is None:
                self._first_delay = self.jitter() * self.poll_interval
            at += self._first_delay
        return self._schedule(at)

    def due_in(self) -> float | None:
        """Seconds until the next read (0 when due now); None when no read is scheduled."""
        if self.next_read is None:
            return None
        return max(0.0, self.next_read - self.clock())

    def begin_read(self) -> None:
        """A read starts now: the scheduled one is taken; frames meanwhile schedule the next."""
        self.next_read = None
        self.last_read = self.clock()
        self.reads += 1

    def end_read(self, result: KestraLogReadResult | None) -> None:
        """A read ended; None counts as a failed read. Schedules the follow-up read when one is due."""
        self.last_read = self.clock()
        if result is None or result.failed or self._still_logging(result.task_run_ids):
            self._schedule(self.last_read + self.poll_interval)

    def _still_logging(self, task_run_ids: frozenset[str | None]) -> bool:
        return any(
            self._execution_running if run_id is None else run_id in self._running for run_id in task_run_ids
        )

    def _schedule(self, at: float) -> bool:
        if self.next_read is not None and self.next_read <= at:
            return False
        self.next_read = at
        return True
