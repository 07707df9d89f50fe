"""A small, JSON-serialisable cursor over an execution's Kestra log, and how new lines are picked from it.

The cursor stores a time ``since`` and the fingerprints of the lines already returned at or after it.
A line is new when it is later than ``since`` and not among the fingerprints. ``since`` trails the
newest timestamp seen by :data:`LOG_CURSOR_WINDOW_SECONDS`, so lines that arrive late with equal or
slightly older timestamps (several workers, equal-microsecond lines) are still printed exactly once,
while the fingerprint list stays bounded (:data:`LOG_CURSOR_MAX_SEEN`).

The hooks read only what is new: ``GET /logs/search`` filtered on the execution and on ``startDate >=
since`` (:func:`search_since`), so each read downloads the new lines plus the window again. The window is
the trade-off between bytes and late lines: a line indexed more than :data:`LOG_CURSOR_WINDOW_SECONDS`
after a newer line was read (an indexer or a worker lagging that much) is older than ``since`` and is not
shown; a wider window catches later lines but re-downloads more of a busy log on every read (capped at
:data:`LOG_CURSOR_MAX_SEEN` lines, after which ``since`` moves up). Two seconds keeps a log read every
five seconds under 1.5 times its size.

Servers without a usable search (API 0.22) answer ``GET /logs/{executionId}`` with every line; that answer
can be tens of megabytes, so it is read as it arrives: :class:`KestraJsonArrayReader` decodes the JSON
array one entry at a time and :class:`KestraLogSelection` decides per entry whether to show it, holding
only the cursor's bounded bookkeeping. :class:`KestraLogRelay` puts the hooks' reads to work for an
Airflow task log, the same way in a worker thread and in the triggerer.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import heapq
import json
import logging
import re
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import KestraError
from airflow_provider_kestra.utils.log_pacer import KestraLogReadResult

# KestraLogCursor lives in utils.models (plain data shapes); it stays importable from here for the hooks.
from airflow_provider_kestra.utils.models import KestraLogCursor  # noqa: TC001

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable, Iterator

    from airflow_provider_kestra.utils.models import KestraLogEntry

LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
LOG_CURSOR_WINDOW_SECONDS = 2
"""How far the cursor's ``since`` trails the newest line shown (the trade-off: see the module docstring)."""
LOG_CURSOR_MAX_SEEN = 500
MAX_JSON_ENTRY_CHARS = 16 * 1024 * 1024
"""The largest single array entry :class:`KestraJsonArrayReader` buffers before giving up."""

_INSTANT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


def empty_log_cursor() -> KestraLogCursor:
    """A cursor that returns every line."""
    return {"since": None, "seen": []}


def further_cursor(mine: KestraLogCursor | None, other: Any) -> KestraLogCursor | None:
    """Of two cursors over the same log, the one that has seen more: the later ``since`` wins; at the same
    ``since`` their ``seen`` lines are merged. An unusable ``other`` leaves ``mine``."""
    if not isinstance(other, dict) or not isinstance(other.get("seen", []), list):
        return mine
    if mine is None:
        return {"since": other.get("since"), "seen": list(other.get("seen") or [])}
    own, theirs = instant_key(mine.get("since")), instant_key(other.get("since"))
    if theirs > own:
        return {"since": other.get("since"), "seen": list(other.get("seen") or [])}
    if theirs == own:
        merged = list(dict.fromkeys([*(mine.get("seen") or []), *(other.get("seen") or [])]))
        return {"since": mine.get("since"), "seen": merged}
    return mine


def normalise_level(level: str) -> str:
    """An SLF4J level name Kestra accepts as ``minLevel`` (``WARNING`` → ``WARN``); raises on others."""
    text = (level or "INFO").strip().upper()
    text = "WARN" if text == "WARNING" else text
    if text not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    return text


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


def search_since(since: str | None) -> str | None:
    """``since`` as the value of a ``filters[startDate][GREATER_THAN_OR_EQUAL_TO]`` log search: truncated
    down to milliseconds (``2026-11-30T10:00:01.228Z``), None for no ``since`` or an unparsable one.

    Kestra parses the value with ``ZonedDateTime.parse`` (nanoseconds would do) but compares it with the
    ``timestamp`` column of its database, which may keep fewer digits than the line had; truncating down
    only widens the inclusive filter, and the lines read again are dropped by their fingerprints.
    """
    if not since or not _INSTANT.match(since.strip()):
        return None
    seconds, nanos = instant_key(since)
    return _format_key((seconds, nanos - nanos % 1_000_000), digits=3)


def _fingerprint(entry: dict[str, Any], occurrence: int) -> str:
    raw = "\x1f".join(
        str(entry.get(key) or "")
        for key in ("timestamp", "taskRunId", "attemptNumber", "level", "thread", "message")
    )
    return hashlib.blake2b(f"{raw}\x1f{occurrence}".encode(), digest_size=8).hexdigest()


class KestraLogSelection:
    """Decides, one entry at a time in server order, which log lines to show: those at ``min_level`` or
    above (unknown levels are kept; ``None`` keeps every level) that ``cursor`` has not returned yet.
    :attr:`cursor` is the cursor to pass next time; it is valid at any point, also after reading only
    part of an answer.

    Holds only bounded state: the previous cursor, the :data:`LOG_CURSOR_MAX_SEEN` + 1 newest lines and
    a count per distinct line (identical lines are told apart by their occurrence number).
    """

    def __init__(self, min_level: str | None = "INFO", cursor: KestraLogCursor | None = None) -> None:
        self.min_level = normalise_level(min_level) if min_level is not None else "TRACE"
        self._allowed = (
            frozenset(LOG_LEVELS[: LOG_LEVELS.index(self.min_level) + 1]) if min_level is not None else None
        )
        self._previous: KestraLogCursor = cursor or empty_log_cursor()
        since = self._previous.get("since")
        self._since = instant_key(since) if since else None
        self._seen = set(self._previous.get("seen") or [])
        self._counts: Counter[str] = Counter()
        self._newest: tuple[int, int] | None = None
        self._top: list[tuple[tuple[int, int], str]] = []

    @property
    def since(self) -> str | None:
        """The ``since`` of the cursor this selection started from: lines before it are not new."""
        since = self._previous.get("since")
        return str(since) if since else None

    def has_level(self, entry: dict[str, Any]) -> bool:
        """Whether the entry is at ``min_level`` or above (or has a level this provider does not know).

        Applied after the server's own level filtering (``minLevel``, or ``filters[level]`` of the log
        search), because a server may ignore the one it does not know.
        """
        if self._allowed is None:
            return True
        level = entry.get("level")
        return str(level or "").upper() not in LOG_LEVELS or level in self._allowed

    def accepts(self, entry: dict[str, Any]) -> bool:
        """Whether to show this entry (the next one of the answer); records it in the cursor."""
        if not self.has_level(entry):
            return False
        base = _fingerprint(entry, 0)
        occurrence = self._counts[base]
        self._counts[base] += 1
        fingerprint = base if occurrence == 0 else _fingerprint(entry, occurrence)
        key = instant_key(entry.get("timestamp"))
        if self._newest is None or key > self._newest:
            self._newest = key
        item = (key, fingerprint)
        if len(self._top) <= LOG_CURSOR_MAX_SEEN:
            heapq.heappush(self._top, item)
        elif item > self._top[0]:
            heapq.heapreplace(self._top, item)
        return (self._since is None or key >= self._since) and fingerprint not in self._seen

    @property
    def cursor(self) -> KestraLogCursor:
        """Where the next read resumes: ``since`` trails the newest line by the window, ``seen`` lists
        the lines at or after it (at most :data:`LOG_CURSOR_MAX_SEEN`; when more share the window,
        ``since`` moves just past the oldest one kept)."""
        if self._newest is None:
            return {"since": self._previous.get("since"), "seen": list(self._previous.get("seen") or [])}
        lower = (self._newest[0] - LOG_CURSOR_WINDOW_SECONDS, self._newest[1])
        new_since = self._since if self._since is not None and self._since > lower else lower
        window = sorted((item for item in self._top if item[0] >= new_since), reverse=True)
        if len(window) > LOG_CURSOR_MAX_SEEN:
            oldest = window[LOG_CURSOR_MAX_SEEN - 1][0]
            new_since = (oldest[0] + 1, 0) if oldest[1] >= 999_999_999 else (oldest[0], oldest[1] + 1)
            window = [item for item in window if item[0] >= new_since]
        return {"since": _format_key(new_since), "seen": [fp for _, fp in window]}


class KestraJsonArrayReader:
    """Decodes a JSON array that arrives in byte chunks, one element at a time.

    Only the text of the element being received is buffered (at most ``max_entry_chars``). ``what``
    names the answer in errors. An empty body counts as an empty array.
    """

    def __init__(self, what: str, max_entry_chars: int = MAX_JSON_ENTRY_CHARS) -> None:
        self.what = what
        self.max_entry_chars = max_entry_chars
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._retry_at = 0
        self._state = "start"  # start -> value | next -> ... -> done

    def feed(self, chunk: bytes) -> list[Any]:
        """The elements completed by this chunk."""
        try:
            self._buffer += self._text.decode(chunk)
        except UnicodeDecodeError as err:
            raise KestraError(f"{self.what} is not UTF-8 text: {err}") from None
        return self._elements(final=False)

    def close(self) -> list[Any]:
        """The last elements; raises :class:`KestraError` if the array is incomplete or malformed."""
        try:
            self._buffer += self._text.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise KestraError(f"{self.what} is not UTF-8 text: {err}") from None
        elements = self._elements(final=True)
        if self._state not in ("done", "start"):
            raise KestraError(f"{self.what} ended before its JSON array was complete (truncated body)")
        return elements

    def _elements(self, *, final: bool) -> list[Any]:
        elements: list[Any] = []
        buffer, pos = self._buffer, 0
        while True:
            pos = _skip_space(buffer, pos)
            if pos == len(buffer):
                break
            char = buffer[pos]
            if self._state == "start":
                if char != "[":
                    raise KestraError(
                        f"{self.what} is not a JSON array (it starts with {buffer[pos : pos + 20]!r})"
                    )
                self._state, pos = "first", pos + 1
            elif self._state in ("first", "value") and not (self._state == "first" and char == "]"):
                if len(buffer) - pos < self._retry_at and not final:
                    break
                try:
                    element, end = self._decoder.raw_decode(buffer, pos)
                except json.JSONDecodeError as err:
                    if final:
                        raise KestraError(
                            f"{self.what} ended before its JSON array was complete or is malformed: {err.msg}"
                        ) from None
                    # Wait for more text; retry once it has doubled, so a big entry costs linear time.
                    self._retry_at = 2 * (len(buffer) - pos)
                    break
                if end == len(buffer) and not final:
                    break  # a number could still continue in the next chunk
                elements.append(element)
                self._state, pos, self._retry_at = "next", end, 0
            elif self._state in ("first", "next") and char == "]":
                self._state, pos = "done", pos + 1
            elif self._state == "next" and char == ",":
                self._state, pos = "value", pos + 1
            else:
                raise KestraError(
                    f"{self.what} is not a valid JSON array (unexpected {buffer[pos : pos + 20]!r})"
                )
        self._buffer = buffer[pos:]
        if len(self._buffer) > self.max_entry_chars:
            raise KestraError(
                f"{self.what} has an entry larger than {self.max_entry_chars} characters; not reading it"
            )
        return elements


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _format_key(key: tuple[int, int], digits: int = 9) -> str:
    moment = datetime.fromtimestamp(key[0], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{key[1]:09d}"[: len(moment) + 1 + digits] + "Z"


_AIRFLOW_LEVELS = {"ERROR": logging.ERROR, "WARN": logging.WARNING, "WARNING": logging.WARNING}


def log_kestra_entries(logger: logging.Logger | Any, entries: Iterable[KestraLogEntry]) -> None:
    """Write Kestra log lines into an Airflow log, each tagged with the Kestra task id that produced it.

    ERROR and WARN keep their level; every other line logs at INFO so a DEBUG/TRACE selection is visible.
    """
    for entry in entries:
        task_id = entry.get("taskId") or entry.get("triggerId") or "execution"
        level = _AIRFLOW_LEVELS.get(str(entry.get("level", "")).upper(), logging.INFO)
        logger.log(level, "[kestra:%s] %s", task_id, entry.get("message", ""))


class KestraLogRelay:
    """Copies the Kestra log lines of an execution that were not shown yet into an Airflow task log.

    The one relay of the package: the operator's log-following thread and the deferrable trigger both use
    it, so each line is printed once, as ``[kestra:<task id>] message``, wherever the wait happens.
    :attr:`cursor` is JSON-safe because it travels between them (trigger kwargs out, trigger event back).

    Lines are read one by one as Kestra sends them (``read`` is the hook's ``iter_logs``): the whole log
    may be far bigger than a worker or the triggerer should hold. Reading is best effort: a failure is
    logged as a warning and never ends a wait, and the cursor is kept also after an error, since it covers
    exactly the lines printed. Each read returns a
    :class:`~airflow_provider_kestra.utils.log_pacer.KestraLogReadResult` (the task runs the printed lines
    came from, and whether the read failed), which tells the log pacer whether a task is still logging.

    :param logger: Where the lines go (the task's or the trigger's ``log``).
    :param min_level: Lowest Kestra level relayed (``ERROR``, ``WARN``, ``INFO``, ``DEBUG``, ``TRACE``).
    :param cursor: Where an earlier relay stopped; ``None`` relays from the first line.
    """

    def __init__(
        self, logger: logging.Logger | Any, min_level: str, cursor: KestraLogCursor | None = None
    ) -> None:
        self.logger = logger
        self.min_level = min_level
        self.cursor = cursor

    def relay(
        self, execution_id: str, read: Callable[[str, KestraLogSelection], Iterator[KestraLogEntry]]
    ) -> KestraLogReadResult:
        """Relay the new lines of ``execution_id`` that ``read(execution_id, selection)`` yields."""
        selection = self._selection()
        if selection is None:
            return KestraLogReadResult(failed=True)
        task_runs: set[str | None] = set()
        failed = True
        with self._reading(execution_id, selection):
            for entry in read(execution_id, selection):
                task_runs.add(_task_run_of(entry))
                log_kestra_entries(self.logger, [entry])
            failed = False
        return KestraLogReadResult(frozenset(task_runs), failed)

    async def arelay(
        self,
        execution_id: str,
        read: Callable[[str, KestraLogSelection], AsyncGenerator[KestraLogEntry, None]],
    ) -> KestraLogReadResult:
        """:meth:`relay` for an async reader (the triggerer's hook); the reader is closed on every exit."""
        selection = self._selection()
        if selection is None:
            return KestraLogReadResult(failed=True)
        task_runs: set[str | None] = set()
        failed = True
        with self._reading(execution_id, selection):
            async with contextlib.aclosing(read(execution_id, selection)) as entries:
                async for entry in entries:
                    task_runs.add(_task_run_of(entry))
                    log_kestra_entries(self.logger, [entry])
            failed = False
        return KestraLogReadResult(frozenset(task_runs), failed)

    def _selection(self) -> KestraLogSelection | None:
        try:
            return KestraLogSelection(self.min_level, self.cursor)
        except (AttributeError, TypeError, ValueError) as err:
            self.logger.warning("Not reading Kestra logs: unusable log cursor %r: %s", self.cursor, err)
            return None

    @contextlib.contextmanager
    def _reading(self, execution_id: str, selection: KestraLogSelection) -> Iterator[None]:
        """Around one read: an error becomes a warning, and the cursor moves on however the read ended
        (also on cancellation), since it covers exactly the lines printed."""
        try:
            yield
        except Exception as err:
            self._could_not_read(execution_id, err)
        finally:
            self.cursor = selection.cursor

    def _could_not_read(self, execution_id: str, err: Exception) -> None:
        self.logger.warning("Could not read the logs of Kestra execution %s: %s", execution_id, err)


def _task_run_of(entry: KestraLogEntry | dict[str, Any]) -> str | None:
    """The task run a log line came from; None for the execution's own lines (no ``taskRunId``)."""
    task_run_id = entry.get("taskRunId")
    return str(task_run_id) if task_run_id else None
