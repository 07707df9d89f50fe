"""``filters[<field>][<OP>]=value`` query filters, legacy flat parameters, sorting and pagination."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend.clock import parse_instant, parse_iso_duration
from airflow_provider_kestra.testing.backend.exceptions import (
    KestraSimConstraintViolation,
    KestraSimIllegalArgument,
    KestraSimInvalidQueryFilters,
    KestraSimViolation,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_kestra.testing.backend.store import KestraSimFlowRevision

OPS = (
    "EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL_TO", "LESS_THAN_OR_EQUAL_TO",
    "IN", "NOT_IN", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "REGEX", "PREFIX",
)  # fmt: skip
_FIELD_ENUM = {
    "q": "QUERY", "scope": "SCOPE", "namespace": "NAMESPACE", "flowId": "FLOW_ID", "startDate": "START_DATE",
    "endDate": "END_DATE", "state": "STATE", "labels": "LABELS", "triggerExecutionId": "TRIGGER_EXECUTION_ID",
    "childFilter": "CHILD_FILTER", "kind": "KIND", "timeRange": "TIME_RANGE",
    "triggerId": "TRIGGER_ID", "level": "MIN_LEVEL", "executionId": "EXECUTION_ID",
}  # fmt: skip
#: ``QueryFilter.Resource#supportedField`` in Kestra's order (the order its refusal message lists them;
#: 1.3.25 ``core/.../models/QueryFilter.java`` @2a102a6a). ``timeRange`` is accepted besides (it becomes a
#: ``startDate`` filter before validation) but never listed.
SUPPORTED = {
    "EXECUTION": ("q", "scope", "flowId", "startDate", "endDate", "state", "labels", "triggerExecutionId",
                  "childFilter", "namespace", "kind"),
    "FLOW": ("labels", "namespace", "q", "scope", "flowId"),
    "LOG": ("q", "scope", "namespace", "startDate", "endDate", "flowId", "triggerId", "level", "executionId"),
}  # fmt: skip
#: ``QueryFilter.Field#supportedOp`` of the LOG fields (``core/.../models/QueryFilter.java`` @00bdfbee):
#: a LOG filter with another operation is refused (``QueryFilter.validateQueryFilters``).
_ID_OPS = ("EQUALS", "NOT_EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN", "NOT_IN")
_TEXT_OPS = (*_ID_OPS[:5], "REGEX", "IN", "NOT_IN", "PREFIX")
_DATE_OPS = (
    "GREATER_THAN_OR_EQUAL_TO", "GREATER_THAN", "LESS_THAN_OR_EQUAL_TO", "LESS_THAN", "EQUALS", "NOT_EQUALS",
)  # fmt: skip
LOG_OPS = {
    "q": ("EQUALS", "NOT_EQUALS"), "scope": ("EQUALS", "NOT_EQUALS"), "namespace": _TEXT_OPS,
    "startDate": _DATE_OPS, "endDate": _DATE_OPS, "flowId": _TEXT_OPS, "triggerId": _ID_OPS,
    "level": ("EQUALS", "NOT_EQUALS"), "executionId": _ID_OPS, "timeRange": ("EQUALS",),
}  # fmt: skip
#: ``LogController.searchLogs``'s deprecated parameters (besides namespace, minLevel, startDate, endDate):
#: ``executionId`` is no query parameter of that route, so Kestra ignores it.
_LOG_LEGACY = ("q", "flowId", "triggerId")
_ALSO_ACCEPTED = {"EXECUTION": ("timeRange",), "LOG": ("timeRange",), "FLOW": ()}
_KEY = re.compile(r"^filters\[([^\]]+)\]\[([^\]]+)\](?:\[([^\]]*)\])?$")
_SEVERITY = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4}
EXECUTION_SORT_FIELDS = (
    "id", "state.startDate", "state.endDate", "state.duration", "namespace", "flowId", "state.current",
)  # fmt: skip


@dataclass
class KestraSimFilter:
    """One ``field OP value`` condition (``key`` is the label key for label filters)."""

    field: str
    op: str
    value: str
    key: str | None = None


def _compare(op: str, actual: Any, value: str) -> bool:
    if actual is None:
        return op in ("NOT_EQUALS", "NOT_IN")
    text = str(actual)
    if op == "EQUALS":
        return text == value
    if op == "NOT_EQUALS":
        return text != value
    if op == "IN":
        return text in [v.strip() for v in value.split(",")]
    if op == "NOT_IN":
        return text not in [v.strip() for v in value.split(",")]
    if op == "STARTS_WITH":
        return text.startswith(value)
    if op == "ENDS_WITH":
        return text.endswith(value)
    if op == "CONTAINS":
        return value in text
    if op == "REGEX":
        return re.search(value, text) is not None
    if op == "PREFIX":
        return text == value or text.startswith(value + ".")
    return False


def _full_text(op: str, text: str, value: str) -> bool:
    """``q``: a full-text condition (``EQUALS`` contains the words, ``NOT_EQUALS`` does not)."""
    found = value in text
    return not found if op == "NOT_EQUALS" else found


def _compare_dates(op: str, actual: str | None, value: str) -> bool:
    if actual is None:
        return False
    left, right = parse_instant(actual), parse_instant(value)
    return {
        "GREATER_THAN": left > right,
        "GREATER_THAN_OR_EQUAL_TO": left >= right,
        "LESS_THAN": left < right,
        "LESS_THAN_OR_EQUAL_TO": left <= right,
        "EQUALS": left == right,
        "NOT_EQUALS": left != right,
    }.get(op, False)


@dataclass
class KestraSimFilters:
    """All filters of one request."""

    resource: str
    items: list[KestraSimFilter] = field(default_factory=list)
    flat_namespace: str | None = None

    def _labels(self, labels: list[dict[str, str]], condition: KestraSimFilter) -> bool:
        as_map = {label["key"]: label["value"] for label in labels}
        if condition.key is not None:
            present = as_map.get(condition.key)
            return _compare(condition.op, present, condition.value)
        key, _, value = condition.value.partition(":")
        return _compare(condition.op, as_map.get(key), value)

    def match_execution(self, execution: dict[str, Any], now: str) -> bool:
        """Whether an execution passes every filter."""
        for c in self.items:
            if c.field == "namespace" and not _compare(c.op, execution["namespace"], c.value):
                return False
            if c.field == "flowId" and not _compare(c.op, execution["flowId"], c.value):
                return False
            if c.field == "state" and not _compare(c.op, execution["state"]["current"], c.value):
                return False
            if c.field == "labels" and not self._labels(execution.get("labels", []), c):
                return False
            if c.field == "kind" and not _compare(c.op, execution.get("kind") or "NORMAL", c.value):
                return False
            if c.field == "startDate" and not _compare_dates(c.op, execution["state"]["startDate"], c.value):
                return False
            if c.field == "endDate" and not _compare_dates(c.op, execution["state"].get("endDate"), c.value):
                return False
            if c.field == "timeRange":
                since = parse_instant(now) - timedelta(seconds=parse_iso_duration(c.value))
                if parse_instant(execution["state"]["startDate"]) < since:
                    return False
            if c.field == "q" and not _full_text(
                c.op, f"{execution['id']} {execution['namespace']} {execution['flowId']}", c.value
            ):
                return False
            if c.field == "triggerExecutionId":
                parent = (execution.get("trigger") or {}).get("variables", {}).get("executionId")
                if not _compare(c.op, parent, c.value):
                    return False
        return True

    def match_flow(self, item: KestraSimFlowRevision) -> bool:
        """Whether a flow passes every filter."""
        for c in self.items:
            if c.field == "namespace" and not _compare(c.op, item.flow.namespace, c.value):
                return False
            if c.field == "flowId" and not _compare(c.op, item.flow.id, c.value):
                return False
            if c.field == "labels" and not self._labels(item.flow.labels, c):
                return False
            if c.field == "q" and not _full_text(c.op, f"{item.flow.namespace} {item.flow.id}", c.value):
                return False
        return True

    def match_log(self, entry: dict[str, Any], now: str) -> bool:
        """Whether a log entry passes every filter, as ``AbstractJdbcRepository#getConditionOnField`` builds
        them for LOG: ``level`` ``EQUALS`` keeps that level and more severe (``LogEntry.findLevelsByMin``),
        ``NOT_EQUALS`` the less severe ones; ``startDate`` and ``endDate`` both compare the ``timestamp``."""
        for c in self.items:
            if c.field == "level":
                at_least = _SEVERITY.get(str(entry.get("level")), 2) >= _SEVERITY.get(c.value.upper(), 0)
                if at_least != (c.op != "NOT_EQUALS"):
                    return False
            elif c.field in ("namespace", "flowId", "executionId", "triggerId"):
                if not _compare(c.op, entry.get(c.field), c.value):
                    return False
            elif c.field in ("startDate", "endDate"):
                if not _compare_dates(c.op, entry.get("timestamp"), c.value):
                    return False
            elif c.field == "timeRange":
                since = parse_instant(now) - timedelta(seconds=parse_iso_duration(c.value))
                if parse_instant(str(entry["timestamp"])) < since:
                    return False
            elif c.field == "q" and not _full_text(c.op, str(entry.get("message", "")), c.value):
                return False
        return True


def parse_filters(
    params: Sequence[tuple[str, str]], resource: str, *, legacy_mapping: bool = False
) -> KestraSimFilters:
    """Read ``filters[...]`` and the deprecated flat parameters from the query ``params`` (name, value
    pairs in order); an unsupported field is Kestra's ``InvalidQueryFiltersException``.

    ``legacy_mapping`` (LOG, 1.x+): ``RequestUtils.getFiltersOrDefaultToLegacyMapping`` reads the deprecated
    parameters only when no ``filters[...]`` is given, ``startDate`` as ``GREATER_THAN`` and ``endDate`` as
    ``LESS_THAN``; without it (0.2x) they are inclusive (``>=``/``<=`` in ``AbstractJdbcLogRepository``)."""
    filters = KestraSimFilters(resource)
    supported = SUPPORTED[resource]
    has_query_filters = any(_KEY.match(name) for name, _ in params)
    for name, value in params:
        if legacy_mapping and has_query_filters and not _KEY.match(name):
            continue
        match = _KEY.match(name)
        if match:
            field_name, op, key = match.groups()
            if field_name not in supported and field_name not in _ALSO_ACCEPTED[resource]:
                enum = _FIELD_ENUM.get(field_name, field_name.upper())
                raise KestraSimInvalidQueryFilters(
                    f"Provided query filters are invalid: Field {enum} is not supported for resource "
                    f"{resource}. Supported fields are {', '.join(_FIELD_ENUM.get(f, f) for f in supported)}"
                )
            if op not in OPS:
                raise KestraSimInvalidQueryFilters(
                    f"Provided query filters are invalid: Unknown operation {op}"
                )
            if resource == "LOG" and op not in LOG_OPS[field_name]:
                raise KestraSimInvalidQueryFilters(
                    f"Provided query filters are invalid: Operation {op} is not supported for field "
                    f"{_FIELD_ENUM[field_name]}. Supported operations are {', '.join(LOG_OPS[field_name])}"
                )
            filters.items.append(KestraSimFilter(field_name, op, value, key))
        elif name == "namespace":
            filters.items.append(KestraSimFilter("namespace", "PREFIX", value))
        elif (
            name in ("flowId", "q", "triggerId", "executionId", "triggerExecutionId")
            and name in supported
            and (resource != "LOG" or name in _LOG_LEGACY)
        ):
            filters.items.append(KestraSimFilter(name, "EQUALS" if name != "q" else "CONTAINS", value))
        elif name == "state":
            filters.items.append(
                KestraSimFilter("state", "IN", ",".join(v for n, v in params if n == "state"))
            )
        elif name == "labels":
            filters.items.append(KestraSimFilter("labels", "EQUALS", value))
        elif name in ("startDate", "endDate") and resource == "LOG":
            if legacy_mapping:
                op = "GREATER_THAN" if name == "startDate" else "LESS_THAN"
            else:
                op = "GREATER_THAN_OR_EQUAL_TO" if name == "startDate" else "LESS_THAN_OR_EQUAL_TO"
            filters.items.append(KestraSimFilter(name, op, value))
        elif name in ("startDate", "endDate") and name in supported:
            op = "GREATER_THAN_OR_EQUAL_TO" if name == "startDate" else "LESS_THAN_OR_EQUAL_TO"
            filters.items.append(KestraSimFilter("startDate", op, value))
        elif name == "timeRange" and resource != "LOG":
            filters.items.append(KestraSimFilter("timeRange", "EQUALS", value))
        elif name == "minLevel" and resource == "LOG":
            filters.items.append(KestraSimFilter("level", "EQUALS", value))
    unique: list[KestraSimFilter] = []
    for item in filters.items:
        if item not in unique:
            unique.append(item)
    filters.items = unique
    # DateUtils.validateTimeline: the start (a startDate filter, or the legacy startDate) after the end
    # (an endDate filter, or the legacy endDate) is refused.
    starts = [c.value for c in filters.items if c.field == "startDate" and not c.op.startswith("LESS")]
    ends = [
        c.value
        for c in filters.items
        if c.field == "endDate" or (c.field == "startDate" and c.op.startswith("LESS"))
    ]
    if starts and ends and parse_instant(starts[0]) > parse_instant(ends[0]):
        raise KestraSimIllegalArgument("Start date must be before End Date")
    return filters


def sort_executions(sorts: Sequence[str], executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply ``sort=field:asc|desc`` values (default newest first); IllegalArgument for malformed values
    or unknown fields, as ``PageableUtils`` throws."""
    sorts = list(sorts) or ["state.startDate:desc"]
    ordered = list(executions)
    for spec in reversed(sorts):
        name, _, direction = spec.partition(":")
        if direction.lower() not in ("asc", "desc", ""):
            raise KestraSimIllegalArgument("Invalid sort parameter")
        if name not in EXECUTION_SORT_FIELDS:
            raise KestraSimIllegalArgument(f"Invalid sort field: {name}")

        def key(execution: dict[str, Any], name: str = name) -> str:
            if name.startswith("state."):
                return str(execution["state"].get(name[6:] if name != "state.current" else "current") or "")
            return str(execution.get(name, ""))

        ordered.sort(key=key, reverse=direction.lower() == "desc")
    return ordered


def paginate(page: int, size: int, items: list[Any], operation: str) -> dict[str, Any]:
    """``PagedResults``: 1-based ``page`` (below 1 is a constraint violation), ``total`` always present."""
    problems = []
    if page < 1:
        problems.append(KestraSimViolation(f"{operation}.page", "must be greater than or equal to 1"))
    if size < 1:
        problems.append(KestraSimViolation(f"{operation}.size", "must be greater than or equal to 1"))
    if problems:
        raise KestraSimConstraintViolation(problems)
    start = (page - 1) * size
    return {"results": items[start : start + size], "total": len(items)}
