"""When a failed Kestra request may be sent again, and how long to wait first (sync and async share it).

Each route declares a :class:`KestraRetryMode`:

* ``SAFE``: repeating the request cannot change the outcome (GET, PUT, DELETE, validate, kill).
  Retried after connection errors, read timeouts, 429, 502, 503 and 504.
* ``ONCE``: repeating it after Kestra may have acted would be wrong or fail (create flow, restart,
  resume: a second resume answers 409 "not paused"). Retried only when Kestra certainly did not act:
  the connection could not be opened, or 429 (rejected before any work).
* ``AMBIGUOUS``: the create-execution POST. Like ``ONCE``, but the hook may resolve an ambiguous outcome
  (by searching for the execution's idempotency label) and then retry.

401, 403, 404, 409 and 422 are never retried.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import Enum

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})
"""Statuses that say "try again later"; 429 is the only one that proves the request was not processed."""

MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0


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
    """HTTP 502/503/504: a proxy or the server gave up; the outcome is unknown."""


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
    return kind in (KestraFailureKind.LOST, KestraFailureKind.UNAVAILABLE)


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
