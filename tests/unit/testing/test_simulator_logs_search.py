"""``GET /logs/search`` as an exact incremental log read, ``GET /logs/{id}`` and LogEntry timestamps.

Each test names the Kestra source it pins (repository kestra-io/kestra):

- ``LogController.java`` @0034d67e (1.x): ``searchLogs(page >= 1, size = 10, sort, filters, deprecated q,
  namespace, flowId, triggerId, minLevel, startDate, endDate)``, the deprecated dates with
  ``@Format("yyyy-MM-dd'T'HH:mm[:ss][.SSS][XXX]")``; 0.2x (@58c1ca2d, the newest 0.2x source readable):
  the deprecated parameters only, passed straight to the repository.
- ``RequestUtils.java`` (1.x, ``getFiltersOrDefaultToLegacyMapping``): the deprecated parameters count only
  without any ``filters[...]``; ``startDate`` -> ``START_DATE GREATER_THAN``, ``endDate`` -> ``END_DATE
  LESS_THAN``, ``minLevel`` -> ``MIN_LEVEL EQUALS``.
- ``QueryFilter.java`` @00bdfbee: LOG fields and each field's ``supportedOp`` (``level``: EQUALS,
  NOT_EQUALS; ``startDate``/``endDate``: the six comparisons; ``executionId``: no REGEX, no PREFIX).
- ``AbstractJdbcRepository.java`` @01695ad4: ``MIN_LEVEL EQUALS`` = ``LogEntry.findLevelsByMin`` (this
  level and more severe), ``NOT_EQUALS`` its negation; START_DATE and END_DATE both compare the date
  column with the operation as given (``>=`` inclusive, ``>`` exclusive).
- ``AbstractJdbcLogRepository.java`` @0034d67e: date column ``timestamp``; ``find`` keeps NORMAL executions'
  lines, orders ``timestamp`` descending whatever ``sort`` says, offset paging with a total;
  ``findByExecutionId`` (``/logs/{id}``) ascending. 0.2x (@58c1ca2d): ``startDate``/``endDate`` are
  ``>=``/``<=``, ``sort`` applied, no default order.
- ``ExecutionLogService.java`` @1b28d858: ``/logs/{id}`` with ``taskId`` ignores ``taskRunId`` and
  ``attempt``; ``attempt`` counts only with ``taskRunId``.
- ``RunContextLogger.java`` @035cb9b0 (1.x+): ``timestamp(event.getInstant())``, logback's
  ``Instant.now()`` (microseconds on Linux); 0.2x @58c1ca2d: ``Instant.ofEpochMilli(event.getTimeStamp())``
  (milliseconds: two lines logged in the same millisecond share their timestamp).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from kestra_sim_client import SimClient, flow_source, unique

from airflow_provider_kestra.testing.backend.clock import now_instant
from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

FILTER_LINES = ("0.22", "1.3", "2.0")
QUERY_FILTER_LINES = ("1.3", "2.0")


def _log_task(task_id: str, message: str, level: str = "INFO") -> str:
    return (
        f"  - id: {task_id}\n    type: io.kestra.plugin.core.log.Log\n    level: {level}\n"
        f"    message: {message}\n"
    )


FIVE = "".join(
    _log_task(f"t{i}", f"line {i}", level)
    for i, level in enumerate(("DEBUG", "INFO", "WARN", "INFO", "ERROR"), start=1)
)


@pytest.fixture(scope="module", params=FILTER_LINES)
def client(request: pytest.FixtureRequest) -> Iterator[SimClient]:
    with KestraSimulator(kestra_version=request.param) as sim:
        yield SimClient(sim)


def _run_five(client: SimClient) -> tuple[str, list[dict[str, Any]]]:
    """An execution of five Log tasks (one line each, in order); its ``/logs/{id}`` list."""
    flow_id = unique()
    client.deploy(flow_source(flow_id, FIVE))
    execution_id = client.run("company.team", flow_id)["id"]
    client.wait(execution_id)
    entries = client.request("GET", f"/logs/{execution_id}").json()
    assert [e["message"] for e in entries] == [f"line {i}" for i in range(1, 6)]
    return execution_id, entries


def _search(client: SimClient, **params: Any) -> Any:
    response = client.request("GET", "/logs/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _messages(page: dict[str, Any]) -> list[str]:
    return [e["message"] for e in page["results"]]


def _query_filters(client: SimClient) -> bool:
    return client.sim.profile.logs_search_query_filters


# -- timestamps ---------------------------------------------------------------------------------------------
def test_log_timestamps_have_the_profiles_precision(client: SimClient) -> None:
    """RunContextLogger @035cb9b0 (1.x+: microseconds) / @58c1ca2d (0.2x: milliseconds); the text is an
    ``Instant.toString()`` (fraction digits in groups of three, ``Z``)."""
    _, entries = _run_five(client)
    digits = client.sim.profile.log_timestamp_digits
    assert digits == (3 if client.sim.kestra_version == "0.22" else 6)
    for entry in entries:
        match = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{3}|\d{6}|\d{9}))?Z", entry["timestamp"])
        assert match, entry["timestamp"]
        assert len(match.group(1) or "") <= digits


@pytest.mark.parametrize(("digits", "longest"), [(3, 3), (6, 6), (9, 9)])
def test_now_instant_truncates_to_the_unit(digits: int, longest: int) -> None:
    """``Instant.ofEpochMilli`` (3) and Java's ``Instant.now()`` on Linux (6) never print more digits."""
    fraction = re.search(r"\.(\d+)Z$", now_instant(digits))
    assert fraction is None or len(fraction.group(1)) <= longest


# -- the incremental read: a timestamp cursor -----------------------------------------------------------
def test_start_date_filter_is_a_timestamp_cursor(client: SimClient) -> None:
    """QueryFilter @00bdfbee + AbstractJdbcRepository @01695ad4 + AbstractJdbcLogRepository @0034d67e:
    ``filters[startDate][GREATER_THAN_OR_EQUAL_TO]`` keeps the cursor's own line, ``GREATER_THAN`` does not,
    ``endDate`` compares the same ``timestamp``; newest first."""
    execution_id, entries = _run_five(client)
    cursor = entries[1]["timestamp"]
    by_execution = {"filters[executionId][EQUALS]": execution_id}
    at_or_after = _search(client, **by_execution, **{"filters[startDate][GREATER_THAN_OR_EQUAL_TO]": cursor})
    after = _search(client, **by_execution, **{"filters[startDate][GREATER_THAN]": cursor})
    until = _search(client, **by_execution, **{"filters[endDate][LESS_THAN_OR_EQUAL_TO]": cursor})
    before = _search(client, **by_execution, **{"filters[endDate][LESS_THAN]": cursor})
    if not _query_filters(client):
        # 0.22 keeps the simulator's filters[...] reading, but its order is the storage order.
        at_or_after["results"].reverse()
        after["results"].reverse()
        until["results"].reverse()
        before["results"].reverse()
    assert _messages(at_or_after) == ["line 5", "line 4", "line 3", "line 2"] and at_or_after["total"] == 4
    assert _messages(after) == ["line 5", "line 4", "line 3"]
    assert _messages(until) == ["line 2", "line 1"]
    assert _messages(before) == ["line 1"]


@pytest.mark.parametrize("version", QUERY_FILTER_LINES)
def test_newest_first_whatever_sort_says_with_offset_pages(version: str) -> None:
    """AbstractJdbcLogRepository @0034d67e ``find``: ``orderBy(timestamp.desc())``, ``limit(size)``,
    ``offset((page - 1) * size)``, ``total`` counted apart (PagedResults; 2.0 adds ``type: OFFSET``)."""
    with KestraSimulator(kestra_version=version) as sim:
        client = SimClient(sim)
        execution_id, _ = _run_five(client)
        pages = [
            _search(
                client, page=n, size=2, sort="timestamp:asc", **{"filters[executionId][EQUALS]": execution_id}
            )
            for n in (1, 2, 3, 4)
        ]
    assert [_messages(p) for p in pages] == [["line 5", "line 4"], ["line 3", "line 2"], ["line 1"], []]
    assert {p["total"] for p in pages} == {5}
    assert all(("type" in p) == (version == "2.0") for p in pages)


def test_equal_timestamps_are_all_kept_by_the_inclusive_cursor(client: SimClient) -> None:
    """Equal timestamps happen (0.2x: lines in one millisecond; 1.x+: one microsecond): ``>=`` returns every
    line of the cursor's instant (the reader de-duplicates them), ``>`` none of them."""
    execution_id, _ = _run_five(client)
    stored = client.sim.store.logs[execution_id]
    same = "2030-01-01T00:00:00.123Z"
    stored[2]["timestamp"] = stored[3]["timestamp"] = same
    stored[4]["timestamp"] = "2030-01-01T00:00:00.123001Z"
    by_execution = {"filters[executionId][EQUALS]": execution_id}
    at_or_after = _search(client, **by_execution, **{"filters[startDate][GREATER_THAN_OR_EQUAL_TO]": same})
    after = _search(client, **by_execution, **{"filters[startDate][GREATER_THAN]": same})
    assert sorted(_messages(at_or_after)) == ["line 3", "line 4", "line 5"]
    assert _messages(after) == ["line 5"]
    if _query_filters(client):
        assert _messages(at_or_after) == ["line 5", "line 3", "line 4"]  # one instant: storage order


def test_level_equals_means_this_level_or_more_severe(client: SimClient) -> None:
    """AbstractJdbcRepository @01695ad4 ``handleMinLevelField``: EQUALS = ``findLevelsByMin``, NOT_EQUALS
    its negation (the less severe levels)."""
    execution_id, _ = _run_five(client)
    by_execution = {"filters[executionId][EQUALS]": execution_id}
    warn = _search(client, **by_execution, **{"filters[level][EQUALS]": "WARN"})
    below = _search(client, **by_execution, **{"filters[level][NOT_EQUALS]": "WARN"})
    assert sorted(_messages(warn)) == ["line 3", "line 5"]
    assert sorted(_messages(below)) == ["line 1", "line 2", "line 4"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "filters[level][GREATER_THAN_OR_EQUAL_TO]",
            "INFO",
            "Operation GREATER_THAN_OR_EQUAL_TO is not supported for field MIN_LEVEL. "
            "Supported operations are EQUALS, NOT_EQUALS",
        ),
        (
            "filters[executionId][PREFIX]",
            "x",
            "Operation PREFIX is not supported for field EXECUTION_ID. Supported operations are EQUALS, "
            "NOT_EQUALS, CONTAINS, STARTS_WITH, ENDS_WITH, IN, NOT_IN",
        ),
    ],
)
def test_unsupported_operation_is_refused(client: SimClient, key: str, value: str, message: str) -> None:
    """QueryFilter @00bdfbee ``validateQueryFilters``: an operation outside the field's ``supportedOp``."""
    response = client.request("GET", "/logs/search", params={key: value})
    assert response.status_code == 400
    assert message in response.text


def test_only_normal_executions_lines_are_searched(client: SimClient) -> None:
    """AbstractJdbcLogRepository @0034d67e ``NORMAL_KIND_CONDITION`` (no kind, or NORMAL)."""
    execution_id, _ = _run_five(client)
    client.sim.store.logs[execution_id][0]["executionKind"] = "TEST"
    page = _search(client, **{"filters[executionId][EQUALS]": execution_id})
    assert page["total"] == 4 and "line 1" not in _messages(page)


# -- deprecated parameters ----------------------------------------------------------------------------------
def test_deprecated_dates_and_min_level(client: SimClient) -> None:
    """1.x RequestUtils: ``startDate`` -> GREATER_THAN, ``endDate`` -> LESS_THAN (exclusive), ``minLevel``
    -> MIN_LEVEL EQUALS. 0.2x AbstractJdbcLogRepository @58c1ca2d: ``>=`` and ``<=`` (inclusive)."""
    execution_id, entries = _run_five(client)
    by_flow = {"flowId": entries[0]["flowId"]}
    # the deprecated parameters take milliseconds at most: put the lines on whole milliseconds
    for i, entry in enumerate(client.sim.store.logs[execution_id], start=1):
        entry["timestamp"] = f"2030-01-01T00:00:00.00{i}Z"
    start, end = "2030-01-01T00:00:00.002Z", "2030-01-01T00:00:00.004Z"
    page = _search(client, startDate=start, endDate=end, **by_flow)
    inclusive = not _query_filters(client)
    assert sorted(_messages(page)) == (["line 2", "line 3", "line 4"] if inclusive else ["line 3"])
    assert sorted(_messages(_search(client, minLevel="WARN", **by_flow))) == ["line 3", "line 5"]


@pytest.mark.parametrize("version", QUERY_FILTER_LINES)
def test_deprecated_parameters_only_without_query_filters(version: str) -> None:
    """1.x RequestUtils ``getFiltersOrDefaultToLegacyMapping``: with any ``filters[...]`` the deprecated
    parameters are ignored; ``executionId`` is no parameter of the route at all."""
    with KestraSimulator(kestra_version=version) as sim:
        client = SimClient(sim)
        execution_id, entries = _run_five(client)
        other_id, _ = _run_five(client)
        mixed = _search(client, minLevel="ERROR", **{"filters[executionId][EQUALS]": execution_id})
        flat = _search(client, executionId=execution_id, flowId=entries[0]["flowId"])
        everything = _search(client, executionId=other_id, size=100)
    assert mixed["total"] == 5
    assert flat["total"] == 5
    assert everything["total"] == 10


@pytest.mark.parametrize("value", ["2030-01-01T00:00:00.123456Z", "2030-01-01T00:00:00"])
def test_deprecated_date_off_its_format_is_a_conversion_error(client: SimClient, value: str) -> None:
    """LogController ``@Format("yyyy-MM-dd'T'HH:mm[:ss][.SSS][XXX]") ZonedDateTime``: at most milliseconds,
    and no ZonedDateTime without a zone. ``filters[startDate]`` values take any precision."""
    response = client.request("GET", "/logs/search", params={"startDate": value})
    assert response.status_code == 400
    assert f"Failed to convert argument [startDate] for value [{value}]" in response.text
    zoned = "2030-01-01T00:00:00.123456789Z"
    assert client.request("GET", "/logs/search", params={"filters[startDate][GREATER_THAN]": zoned}).ok


def test_0_22_applies_sort_and_stores_oldest_first() -> None:
    """0.2x AbstractJdbcLogRepository @58c1ca2d: ``fetchPage`` applies ``sort`` (a column and a
    direction), no order by default (the storage order: oldest first)."""
    with KestraSimulator(kestra_version="0.22") as sim:
        client = SimClient(sim)
        _, entries = _run_five(client)
        flow = {"flowId": entries[0]["flowId"]}
        default = _search(client, **flow)
        newest = _search(client, sort="timestamp:desc", **flow)
        bad = client.request("GET", "/logs/search", params={"sort": "timestamp"})
    assert _messages(default) == [f"line {i}" for i in range(1, 6)]
    assert _messages(newest) == [f"line {i}" for i in range(5, 0, -1)]
    assert bad.status_code == 422


# -- GET /logs/{executionId} ---------------------------------------------------------------------------------
def test_execution_logs_task_id_wins_and_attempt_needs_task_run(client: SimClient) -> None:
    """ExecutionLogService @1b28d858 ``getExecutionLogs``: ``taskId`` first (``taskRunId``/``attempt``
    unused), then ``taskRunId`` (+ ``attempt``), else the whole execution; ascending."""
    execution_id, entries = _run_five(client)
    other_run = entries[0]["taskRunId"]

    def messages(**params: Any) -> list[str]:
        return [e["message"] for e in client.request("GET", f"/logs/{execution_id}", params=params).json()]

    assert messages(taskId="t2", taskRunId=other_run) == ["line 2"]
    assert messages(taskRunId=entries[2]["taskRunId"], attempt=0) == ["line 3"]
    assert messages(taskRunId=entries[2]["taskRunId"], attempt=1) == []
    assert messages(attempt=7) == [f"line {i}" for i in range(1, 6)]
    assert messages(minLevel="WARN") == ["line 3", "line 5"]
