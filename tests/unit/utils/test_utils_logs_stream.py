"""The incremental JSON array reader and the per-entry log selection behind ``KestraHook.iter_logs``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.log_helpers import new_log_entries

from airflow_provider_kestra.exceptions import KestraError
from airflow_provider_kestra.utils.logs import LOG_CURSOR_MAX_SEEN, KestraJsonArrayReader, KestraLogSelection

TRICKY = [
    {"message": 'a "quoted" ] bracket, [ and \\ backslash', "level": "INFO"},
    {"message": "unicode é 漢字 🎉", "n": 12345678901234567890, "f": -1.5e-7},
    {"message": "", "nested": {"list": [1, [2, {"k": "]}"}]], "null": None, "t": True}},
    "a bare string",
    42,
]


def read(chunks: list[bytes]) -> list[Any]:
    reader = KestraJsonArrayReader("the test answer")
    elements = []
    for chunk in chunks:
        elements.extend(reader.feed(chunk))
    elements.extend(reader.close())
    return elements


def split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_chunking_decodes_the_same_elements(size: int, indent: int | None) -> None:
    body = json.dumps(TRICKY, indent=indent, ensure_ascii=False).encode()
    assert read(split(body, size)) == TRICKY


def test_elements_come_out_as_soon_as_they_are_complete() -> None:
    reader = KestraJsonArrayReader("the test answer")
    assert reader.feed(b' \n[ {"a": "x]"}') == []  # the next byte could still be part of a number
    assert reader.feed(b" , 12") == [{"a": "x]"}]
    assert reader.feed(b"3") == []
    assert reader.feed(b" ]\n") == [123]
    assert reader.close() == []


@pytest.mark.parametrize("body", [b"[]", b"  [ \r\n ]  ", b""])
def test_empty_array_and_empty_body_have_no_elements(body: bytes) -> None:
    assert read(split(body, 1) if body else []) == []


@pytest.mark.parametrize(
    "body",
    [b'[{"a": 1}', b'[{"a": 1},', b'[{"a": "unterminated', b"[", b'[{"a": 1}, 2'],
)
def test_truncated_body_is_a_clear_error(body: bytes) -> None:
    with pytest.raises(KestraError, match="the test answer ended before its JSON array was complete"):
        read(split(body, 3))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"message": "not found"}', "is not a JSON array"),
        (b"<html>", "is not a JSON array"),
        (b"[1 2]", "is not a valid JSON array"),
        (b"[1], [2]", "is not a valid JSON array"),
    ],
)
def test_malformed_body_is_a_clear_error(body: bytes, problem: str) -> None:
    with pytest.raises(KestraError, match=f"the test answer {problem}"):
        read([body])


def test_entry_larger_than_the_limit_is_refused_without_buffering_more() -> None:
    reader = KestraJsonArrayReader("the test answer", max_entry_chars=100)
    assert reader.feed(b'[{"m": "short"},') == [{"m": "short"}]
    with pytest.raises(KestraError, match="entry larger than 100 characters"):
        reader.feed(b'{"m": "' + b"x" * 200)


def test_invalid_utf8_is_a_clear_error() -> None:
    with pytest.raises(KestraError, match="is not UTF-8 text"):
        read([b'["\xff"]'])


def entry(second: int, message: str, level: str = "INFO") -> dict[str, Any]:
    return {"timestamp": f"2026-03-01T10:00:{second:02d}.000Z", "level": level, "message": message}


def test_selection_filters_levels_and_shows_each_line_once_across_reads() -> None:
    first = [entry(1, "a"), entry(2, "debug", "DEBUG"), entry(2, "b", "WARN"), entry(2, "b", "WARN")]
    later = [*first, entry(3, "c", "ERROR"), entry(9, "custom", "NOTICE")]
    selection = KestraLogSelection("warning")
    assert [e["message"] for e in first if selection.accepts(e)] == ["b", "b"]
    cursor = json.loads(json.dumps(selection.cursor))
    selection = KestraLogSelection("WARN", cursor)
    assert [e["message"] for e in later if selection.accepts(e)] == ["c", "custom"]
    assert [e for e in later if KestraLogSelection("WARN", selection.cursor).accepts(e)] == []


def test_new_log_entries_matches_reading_entry_by_entry() -> None:
    entries = [entry(s % 60, f"m{s % 7}") for s in range(0, 1200)]
    fresh, cursor = new_log_entries(entries, None)
    assert fresh == entries
    assert len(cursor["seen"]) <= LOG_CURSOR_MAX_SEEN
    assert new_log_entries(entries, cursor)[0] == []
    assert new_log_entries([*entries, entry(59, "new")], cursor)[0] == [entry(59, "new")]


def test_a_cursor_taken_part_way_resumes_without_repeating_or_losing_lines() -> None:
    entries = [entry(s // 20, f"line {s}") for s in range(1000)]
    shown: list[dict[str, Any]] = []
    selection = KestraLogSelection("INFO")
    for item in entries[:700]:  # the read breaks after 700 lines
        if selection.accepts(item):
            shown.append(item)
    selection = KestraLogSelection("INFO", selection.cursor)
    shown.extend(e for e in entries if selection.accepts(e))
    assert shown == entries
    assert len(selection.cursor["seen"]) <= LOG_CURSOR_MAX_SEEN
