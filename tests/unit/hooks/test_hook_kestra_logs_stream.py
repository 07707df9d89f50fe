"""KestraHook.iter_logs / get_logs on a server without a usable log search (it answers ``GET /logs/search``
with 400, as one refusing its filters does): the whole log is read from ``GET /logs/{id}``, streamed and
decoded entry by entry."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import respx
from support.kestra_payloads import BASE, log_entry
from support.log_helpers import new_log_entries

from airflow_provider_kestra.exceptions import KestraConnectionError, KestraError
from airflow_provider_kestra.hooks.kestra_base import LOG_CHUNK_BYTES
from airflow_provider_kestra.utils.logs import KestraLogSelection

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"


def many_entries(count: int) -> list[dict[str, Any]]:
    levels = ["INFO", "DEBUG", "WARN", "ERROR"]
    return [
        log_entry(i // 10, f'line {i} ] with "quotes" and {"x" * 700}', level=levels[i % 4])
        for i in range(count)
    ]


@pytest.fixture
def hook(hook: KestraHook, http: Any, api: str) -> KestraHook:
    """The mocked server's log search refuses its filters: the hook reads whole logs."""
    http.get(f"{api}/logs/search", status_code=400, json={"message": "Invalid query filters"})
    return hook


class BrokenBody(io.BytesIO):
    """A response body whose connection drops after ``good`` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        super().__init__(data)
        self.good = good

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.good:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(size if size and size > 0 else self.good, self.good - self.tell()))


def test_iter_logs_streams_a_body_larger_than_a_chunk(hook: KestraHook, http: Any, api: str) -> None:
    entries = many_entries(400)
    body = json.dumps(entries).encode()
    assert len(body) > 3 * LOG_CHUNK_BYTES
    http.get(f"{api}/logs/{EXEC_ID}", content=body)
    selection = KestraLogSelection("WARN")
    lines = list(hook.iter_logs(EXEC_ID, selection))
    expected = [e for e in entries if e["level"] in ("WARN", "ERROR")]
    assert lines == expected
    assert http.last_request.qs["minLevel"] == ["WARN"]
    assert (lines, selection.cursor) == new_log_entries(expected, None)
    assert hook.get_logs(EXEC_ID, min_level="WARN", cursor=selection.cursor) == ([], selection.cursor)


def test_get_logs_retries_a_busy_server_before_streaming(hook: KestraHook, http: Any, api: str) -> None:
    entries = many_entries(3)
    http.get(
        f"{api}/logs/{EXEC_ID}",
        [{"status_code": 503, "text": "busy"}, {"content": json.dumps(entries).encode()}],
    )
    lines, _ = hook.get_logs(EXEC_ID, min_level="TRACE")
    assert lines == entries
    assert len(hook.sleeps) == 1  # type: ignore[attr-defined]


def test_truncated_log_answer_is_a_clear_error(hook: KestraHook, http: Any, api: str) -> None:
    http.get(f"{api}/logs/{EXEC_ID}", content=json.dumps(many_entries(2)).encode()[:-40])
    with pytest.raises(KestraError, match=r"GET /api/v1/.*logs/.* ended before its JSON array was complete"):
        hook.get_logs(EXEC_ID)


def test_cut_connection_keeps_the_cursor_of_the_lines_handed_over(
    hook: KestraHook, http: Any, api: str
) -> None:
    entries = many_entries(300)
    body = json.dumps(entries).encode()
    http.get(f"{api}/logs/{EXEC_ID}", body=BrokenBody(body, len(body) // 2))
    selection = KestraLogSelection("TRACE")
    shown: list[dict[str, Any]] = []
    with pytest.raises(KestraConnectionError, match=f"Reading logs of execution {EXEC_ID} failed"):
        shown.extend(hook.iter_logs(EXEC_ID, selection))
    assert 0 < len(shown) < len(entries) and shown == entries[: len(shown)]
    http.get(f"{api}/logs/{EXEC_ID}", content=body)
    rest, _ = hook.get_logs(EXEC_ID, min_level="TRACE", cursor=selection.cursor)
    assert shown + rest == entries


# ------------------------------------------------------------------------------------------- async hook
@pytest.fixture
async def ahook(kestra_conn: str) -> AsyncIterator[tuple[KestraAsyncHook, respx.MockRouter]]:
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{BASE}/api/v1/configs").respond(json={"version": "1.3.25", "edition": "OSS"})
        router.get(f"{BASE}/api/v1/main/logs/search").respond(400, json={"message": "Invalid query filters"})
        hook = KestraAsyncHook(retry_limit=2, retry_delay=0.5)
        hook.sleeps = []  # type: ignore[attr-defined]

        async def record(seconds: float) -> None:
            hook.sleeps.append(seconds)  # type: ignore[attr-defined]

        hook._asleep = record  # type: ignore[method-assign]
        async with hook:
            yield hook, router


async def test_async_iter_logs_streams_after_a_retry(ahook: tuple[KestraAsyncHook, Any]) -> None:
    hook, router = ahook
    entries = many_entries(400)
    body = json.dumps(entries).encode()
    router.get(f"{BASE}/api/v1/main/logs/{EXEC_ID}").mock(
        side_effect=[httpx.Response(503, text="busy"), httpx.Response(200, content=body)]
    )
    selection = KestraLogSelection("ERROR")
    lines = [entry async for entry in hook.iter_logs(EXEC_ID, selection)]
    expected = [e for e in entries if e["level"] == "ERROR"]
    assert (lines, selection.cursor) == new_log_entries(expected, None)
    assert len(hook.sleeps) == 1  # type: ignore[attr-defined]
    assert router.calls.last.request.url.params["minLevel"] == "ERROR"


async def test_async_truncated_log_answer_is_a_clear_error(ahook: tuple[KestraAsyncHook, Any]) -> None:
    hook, router = ahook
    body = json.dumps(many_entries(2)).encode()[:-40]
    router.get(f"{BASE}/api/v1/main/logs/{EXEC_ID}").respond(200, content=body)
    with pytest.raises(KestraError, match="ended before its JSON array was complete"):
        await hook.get_logs(EXEC_ID)
