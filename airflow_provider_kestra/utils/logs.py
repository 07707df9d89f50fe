"""A small, JSON-serialisable cursor over Kestra's ``GET /logs/{executionId}`` (which returns every line).

The cursor stores a time ``since`` and the fingerprints of the lines already returned at or after it.
A line is new when it is later than ``since`` and not among the fingerprints. ``since`` trails the
newest timestamp seen by :data:`LOG_CURSOR_WINDOW_SECONDS`, so lines that arrive late with equal or
slightly older timestamps (several workers, equal-millisecond lines) are still printed exactly once,
while the fingerprint list stays bounded (:data:`LOG_CURSOR_MAX_SEEN`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from collections.abc import Iterable

LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
LOG_CURSOR_WINDOW_SECONDS = 5
LOG_CURSOR_MAX_SEEN = 500

_INSTANT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


class KestraLogCursor(TypedDict):
    """Where a log reader stopped: ``since`` (ISO instant or None) and fingerprints of lines seen after it."""

    since: str | None
    seen: list[str]


def empty_log_cursor() -> KestraLogCursor:
    """A cursor that returns every line."""
    return {"since": None, "seen": []}


def normalise_level(level: str) -> str:
    """An SLF4J level name Kestra accepts as ``minLevel`` (``WARNING`` → ``WARN``); raises on others."""
    text = (level or "INFO").strip().upper()
    text = "WARN" if text == "WARNING" else text
    if text not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    return text


def at_least(entries: Iterable[dict[str, Any]], min_level: str) -> list[dict[str, Any]]:
    """The entries at ``min_level`` or more severe (unknown levels are kept).

    Applied after the server's own ``minLevel`` filtering, because the 2.x log endpoint documents
    ``filters`` instead of ``minLevel`` and may ignore it.
    """
    allowed = set(LOG_LEVELS[: LOG_LEVELS.index(normalise_level(min_level)) + 1])
    return [
        e for e in entries if str(e.get("level") or "").upper() not in LOG_LEVELS or e.get("level") in allowed
    ]


def instant_key(value: str | None) -> tuple[int, int]:
    """``(epoch seconds, nanoseconds)`` of a Kestra instant with 0-9 fraction digits; (0, 0) if unparsable."""
    match = _INSTANT.match((value or "").strip())
    if not match:
        return (0, 0)
    base, fraction, zone = match.groups()
    suffix = "+00:00" if zone in (None, "Z") else zone
    if len(suffix) == 5:
        suffix = suffix[:3] + ":" + suffix[3:]
    moment = datetime.fromisoformat(base + suffix).astimezone(timezone.utc)
    nanos = int((fraction or "0").ljust(9, "0"))
    return (int(moment.timestamp()), nanos)


def _fingerprint(entry: dict[str, Any], occurrence: int) -> str:
    raw = "\x1f".join(
        str(entry.get(key) or "")
        for key in ("timestamp", "taskRunId", "attemptNumber", "level", "thread", "message")
    )
    return hashlib.blake2b(f"{raw}\x1f{occurrence}".encode(), digest_size=8).hexdigest()


def _fingerprinted(entries: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], tuple[int, int], str]]:
    counts: Counter[str] = Counter()
    result = []
    for entry in entries:
        base = _fingerprint(entry, 0)
        occurrence = counts[base]
        counts[base] += 1
        fingerprint = base if occurrence == 0 else _fingerprint(entry, occurrence)
        result.append((entry, instant_key(entry.get("timestamp")), fingerprint))
    return result


def new_log_entries(
    entries: Iterable[dict[str, Any]], cursor: KestraLogCursor | None
) -> tuple[list[dict[str, Any]], KestraLogCursor]:
    """The entries not returned before (in server order) and the cursor to pass next time."""
    cursor = cursor or empty_log_cursor()
    since = instant_key(cursor.get("since")) if cursor.get("since") else None
    seen = set(cursor.get("seen") or [])
    marked = _fingerprinted(entries)
    fresh = [entry for entry, key, fp in marked if (since is None or key >= since) and fp not in seen]
    if not marked:
        return fresh, {"since": cursor.get("since"), "seen": list(cursor.get("seen") or [])}
    newest = max(key for _, key, _ in marked)
    if since is not None and since > (newest[0] - LOG_CURSOR_WINDOW_SECONDS, newest[1]):
        new_since = since
    else:
        new_since = (newest[0] - LOG_CURSOR_WINDOW_SECONDS, newest[1])
    window = sorted(((key, fp) for _, key, fp in marked if key >= new_since), reverse=True)
    if len(window) > LOG_CURSOR_MAX_SEEN:
        # Too many lines in the window: move ``since`` just past the oldest one kept.
        oldest = window[LOG_CURSOR_MAX_SEEN - 1][0]
        new_since = (oldest[0] + 1, 0) if oldest[1] >= 999_999_999 else (oldest[0], oldest[1] + 1)
        window = [item for item in window if item[0] >= new_since]
    return fresh, {"since": _format_key(new_since), "seen": [fp for _, fp in window]}


def _format_key(key: tuple[int, int]) -> str:
    moment = datetime.fromtimestamp(key[0], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{key[1]:09d}Z"
