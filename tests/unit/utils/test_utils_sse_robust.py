"""The event-stream reader never fails on what a proxy adds (issue 10, case 2): non-JSON data, comment-only
traffic, frames split at any byte, a multi-megabyte line arriving in many reads."""

from __future__ import annotations

import json

import pytest

from airflow_provider_kestra.utils.sse import KestraExecutionFollowReader, KestraSseLineBuffer


def frame(kind: str, state: str, pad: int = 0) -> bytes:
    data = {"id": "e1", "state": {"current": state}, "pad": "x" * pad}
    return f"id: {kind}\ndata: {json.dumps(data)}\n\n".encode()


BODY = (
    b": keep-alive\n\ndata: ping\n\n"
    + b'id: start\ndata: {"id": "e1"}\n\n'
    + frame("progress", "RUNNING")
    + b"data: {not json\n\ndata: 42\n\n:comment\r\n\r\n"
    + frame("progress", "RUNNING", pad=300)
    + frame("end", "SUCCESS")
    + frame("progress", "FAILED")
)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(BODY)])
def test_frames_split_anywhere_give_the_same_executions(size: int) -> None:
    reader = KestraExecutionFollowReader()
    states = []
    for start in range(0, len(BODY), size):
        states += [e["state"]["current"] for e in reader.feed_chunk(BODY[start : start + size])]
    assert states == ["RUNNING", "RUNNING", "SUCCESS"] and reader.ended


def test_comment_only_traffic_is_nothing() -> None:
    reader = KestraExecutionFollowReader()
    for _ in range(100):
        assert reader.feed_chunk(b": keep-alive\n\n") == [] and reader.frames(b":\n") == []
    assert not reader.ended


def test_an_end_frame_that_is_not_json_ends_the_stream_without_an_execution() -> None:
    reader = KestraExecutionFollowReader()
    assert reader.feed_chunk(b"id: end\ndata: <html>\n\n") == [] and reader.ended


def test_a_long_line_in_many_reads_is_joined_once() -> None:
    buffer = KestraSseLineBuffer()
    line = b"data: " + b"x" * 100_000
    for start in range(0, len(line), 1000):
        assert buffer.feed(line[start : start + 1000]) == []
    assert buffer.feed(b"\r\nnext") == [line.decode()]
    assert buffer.flush() == ["next"]
