"""Incremental log reads: both hooks read only the new lines with ``GET /logs/search`` (issue 12, goal 1).

Against the simulator (profiles 1.3 and 2.0, through ``KestraHook`` and ``KestraAsyncHook``): each read
asks from the cursor's ``since`` on, lines of one instant and identical lines are printed once each, pages
are walked to the end, old cursors keep working, a 0.22 server is read whole with ``GET /logs/{id}``. With
mocked servers: a server that refuses the search (400) or ignores its execution filter is read whole from
then on, and a line of another execution is never handed over. The page walking itself (offsets shifted by
lines logged while paging, cursor pages) is tested without I/O on ``KestraLogSearch``.

Kestra sources (kestra-io/kestra): ``LogController.java`` @0034d67e (``searchLogs``: ``page``, ``size``
``@Min(1)`` and no maximum, ``filters``), ``AbstractJdbcLogRepository.java`` @0034d67e (``find``: newest
first, offset paging, a ``total``; ``key`` answered as ``id``), ``AbstractJdbcRepository.java`` @01695ad4
(``startDate`` filter value read by ``ZonedDateTime.parse``, compared inclusively with ``>=``),
``CursorOrOffsetPagedResults.java`` (2.x: ``type`` ``OFFSET`` with ``total``, or ``CURSOR`` with
``nextCursor`` paged until an empty page).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest
from kestra_hook_transports import KestraTransport, Reply
from support.kestra_payloads import log_entry

from airflow_provider_kestra.hooks import kestra_base
from airflow_provider_kestra.hooks.kestra_base import KestraLogSearch
from airflow_provider_kestra.testing import KestraSimulator
from airflow_provider_kestra.testing.backend.clock import now_instant
from airflow_provider_kestra.utils.logs import KestraLogSelection, search_since

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from support.kestra_side import KestraTestSide

ONE_LOG = "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: started\n"


# --------------------------------------------------------------------------------------- the simulator
@pytest.fixture(params=["sync", "async"])
async def sim_hook(
    request: pytest.FixtureRequest, kestra_side: KestraTestSide
) -> AsyncIterator[KestraTransport]:
    """One hook of each kind against the simulator of ``kestra_side`` (pauses recorded, not slept)."""
    if request.param == "sync":
        from airflow_provider_kestra.hooks.kestra import KestraHook

        with KestraHook(retry_limit=2, retry_delay=0.1) as hook:
            yield KestraTransport("sync", hook, None)
        return
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    async with KestraAsyncHook(retry_limit=2, retry_delay=0.1) as ahook:
        yield KestraTransport("async", ahook, None)


def finished_execution(side: KestraTestSide) -> str:
    """An execution of one Log task, ended (its one line: ``started``)."""
    execution_id = side.start(side.deploy("logs", ONE_LOG))
    side.wait_for_state(execution_id, {"SUCCESS"})
    return execution_id


def add_lines(sim: KestraSimulator, execution_id: str, *lines: tuple[str, str] | str) -> None:
    """Store log lines of the execution as its tasks would: ``message`` (now) or ``(message, timestamp)``."""
    template = next(iter(sim.store.logs[execution_id]))

    def add() -> None:
        for line in lines:
            message, timestamp = line if isinstance(line, tuple) else (line, now_instant(6))
            sim.store.add_log({**template, "message": message, "timestamp": timestamp, "level": "INFO"})

    sim.call(add)


def searches(sim: KestraSimulator, since: int) -> list[dict[str, str]]:
    """The query parameters of the log searches answered since journal position ``since``."""
    return [
        {key: values[-1] for key, values in parse_qs(entry.query).items()}
        for entry in sim.requests.filter("GET", r"/logs/search$", since=since)
    ]


def whole_log_reads(sim: KestraSimulator, since: int) -> int:
    return sim.requests.count("GET", r"/logs/[^/]+$", since=since) - len(searches(sim, since))


async def test_each_read_asks_only_for_the_new_lines(
    sim_hook: KestraTransport, kestra_side: KestraTestSide
) -> None:
    sim, execution_id = kestra_side.sim, finished_execution(kestra_side)
    mark = sim.requests.total
    lines, cursor = await sim_hook.call("get_logs", execution_id, min_level="INFO")
    assert [e["message"] for e in lines] == ["started"]
    since_after_first = cursor["since"]
    add_lines(sim, execution_id, "one", "two", "three")
    lines, cursor = await sim_hook.call("get_logs", execution_id, cursor=json.loads(json.dumps(cursor)))
    assert [e["message"] for e in lines] == ["one", "two", "three"]
    lines, _ = await sim_hook.call("get_logs", execution_id, cursor=cursor)
    assert lines == []
    first, second, third = searches(sim, mark)
    assert whole_log_reads(sim, mark) == 0
    assert first == {
        "filters[executionId][EQUALS]": execution_id,
        "filters[level][EQUALS]": "INFO",
        "page": "1",
        "size": str(kestra_base.LOG_SEARCH_FIRST_PAGE),
    }
    # Later reads start at the cursor's since (truncated to milliseconds), never at the first line.
    assert second["filters[startDate][GREATER_THAN_OR_EQUAL_TO]"] == search_since(since_after_first)
    assert third["filters[startDate][GREATER_THAN_OR_EQUAL_TO]"] == search_since(cursor["since"])
    # What the third read downloaded: only the lines inside the cursor window, not the whole log.
    answer = search_again(third)
    assert answer["total"] <= 4 and len(answer["results"]) == answer["total"]


def search_again(params: dict[str, str]) -> Any:
    """The simulator's answer to a recorded search, asked again (the journal keeps queries, not bodies)."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    with KestraHook() as hook:
        return hook._call(kestra_base.KestraCall("logs_search", params=list(params.items())))


async def test_window_reads_send_only_what_is_new_of_a_long_log(
    sim_hook: KestraTransport, kestra_side: KestraTestSide
) -> None:
    """Lines older than the cursor's since are not downloaded again: a later read's answer holds the new
    lines and those of the window only."""
    sim, execution_id = kestra_side.sim, finished_execution(kestra_side)
    old = "2020-01-01T00:00:%02d.000001Z"
    add_lines(sim, execution_id, *[(f"old {i}", old % i) for i in range(30)])
    lines, cursor = await sim_hook.call("get_logs", execution_id, min_level="INFO")
    assert len(lines) == 31
    mark = sim.requests.total
    add_lines(sim, execution_id, "new")
    lines, _ = await sim_hook.call("get_logs", execution_id, cursor=cursor)
    assert [e["message"] for e in lines] == ["new"]
    (params,) = searches(sim, mark)
    answer = search_again(params)
    assert [e["message"] for e in answer["results"]] == ["new", "started"]


async def test_lines_of_one_instant_and_identical_lines_are_printed_once_each(
    sim_hook: KestraTransport, kestra_side: KestraTestSide
) -> None:
    sim, execution_id = kestra_side.sim, finished_execution(kestra_side)
    _, cursor = await sim_hook.call("get_logs", execution_id)
    instant = now_instant(6)
    add_lines(sim, execution_id, ("same", instant), ("same", instant), ("other", instant))
    lines, cursor = await sim_hook.call("get_logs", execution_id, cursor=cursor)
    assert [e["message"] for e in lines] == ["same", "same", "other"]
    add_lines(sim, execution_id, ("same", instant))
    lines, cursor = await sim_hook.call("get_logs", execution_id, cursor=cursor)
    assert [e["message"] for e in lines] == ["same"]
    assert (await sim_hook.call("get_logs", execution_id, cursor=cursor))[0] == []


async def test_every_page_is_read_and_lines_come_oldest_first(
    sim_hook: KestraTransport, kestra_side: KestraTestSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, execution_id = kestra_side.sim, finished_execution(kestra_side)
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_FIRST_PAGE", 2)
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_PAGE_SIZE", 3)
    add_lines(sim, execution_id, *[f"line {i}" for i in range(6)])
    mark = sim.requests.total
    lines, _ = await sim_hook.call("get_logs", execution_id)
    assert [e["message"] for e in lines] == ["started", *[f"line {i}" for i in range(6)]]
    # A small first page, then the whole list again in bigger pages (the first two lines are dropped).
    pages = [(params["page"], params["size"]) for params in searches(sim, mark)]
    assert pages == [("1", "2"), ("1", "3"), ("2", "3"), ("3", "3")]


async def test_a_read_too_big_to_hold_pages_from_the_oldest_line(
    sim_hook: KestraTransport, kestra_side: KestraTestSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, execution_id = kestra_side.sim, finished_execution(kestra_side)
    for name, value in (("FIRST_PAGE", 2), ("PAGE_SIZE", 2), ("MAX_LINES", 3)):
        monkeypatch.setattr(kestra_base, f"LOG_SEARCH_{name}", value)
    add_lines(sim, execution_id, *[f"line {i}" for i in range(6)])
    mark = sim.requests.total
    lines, cursor = await sim_hook.call("get_logs", execution_id)
    assert [e["message"] for e in lines] == ["started", *[f"line {i}" for i in range(6)]]
    sent = searches(sim, mark)
    assert [params["page"] for params in sent] == ["1", "4", "3", "2", "1"] and whole_log_reads(
        sim, mark
    ) == 0
    assert {params.get("filters[endDate][LESS_THAN_OR_EQUAL_TO]") for params in sent[1:]} == {
        lines[-1]["timestamp"]
    }
    assert (await sim_hook.call("get_logs", execution_id, cursor=cursor))[0] == []


@pytest.mark.parametrize(
    "old_cursor",
    [
        {"since": None, "seen": []},
        {"since": None},
        {"since": "2020-01-01T00:00:00.000000000Z", "seen": []},
    ],
    ids=["empty", "no-seen", "nine-digit-since"],
)
async def test_cursors_of_earlier_releases_keep_working(
    sim_hook: KestraTransport, kestra_side: KestraTestSide, old_cursor: dict[str, Any]
) -> None:
    sim, execution_id = kestra_side.sim, finished_execution(kestra_side)
    add_lines(sim, execution_id, "next")
    lines, cursor = await sim_hook.call("get_logs", execution_id, cursor=old_cursor)
    assert [e["message"] for e in lines] == ["started", "next"]
    assert set(cursor) == {"since", "seen"} and len(cursor["since"]) == len("2020-01-01T00:00:00.000000000Z")


@pytest.fixture(scope="module")
def sim_0_22() -> Iterator[KestraSimulator]:
    with KestraSimulator(kestra_version="0.22") as sim:
        yield sim


async def test_a_0_22_server_is_read_whole(
    sim_0_22: KestraSimulator, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from support.kestra_side import kestra_side_for

    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    with kestra_side_for(sim_0_22, request, monkeypatch) as side:
        execution_id = finished_execution(side)
        mark = sim_0_22.requests.total
        lines, cursor = side.hook.get_logs(execution_id)
        async with KestraAsyncHook() as ahook:
            again, _ = await ahook.get_logs(execution_id)
            assert (await ahook.get_logs(execution_id, cursor=cursor))[0] == []
    assert [e["message"] for e in lines] == [e["message"] for e in again] == ["started"]
    assert searches(sim_0_22, mark) == [] and whole_log_reads(sim_0_22, mark) == 3


# -------------------------------------------------------------------------------- servers that misbehave
EXEC_ID = log_entry(0, "")["executionId"]


def page(*entries: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    return {"results": list(entries), "total": len(entries) if total is None else total}


async def test_a_server_ignoring_the_filter_is_read_whole_and_no_foreign_line_is_shown(
    transport: KestraTransport,
) -> None:
    foreign = {**log_entry(2, "someone else's secret"), "executionId": "anotherExecution"}
    search = transport.reply("GET", "logs/search", Reply(json=page(log_entry(1, "mine"), foreign)))
    whole = transport.reply("GET", f"logs/{EXEC_ID}", Reply(json=[log_entry(1, "mine")]))
    lines, cursor = await transport.call("get_logs", EXEC_ID)
    assert [e["message"] for e in lines] == ["mine"]
    assert (search.call_count, whole.call_count) == (1, 1)
    # Remembered: the next read of this hook goes straight to the whole log.
    assert (await transport.call("get_logs", EXEC_ID, cursor=cursor))[0] == []
    assert (search.call_count, whole.call_count) == (1, 2)


@pytest.mark.parametrize("status", [400, 404, 405])
async def test_a_refused_search_is_read_whole_from_then_on(transport: KestraTransport, status: int) -> None:
    search = transport.reply("GET", "logs/search", Reply(status, json={"message": "Invalid filters"}))
    whole = transport.reply("GET", f"logs/{EXEC_ID}", Reply(json=[log_entry(1, "a")]))
    for _ in range(2):
        lines, _ = await transport.call("get_logs", EXEC_ID)
        assert [e["message"] for e in lines] == ["a"]
    assert (search.call_count, whole.call_count) == (1, 2) and transport.sleeps == []


async def test_a_busy_search_is_retried_not_abandoned(transport: KestraTransport) -> None:
    search = transport.reply("GET", "logs/search", Reply(503), Reply(json=page(log_entry(1, "a"))))
    whole = transport.reply("GET", f"logs/{EXEC_ID}", Reply(json=[]))
    lines, _ = await transport.call("get_logs", EXEC_ID)
    assert [e["message"] for e in lines] == ["a"]
    assert (search.call_count, whole.call_count, len(transport.sleeps)) == (2, 0, 1)
    await transport.call("get_logs", EXEC_ID)
    assert (search.call_count, whole.call_count) == (3, 0)


async def test_a_search_answer_that_is_no_page_is_an_error(transport: KestraTransport) -> None:
    transport.reply("GET", "logs/search", Reply(json=["not", "a", "page"]))
    with pytest.raises(Exception, match="not a page of log entries"):
        await transport.call("get_logs", EXEC_ID)


async def test_a_read_of_more_lines_than_the_search_holds_pages_from_the_oldest(
    transport: KestraTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays bounded: past LOG_SEARCH_MAX_LINES new lines, the list is frozen at its newest line
    and read oldest page first, each page handed over as it comes; no whole-log read."""
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_FIRST_PAGE", 2)
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_PAGE_SIZE", 2)
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_MAX_LINES", 2)
    log = [log_entry(i, f"line {i}") for i in range(3)]
    search = transport.reply(
        "GET",
        "logs/search",
        Reply(json=page(*log[::-1][:2], total=3)),
        Reply(json=page(log[0], total=3)),
        Reply(json=page(*log[::-1][:2], total=3)),
    )
    whole = transport.reply("GET", f"logs/{EXEC_ID}", Reply(json=log))
    lines, _ = await transport.call("get_logs", EXEC_ID)
    assert lines == log and (search.call_count, whole.call_count) == (3, 0)
    assert [search.params(i)["page"] for i in range(3)] == ["1", "2", "1"]
    assert search.params(1)["filters[endDate][LESS_THAN_OR_EQUAL_TO]"] == log[2]["timestamp"]


# ----------------------------------------------------------------------------- the page walk, without I/O
@pytest.fixture
def pages_of(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``pages_of(n)``: searches paged by ``n`` lines from the first page on."""

    def set_size(size: int) -> None:
        monkeypatch.setattr(kestra_base, "LOG_SEARCH_FIRST_PAGE", size)
        monkeypatch.setattr(kestra_base, "LOG_SEARCH_PAGE_SIZE", size)

    return set_size


def walk(search: KestraLogSearch, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feed ``answers`` one per step; the steps' parameters are checked by the callers."""
    sent = []
    for answer in answers:
        assert search.step is not None
        sent.append(dict(search.step.params))
        search.take(answer)
    assert search.step is None
    search.sent = sent  # type: ignore[attr-defined]
    return search.entries()


def search_of(pages_of: Any, size: int, selection: KestraLogSelection | None = None) -> KestraLogSearch:
    pages_of(size)
    return KestraLogSearch(EXEC_ID, selection or KestraLogSelection("INFO"))


def numbered(count: int) -> list[dict[str, Any]]:
    """``count`` lines one second apart, oldest first."""
    return [log_entry(i, f"line {i}") for i in range(count)]


def test_lines_logged_while_paging_are_neither_repeated_nor_skipped(pages_of: Any) -> None:
    log = numbered(7)
    newest_first = log[::-1]
    arrived = [log_entry(10, "late 1"), log_entry(11, "late 2")][::-1]
    search = search_of(pages_of, 3)
    # Page 1 is read, then two lines arrive: page 2 starts with the two last lines of page 1 again.
    moved = arrived + newest_first
    entries = walk(
        search,
        [
            page(*newest_first[0:3], total=7),
            page(*moved[3:6], total=9),
            page(*moved[6:9], total=9),
        ],
    )
    assert entries == log
    assert [p["page"] for p in search.sent] == ["1", "2", "3"]  # type: ignore[attr-defined]


def test_more_lines_than_a_page_arriving_while_paging(pages_of: Any) -> None:
    log = numbered(4)
    arrived = [log_entry(10 + i, f"late {i}") for i in range(3)][::-1]
    search = search_of(pages_of, 2)
    moved = arrived + log[::-1]
    entries = walk(
        search,
        [
            page(*log[::-1][0:2], total=4),
            page(*moved[2:4], total=7),
            page(*moved[4:6], total=7),
            page(*moved[6:7], total=7),
        ],
    )
    # The new line met on the way (the oldest of them) is handed over once; the two above the first
    # page are left to the next read.
    assert entries == [*log, arrived[-1]]
    assert len({e["message"] for e in entries}) == len(entries)


def test_ids_decide_what_a_page_repeats(pages_of: Any) -> None:
    first = [{**entry, "id": f"k{i}"} for i, entry in enumerate(numbered(3))][::-1]
    search = search_of(pages_of, 2)
    # Identical twin lines with different ids are two lines; the same id twice is one.
    entries = walk(search, [page(*first[0:2], total=3), page(first[1], first[2], total=4)])
    assert [e["id"] for e in entries] == ["k0", "k1", "k2"]


def test_cursor_pages_are_read_until_an_empty_page(pages_of: Any) -> None:
    log = numbered(3)
    search = search_of(pages_of, 2, KestraLogSelection("WARN", {"since": log[0]["timestamp"], "seen": []}))
    entries = walk(
        search,
        [
            {"results": log[::-1][0:2], "type": "CURSOR", "nextCursor": "t1"},
            {"results": log[::-1][2:], "type": "CURSOR", "nextCursor": "t2"},
            {"results": [], "type": "CURSOR"},
        ],
    )
    assert entries == log
    sent = search.sent  # type: ignore[attr-defined]
    assert [p.get("cursor") for p in sent] == [None, "t1", "t2"] and "page" not in sent[1]
    assert sent[0]["filters[level][EQUALS]"] == "WARN"
    assert sent[0]["filters[startDate][GREATER_THAN_OR_EQUAL_TO]"] == log[0]["timestamp"][:23] + "Z"


def test_a_foreign_line_stops_the_read(pages_of: Any) -> None:
    search = search_of(pages_of, 2)
    assert search.step is not None
    search.take(page(log_entry(1, "mine"), {**log_entry(1, "theirs"), "executionId": "other"}, total=9))
    assert search.foreign and search.step is None


def test_a_small_first_page_then_pages_sized_by_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long lines make smaller pages; a read too big to hold stops (the hook streams the whole log)."""
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_FIRST_PAGE", 2)
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_PAGE_SIZE", 50)
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_PAGE_BYTES", 4000)
    long_lines = [log_entry(i, "x" * 700) for i in range(12)][::-1]
    search = KestraLogSearch(EXEC_ID, KestraLogSelection("INFO"))
    entries = walk(
        search,
        [
            page(*long_lines[0:2], total=12),
            page(*long_lines[0:4], total=12),
            page(*long_lines[4:8], total=12),
            page(*long_lines[8:12], total=12),
        ],
    )
    assert entries == long_lines[::-1]
    sizes = [(p["page"], p["size"]) for p in search.sent]  # type: ignore[attr-defined]
    assert sizes == [("1", "2"), ("1", "4"), ("2", "4"), ("3", "4")]  # 4,000 bytes / 1,000 per line
    # Too many bytes to hold (12 lines of about 1,000): the list is frozen at its newest line and read
    # from its oldest page, each page handed over at once.
    monkeypatch.setattr(kestra_base, "LOG_SEARCH_MAX_BYTES", 10_000)
    backwards = KestraLogSearch(EXEC_ID, KestraLogSelection("INFO"))
    assert backwards.take(page(*long_lines[0:2], total=12)) == []
    handed = []
    for expected_page, lines in (("3", long_lines[8:12]), ("2", long_lines[4:8]), ("1", long_lines[0:4])):
        assert backwards.step is not None
        params = dict(backwards.step.params)
        assert (params["page"], params["size"]) == (expected_page, "4")
        assert params["filters[endDate][LESS_THAN_OR_EQUAL_TO]"] == long_lines[0]["timestamp"]
        handed.extend(backwards.take(page(*lines, total=12)))
    assert handed == long_lines[::-1] and backwards.step is None and not backwards.too_long


@pytest.mark.parametrize(
    ("since", "sent"),
    [
        ("2026-11-30T10:00:01.228074635Z", "2026-11-30T10:00:01.228Z"),
        ("2026-11-30T10:00:01.999999Z", "2026-11-30T10:00:01.999Z"),
        ("2026-11-30T10:00:01Z", "2026-11-30T10:00:01.000Z"),
        ("2026-11-30T11:00:01.5+01:00", "2026-11-30T10:00:01.500Z"),
        (None, None),
        ("yesterday", None),
    ],
)
def test_since_is_sent_truncated_down_to_milliseconds(since: str | None, sent: str | None) -> None:
    assert search_since(since) == sent


def test_the_search_is_never_sent_to_a_0_22_server() -> None:
    from airflow_provider_kestra.utils.routes import KestraApiVersion, has_route

    assert not has_route("logs_search", KestraApiVersion.V0_22)
    assert has_route("logs_search", KestraApiVersion.V1) and has_route("logs_search", KestraApiVersion.V2)
