"""Identifiers, timestamps and durations in the exact textual forms Kestra puts on the wire."""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timedelta, timezone

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_kestra_id() -> str:
    """A base62 rendering of a random 128-bit number, like Kestra's FriendlyId (at most 22 chars)."""
    number = secrets.randbits(128)
    chars = []
    while number:
        number, rest = divmod(number, 62)
        chars.append(_BASE62[rest])
    return "".join(reversed(chars)) or "0"


def now_instant(digits: int = 9) -> str:
    """The current time as a Java ``Instant.toString()``: UTC, ``Z``, fractional digits trimmed in 3s;
    ``digits`` truncates the clock first (3: an ``Instant.ofEpochMilli``, 6: Java's ``Instant.now()`` on
    Linux, 9: Python's nanosecond clock)."""
    unit = 10 ** (9 - digits)
    epoch_ns = time.time_ns()
    return format_instant_ns(epoch_ns - epoch_ns % unit)


def format_instant_ns(epoch_ns: int) -> str:
    """Format nanoseconds since the epoch the way ``Instant.toString()`` does."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{base}.{nanos // 1_000:06d}Z"
    return f"{base}.{nanos:09d}Z"


_FRACTION = re.compile(r"\.(\d+)")


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 date-time with any fractional precision and a ``Z`` or numeric offset."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    match = _FRACTION.search(value)
    if match:
        value = value.replace(match.group(0), "." + (match.group(1) + "000000")[:6], 1)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"Text '{text}' could not be parsed: missing zone offset")
    return parsed.astimezone(timezone.utc)


def instant_from_datetime(value: datetime) -> str:
    """Format an aware datetime as an ``Instant`` string."""
    as_utc = value.astimezone(timezone.utc)
    epoch = int(as_utc.timestamp())
    return format_instant_ns(epoch * 1_000_000_000 + as_utc.microsecond * 1_000)


def iso_duration(seconds: float) -> str:
    """Format a duration like Java's ``Duration.toString()`` (``PT2.51S``, ``PT1M2.5S``, ``PT0S``)."""
    total_ns = round(seconds * 1_000_000_000)
    sign = "-" if total_ns < 0 else ""
    total_ns = abs(total_ns)
    hours, rest = divmod(total_ns, 3_600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    secs, nanos = divmod(rest, 1_000_000_000)
    out = "PT"
    if hours:
        out += f"{sign}{hours}H"
    if minutes:
        out += f"{sign}{minutes}M"
    if secs or nanos or out == "PT":
        fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
        out += f"{sign}{secs}{fraction}S"
    return out


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_iso_duration(text: str) -> float:
    """Parse an ISO-8601 duration (``PT1S``, ``PT0.5S``, ``P1DT2H``) into seconds; ValueError if invalid."""
    match = _DURATION.match(str(text).strip())
    if not match or str(text).strip().upper() in ("P", "PT"):
        raise ValueError(f"Text cannot be parsed to a Duration: {text}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return float(
        timedelta(
            days=parts.get("days", 0.0),
            hours=parts.get("hours", 0.0),
            minutes=parts.get("minutes", 0.0),
            seconds=parts.get("seconds", 0.0),
        ).total_seconds()
    )
