"""The wait protocols the sync and async hooks share, without I/O: one execution until it ends
(:class:`KestraWaitTracker`), and a search until an execution matches (:class:`KestraMatchWait`).

Each hook drives them with its own sending (requests or httpx) and sleeping (``time.sleep`` or its
``asyncio`` twin); everything that decides (when to stop, how long to sleep, when to give up on the event
stream, when the deadline has passed) lives here, so both hooks behave the same and the rules can be
tested without HTTP. Deadlines are UNIX times (``time.time()``) everywhere: a deferred trigger's deadline
must survive a move to another triggerer process, and the sync hook uses the same kind for one meaning.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from airflow_provider_kestra.exceptions import (
    KestraConnectionError,
    KestraNotFoundError,
    KestraStreamError,
    KestraStreamIdle,
    KestraWaitTimeout,
)
from airflow_provider_kestra.utils.state import is_terminal, state_of
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from airflow_provider_kestra.exceptions import KestraError
    from airflow_provider_kestra.utils.models import KestraExecution

log = logging.getLogger(__name__)

STREAM_IDLE_SECONDS = 300.0
"""Longest silence accepted on an execution's event stream before it is reopened (Kestra sends a frame
only when the execution changes, so an execution that waits for hours is silent for hours)."""

#: What makes ``wait_for_execution`` fall back to polling (a stream error, or no stream route / server).
STREAM_FALLBACK_ERRORS = (KestraStreamError, KestraNotFoundError, KestraConnectionError)


def wait_deadline(
    timeout: float | None, deadline: float | None, clock: Callable[[], float] | None = None
) -> float | None:
    """The UNIX time a wait ends: ``deadline`` as given, ``timeout`` seconds from now, the earlier of the
    two when both are given, None (no limit) when neither is."""
    relative = None if timeout is None else (clock or time.time)() + timeout
    limits = [limit for limit in (relative, deadline) if limit is not None]
    return min(limits) if limits else None


EXECUTION_TIMEOUT_MARGIN_SECONDS = 30.0
"""Airflow 2 cancels a deferred task at start + execution_timeout without telling the operator; the
trigger's own deadline comes this much earlier so the trigger can still kill the Kestra execution."""


def task_deadline(
    timeout: float | None, execution_timeout: timedelta | None, start_date: datetime | None
) -> float | None:
    """Wall-clock end of a task's wait: the operator ``timeout`` or the task's ``execution_timeout``."""
    deadlines = []
    if timeout is not None:
        deadlines.append(time.time() + timeout)
    if execution_timeout is not None:
        # Airflow 2.11's dag.test() leaves start_date unset; the task started no later than now.
        started_at = start_date.timestamp() if start_date is not None else time.time()
        limit = execution_timeout.total_seconds()
        margin = 0.0 if AIRFLOW_V_3_0_PLUS else min(EXECUTION_TIMEOUT_MARGIN_SECONDS, limit / 10)
        deadlines.append(started_at + limit - margin)
    return min(deadlines) if deadlines else None


def _is_terminal_execution(execution: KestraExecution) -> bool:
    return is_terminal(state_of(execution))


class KestraWaitTracker:
    """The bookkeeping of one ``wait_for_execution``, the same for the sync and async hooks.

    Remembers the last execution seen and reports each new state once to ``on_update``, and every
    execution it takes (stream frame or poll, changed or not) to ``on_frame``, so a caller can react to
    task-run changes that leave the execution's state as it was (the log pacer); ends the wait
    when ``until(execution)`` holds (by default: the execution is terminal), so a caller may stop at a
    state such as PAUSED; enforces the deadline (a ``clock()`` value, None for no limit); and decides when
    to give up on the event stream: after :attr:`MAX_STREAM_FAILURES` stream attempts in a row that
    brought no update, the wait only polls. A stream that was merely idle is reopened at once.

    A stream that trickles (keep-alive comments, a frame split in many reads, frames that are not
    executions) brings no news: the hook hands each read to :meth:`stream_read`, which enforces the
    deadline and asks for a status read once nothing was learnt for a poll interval.
    """

    MAX_STREAM_FAILURES = 3

    def __init__(
        self,
        execution_id: str,
        deadline: float | None,
        on_update: Callable[[KestraExecution], None] | None,
        clock: Callable[[], float] | None = None,
        until: Callable[[KestraExecution], bool] | None = None,
        on_frame: Callable[[KestraExecution], None] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.deadline = deadline
        self.on_update = on_update
        self.on_frame = on_frame
        self.clock = clock or time.time
        self.until = until or _is_terminal_execution
        self.last: KestraExecution | None = None
        self.state: str | None = None
        self.stream_failures = 0
        self._stream_updates = 0
        self._reconnect_now = False
        self._last_news = self.clock()

    @property
    def use_stream(self) -> bool:
        """Whether to (re)open the event stream before the next poll."""
        return self.stream_failures < self.MAX_STREAM_FAILURES

    def remaining(self, default: float) -> float:
        """Seconds left before the deadline (at least 0.5, at most ``default``); ``default`` without one."""
        if self.deadline is None:
            return default
        return max(0.5, min(default, self.deadline - self.clock()))

    def begin_stream(self) -> float:
        """Note that a stream attempt starts; returns its read timeout.

        Kestra sends nothing while an execution's state does not change, so silence is normal: the
        timeout is the time left to the deadline, at most :data:`STREAM_IDLE_SECONDS`.
        """
        self._stream_updates = 0
        self._reconnect_now = False
        self._last_news = self.clock()
        return self.remaining(STREAM_IDLE_SECONDS)

    def streamed(self, execution: KestraExecution) -> bool:
        """Take an update from the stream; True when it ends the wait (raises past the deadline otherwise)."""
        self._stream_updates += 1
        return self.polled(execution)

    def stream_failed(self, err: KestraError) -> None:
        """Count a failed stream attempt; one that brought updates before it broke resets the count.

        A stream that was only idle for its whole read timeout is no failure: after one poll it is
        reopened at once.
        """
        if isinstance(err, KestraStreamIdle):
            self._reconnect_now = True
            log.debug("Event stream of execution %s idle; reconnecting", self.execution_id)
            return
        if isinstance(err, KestraStreamError) and self._stream_updates:
            self.stream_failures = 0
        else:
            self.stream_failures += 1
        log.info("Falling back to polling execution %s: %s", self.execution_id, err)

    def polled(self, execution: KestraExecution) -> bool:
        """Take a polled execution; True when it ends the wait (raises past the deadline otherwise)."""
        self._update(execution)
        if self.until(execution):
            return True
        self.check_deadline()
        return False

    def stream_read(self, execution: KestraExecution | None, poll_interval: float) -> str:
        """Take one read of the stream: an execution update, or None for a read that carried none (a
        comment, part of a frame). ``"end"`` when the update ends the wait; ``"poll"`` when nothing was
        learnt for ``poll_interval`` seconds, so the hook reads the status once; else ``""``. Raises
        :class:`KestraWaitTimeout` past the deadline either way."""
        if execution is not None:
            return "end" if self.streamed(execution) else ""
        self.check_deadline()
        return "poll" if self.clock() - self._last_news >= poll_interval else ""

    def read_failed(self) -> None:
        """A status read gave up (its retries end at the deadline): past the deadline, the wait times out
        rather than fail on the last error; before it, the caller re-raises the error."""
        self.check_deadline()

    def poll_pause(self, poll_interval: float) -> float:
        """How long to sleep before the next poll: nothing when an idle stream is to be reopened."""
        if self._reconnect_now and self.use_stream:
            return 0.0
        return min(poll_interval, self.remaining(poll_interval))

    def check_deadline(self) -> None:
        """Raise :class:`KestraWaitTimeout` once ``clock()`` has reached the deadline."""
        if self.deadline is not None and self.clock() >= self.deadline:
            state = self.state or "in an unknown state"
            raise KestraWaitTimeout(
                f"Execution {self.execution_id} is still {state} after the timeout",
                execution_id=self.execution_id,
                state=self.state,
            )

    def _update(self, execution: KestraExecution) -> None:
        self.last = execution
        self._last_news = self.clock()
        state = state_of(execution) or None
        if state != self.state:
            self.state = state
            if self.on_update is not None:
                self.on_update(execution)
        if self.on_frame is not None:
            self.on_frame(execution)


class KestraMatchWait:
    """The bookkeeping of one ``wait_for_match``: search, and search again after a pause, until an
    execution matches or the deadline (a ``clock()`` value, None for no limit) passes.

    The hook searches first and asks :meth:`next_pause` only when nothing matched, so a match that
    already exists is found at once even with a deadline in the past.
    """

    def __init__(
        self, deadline: float | None, poll_interval: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.deadline = deadline
        self.poll_interval = max(0.0, poll_interval)
        self.clock = clock or time.time
        self.searches = 0

    def expired(self) -> bool:
        """Whether the deadline has passed (a search that failed for good then ends the wait without a
        match, like any wait past its deadline)."""
        return self.deadline is not None and self.clock() >= self.deadline

    def next_pause(self) -> float | None:
        """Seconds to sleep before the next search (at most the poll interval, never past the deadline);
        None when the deadline has passed and the wait ends without a match."""
        self.searches += 1
        if self.deadline is None:
            return self.poll_interval
        left = self.deadline - self.clock()
        if left <= 0:
            return None
        return min(self.poll_interval, left)


UNKNOWN_OUTCOME_SEARCH_SECONDS = 30.0
"""How long the label search after a create with an unknown outcome goes on before the POST is sent again
(a Kestra search index may list a new execution seconds after it was stored)."""


class KestraLabelSearch:
    """The rhythm of the label search after a create with an unknown outcome, without I/O: a first pause
    (the retry pause, at most 5 s), then searches 1, 2, 4, 5, 5... seconds apart until
    :data:`UNKNOWN_OUTCOME_SEARCH_SECONDS` have passed (at least two searches)."""

    def __init__(self, clock: Callable[[], float], first_pause: float) -> None:
        self.clock = clock
        self.ends = clock() + UNKNOWN_OUTCOME_SEARCH_SECONDS
        self.first_pause = min(max(0.0, first_pause), 5.0)
        self.searches = 0

    def next_pause(self) -> float | None:
        """The pause before the next search; None when the window is over."""
        self.searches += 1
        if self.searches == 1:
            return self.first_pause
        left = self.ends - self.clock()
        if left <= 0 and self.searches > 2:
            return None
        return max(0.0, min(2.0 ** (self.searches - 2), 5.0, left))
