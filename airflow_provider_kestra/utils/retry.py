"""When a failed Kestra request may be sent again, and how long to wait first (sync and async share it).

Each route declares a :class:`KestraRetryMode`:

* ``SAFE``: repeating the request cannot change the outcome (GET, PUT, DELETE, validate, kill).
  Retried after connection errors, read timeouts, 429, 502, 503 and 504.
* ``ONCE``: repeating it after Kestra may have acted would be wrong or fail (create flow, restart,
  resume: a second resume answers 409 "not paused"). Retried only when Kestra certainly did not act:
  the connection could not be opened, or 429 (rejected before any work).
* ``AMBIGUOUS``: the create-execution POST. Like ``ONCE``, but the hook may resolve an ambiguous outcome
  (by searching for the execution's idempotency label) and then retry.

401, 403, 404, 409 and 422 are never retried, with one exception: a 404 on the first reads of an execution
just created or just waited for (read-after-write lag, :data:`READ_AFTER_WRITE_SECONDS`).

A ``200`` whose body cannot be read (a proxy's HTML login or maintenance page, an empty or cut JSON body)
is a :attr:`KestraFailureKind.GARBLED` failure: retried on ``SAFE`` routes, an unknown outcome for the
create POST.

Ordinary calls give up after ``retry_limit`` retries. The wait path (waiting for an execution or for a
match, and every read it does) retries under a :class:`KestraPatience` instead: it never gives up before
the task's deadline (none: never), backs off up to :data:`MAX_BACKOFF_SECONDS`, honours ``Retry-After``
but never sleeps past the deadline, and warns every :data:`OUTAGE_WARNING_SECONDS` of outage.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})
"""Statuses that say "try again later"; 429 is the only one that proves the request was not processed."""

MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0
OUTAGE_WARNING_SECONDS = 120.0
"""How often a wait that cannot reach Kestra says so at WARNING level."""
READ_AFTER_WRITE_SECONDS = 30.0
"""How long a 404 on an execution just created (or whose wait just started, before any successful read)
is taken for read-after-write lag and retried."""


class KestraRetryMode(str, Enum):
    """How a route may be repeated; see the module docstring."""

    SAFE = "safe"
    ONCE = "once"
    AMBIGUOUS = "ambiguous"


class KestraFailureKind(str, Enum):
    """What went wrong with one attempt, as far as retrying is concerned."""

    NOT_SENT = "not-sent"
    """The connection could not be opened: the server never saw the request."""
    LOST = "lost"
    """The request may have reached the server (read timeout, connection dropped mid-way)."""
    REJECTED = "rejected"
    """HTTP 429: the server refused it before processing."""
    UNAVAILABLE = "unavailable"
    """HTTP 502/503/504 (any 5xx in the wait path): a proxy or the server gave up; the outcome is unknown."""
    GARBLED = "garbled"
    """A success status whose body cannot be read (HTML page, empty or cut JSON): the outcome is unknown."""
    LAGGING = "lagging"
    """HTTP 404 for an execution just created: a replica that has not seen it yet (read-after-write)."""


def failure_kind_for_status(status: int) -> KestraFailureKind | None:
    """The failure kind of an HTTP status, or None when the status must not be retried."""
    if status == 429:
        return KestraFailureKind.REJECTED
    if status in RETRYABLE_STATUSES:
        return KestraFailureKind.UNAVAILABLE
    return None


def may_retry(mode: KestraRetryMode, kind: KestraFailureKind) -> bool:
    """Whether a request of this mode may be sent again after this kind of failure."""
    if mode is KestraRetryMode.SAFE:
        return True
    return kind in (KestraFailureKind.NOT_SENT, KestraFailureKind.REJECTED)


def is_ambiguous(kind: KestraFailureKind) -> bool:
    """Whether the server may have acted on the request despite the failure."""
    return kind in (KestraFailureKind.LOST, KestraFailureKind.UNAVAILABLE, KestraFailureKind.GARBLED)


def backoff_delay(attempt: int, base: float, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt`` capped, then scaled by 0.5..1.0.

    ``attempt`` counts from 0 for the first retry.
    """
    ceiling = min(MAX_BACKOFF_SECONDS, max(0.0, base) * (2 ** max(0, attempt)))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP-date), capped; None if bad."""
    if not value:
        return None
    text = value.strip()
    seconds: float
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def retry_wait(
    attempt: int, base: float, retry_after: str | None, *, rng: random.Random | None = None
) -> float:
    """The wait before the next attempt: the server's ``Retry-After`` when given, else the backoff."""
    server = parse_retry_after(retry_after)
    return server if server is not None else backoff_delay(attempt, base, rng=rng)


class KestraPatience:
    """The retry budget of the wait path, without I/O: retry until ``deadline`` (a ``clock()`` value; None:
    forever) instead of ``retry_limit`` times, and say every ``warn_every`` seconds that Kestra is still
    unreachable. One instance spans every request of one wait, so an outage is measured across requests;
    :meth:`recovered` (any answer) ends it.
    """

    def __init__(
        self,
        what: str,
        deadline: float | None,
        *,
        clock: Callable[[], float] | None = None,
        warn_every: float = OUTAGE_WARNING_SECONDS,
    ) -> None:
        self.what = what
        self.deadline = deadline
        self.clock = clock or time.time
        self.warn_every = warn_every
        self.outage_since: float | None = None
        self._warned_at: float | None = None

    def left(self) -> float | None:
        """Seconds to the deadline (never below 0); None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())

    def pause(self, attempt: int, base: float, retry_after: str | None) -> float | None:
        """The pause before attempt ``attempt + 1``: the backoff (at most :data:`MAX_BACKOFF_SECONDS`) or
        the server's ``Retry-After``, cut at the deadline; None once the deadline has passed."""
        now = self.clock()
        if self.outage_since is None:
            self.outage_since = now
        left = self.left()
        if left is not None and left <= 0:
            return None
        wait = retry_wait(min(attempt, 32), base, retry_after)
        return wait if left is None else min(wait, left)

    def warning(self, where: str) -> str | None:
        """The WARNING line to log now, when the outage has lasted another ``warn_every`` seconds."""
        if self.outage_since is None:
            return None
        now = self.clock()
        if now - (self._warned_at or self.outage_since) < self.warn_every:
            return None
        self._warned_at = now
        until = "no deadline" if self.deadline is None else _utc(self.deadline)
        return (
            f"Kestra unreachable for {now - self.outage_since:.0f} s while {self.what} ({where}); "
            f"still waiting until {until}"
        )

    def recovered(self) -> None:
        """Kestra answered: the outage (if any) is over."""
        self.outage_since = self._warned_at = None


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def requests_failure_kind(err: BaseException) -> KestraFailureKind:
    """The failure kind of a requests transport error: ``NOT_SENT`` when the connection was never opened
    (refused, connect timeout), else ``LOST`` (the server may have the request)."""
    import requests

    if isinstance(err, requests.exceptions.ConnectTimeout) or (
        isinstance(err, requests.exceptions.ConnectionError) and never_sent(err)
    ):
        return KestraFailureKind.NOT_SENT
    return KestraFailureKind.LOST


def never_sent(err: BaseException) -> bool:
    """Whether a requests connection error happened before the request left (connection not opened):
    urllib3's ``NewConnectionError`` or ``ConnectTimeoutError`` somewhere in its causes."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    cause: BaseException | None = err
    while cause is not None:
        reason = getattr(cause, "reason", None)
        if isinstance(cause, (NewConnectionError, ConnectTimeoutError)) or isinstance(
            reason, (NewConnectionError, ConnectTimeoutError)
        ):
            return True
        cause = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
    return False


def read_timed_out(err: BaseException) -> bool:
    """Whether a requests body read failed only because nothing arrived within the read timeout
    (requests wraps urllib3's ``ReadTimeoutError`` in a ``ConnectionError`` while streaming)."""
    import requests
    import urllib3.exceptions

    if isinstance(err, (requests.exceptions.ReadTimeout, TimeoutError)):
        return True
    cause = err.args[0] if err.args else None
    return isinstance(err, requests.exceptions.ConnectionError) and isinstance(
        cause, urllib3.exceptions.ReadTimeoutError
    )


def httpx_failure_kind(err: BaseException) -> KestraFailureKind | None:
    """The failure kind of an httpx transport error: ``NOT_SENT`` when the connection was never opened,
    ``LOST`` otherwise; None for a TLS failure (retrying cannot fix a certificate)."""
    import httpx

    if isinstance(err, httpx.ConnectError) and "ssl" in str(err).lower():
        return None
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return KestraFailureKind.NOT_SENT
    return KestraFailureKind.LOST
