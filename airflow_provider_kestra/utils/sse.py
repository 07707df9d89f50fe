"""A server-sent-events frame parser fed one line at a time (by ``iter_lines`` or ``aiter_lines``), and
the reader of Kestra's execution follow stream built on it.

Kestra frames carry an ``id:`` (``start``, ``progress``, ``end``) and one ``data:`` line of JSON, with no
``event:`` name. The parser follows the SSE rules anyway: several ``data:`` lines join with ``\\n``,
``:`` lines are comments, one space after the colon is dropped, a blank line ends a frame.

Whatever a proxy adds is skipped, never an error: comment-only traffic, frames whose data is not JSON
(``data: ping``) or not an execution, frames split at any byte.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from airflow_provider_kestra.utils.models import KestraExecution

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KestraSseEvent:
    """One dispatched frame. Kestra puts the frame kind in ``id``; ``event`` is usually empty."""

    id: str
    event: str
    data: str

    @property
    def kind(self) -> str:
        """``start``/``progress``/``end`` for Kestra frames (``event`` wins when a server sets it)."""
        return self.event or self.id

    def json(self) -> Any:
        """The decoded ``data`` (None when empty)."""
        return json.loads(self.data) if self.data.strip() else None


@dataclass
class KestraSseParser:
    """Accumulates lines into :class:`KestraSseEvent` frames."""

    _id: str = ""
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _has_field: bool = False

    def feed(self, line: str | bytes) -> KestraSseEvent | None:
        """Consume one line (without its newline); returns a frame when this line completes one."""
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "event":
            self._event = value
        else:
            return None
        self._has_field = True
        return None

    def flush(self) -> KestraSseEvent | None:
        """Dispatch a last frame that the stream ended without a blank line after."""
        return self._dispatch()

    def _dispatch(self) -> KestraSseEvent | None:
        if not self._has_field:
            return None
        frame = KestraSseEvent(id=self._id, event=self._event, data="\n".join(self._data))
        self._event, self._data, self._has_field = "", [], False
        return frame


@dataclass
class KestraSseLineBuffer:
    """Splits raw byte chunks into lines (``\\n`` or ``\\r\\n``), even when a chunk ends mid-line."""

    _pending: list[bytes] = field(default_factory=list)

    def feed(self, chunk: bytes) -> list[str]:
        """The complete lines in what is pending + ``chunk`` (without terminators). A long line (a big
        execution is one multi-megabyte ``data:`` line) is joined once, when its end arrives."""
        if b"\n" not in chunk:
            if chunk:
                self._pending.append(chunk)
            return []
        data = b"".join([*self._pending, chunk])
        *lines, rest = data.split(b"\n")
        self._pending = [rest] if rest else []
        return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in lines]

    def flush(self) -> list[str]:
        """The last, unterminated line, if any."""
        rest, self._pending = b"".join(self._pending), []
        return [rest.rstrip(b"\r").decode("utf-8", errors="replace")] if rest else []


@dataclass
class KestraExecutionFollowReader:
    """Reads ``GET /executions/{id}/follow`` line by line: skips the ``start`` stub, returns each execution
    update, and sets :attr:`ended` at the ``end`` frame (the last one: the caller stops reading there)."""

    ended: bool = False
    _parser: KestraSseParser = field(default_factory=KestraSseParser)
    _lines: KestraSseLineBuffer = field(default_factory=KestraSseLineBuffer)

    def feed_chunk(self, chunk: bytes) -> list[KestraExecution]:
        """The executions carried by the frames a raw chunk of the body completes, in order; nothing
        after the ``end`` frame (both hooks read the stream as bytes and hand each chunk here)."""
        return [e for e in map(execution_of, self.frames(chunk)) if e is not None]

    def frames(self, chunk: bytes) -> list[KestraSseEvent]:
        """The frames a raw chunk completes that may carry an execution (``start`` skipped; nothing after
        ``end``), not decoded yet: decode each with :func:`execution_of` (the async hook decodes big ones
        off its event loop)."""
        frames: list[KestraSseEvent] = []
        for line in self._lines.feed(chunk):
            if self.ended:
                break
            event = self._frame(line)
            if event is not None:
                frames.append(event)
        return frames

    def feed(self, line: str | bytes) -> KestraExecution | None:
        """The execution carried by the frame this line completes, if any."""
        event = self._frame(line)
        return execution_of(event) if event is not None else None

    def _frame(self, line: str | bytes) -> KestraSseEvent | None:
        event = self._parser.feed(line)
        if event is None or event.kind == "start":
            return None
        if event.kind == "end":
            self.ended = True
        return event


def execution_of(event: KestraSseEvent) -> KestraExecution | None:
    """The execution a frame carries; None (skipped, logged at DEBUG) for data that is not JSON (a proxy's
    ``data: ping``) or not an execution (no ``state``)."""
    try:
        data = event.json()
    except ValueError:
        log.debug("Skipping an event-stream frame whose data is not JSON: %r", event.data[:80])
        return None
    if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
        return None
    return cast("KestraExecution", data)
