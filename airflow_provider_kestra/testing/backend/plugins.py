"""Deploy-time checks of the flow-control plugins' properties, as Jackson and bean validation make them.

Kestra maps a flow's YAML onto the plugin classes with a strict Jackson mapper: a property of the wrong Java
type stops parsing with ``Illegal flow yaml: <Jackson's message>`` on the path ``yaml`` (``YamlParser``'s
``jsonProcessingExceptionHandler``). Then bean validation and the class-level validators run, such as
``ScheduleValidator`` for a cron expression and ``TimezoneIdValidator`` for a time zone. This module holds
those checks for ``Subflow``, ``Dag``, ``ForEach`` and the ``Schedule`` trigger, written from:

* ``core/.../plugin/core/flow/Subflow.java`` @048d4844, ``Dag.java`` @0485db05, ``ForEach.java`` @005dd2f7;
* ``core/.../plugin/core/trigger/Schedule.java`` @00a7b504 (5 fields, or 6 ``withSeconds``; minutes 0-59,
  hours 0-23, day of month 1-31, month 1-12, day of week 0-7, strict ranges, the nicknames ``@yearly``,
  ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``, ``@hourly``);
* ``core/.../validations/validator/ScheduleValidator.java`` (``invalid cron expression '<cron>': <cron-utils
  message>``, on the trigger's path), ``TimezoneIdValidator.java`` @8a172f60 (``timezone '(<zone>)' is not a
  valid time-zone ID``, on ``timezone``);
* cron-utils' ``CronParser`` (``Cron expression contains N parts but we expect one of [5]``, ``Failed to
  parse '<cron>'. <field error>``) and ``ValidationFieldExpressionVisitor`` (``Value N not in range [a, b]``).
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from airflow_provider_kestra.testing.backend.exceptions import (
    KestraSimConstraintViolation,
    KestraSimViolation,
)

_SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
_DAG = "io.kestra.plugin.core.flow.Dag"
_FOREACH = "io.kestra.plugin.core.flow.ForEach"
_SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"

_STRING, _INTEGER, _BOOLEAN, _MAP, _LIST = "String", "Integer", "Boolean", "Map", "List"
#: Java types of the plain (non-``Property``) fields that Jackson converts at parse time.
_JAVA_TYPES: dict[str, dict[str, str]] = {
    _SUBFLOW: {"namespace": _STRING, "flowId": _STRING, "revision": _INTEGER, "inputs": _MAP,
               "wait": _BOOLEAN, "transmitFailed": _BOOLEAN, "outputs": _MAP},
    _DAG: {"tasks": _LIST, "errors": _LIST, "finally": _LIST},
    _FOREACH: {"concurrencyLimit": _INTEGER, "tasks": _LIST, "errors": _LIST},
    _SCHEDULE: {"cron": _STRING, "withSeconds": _BOOLEAN, "timezone": _STRING, "inputs": _MAP},
}  # fmt: skip
_JAVA_NAMES = {
    _STRING: "java.lang.String",
    _INTEGER: "java.lang.Integer",
    _BOOLEAN: "java.lang.Boolean",
    _MAP: "java.util.LinkedHashMap<java.lang.String,java.lang.Object>",
    _LIST: "java.util.ArrayList<java.lang.Object>",
}


def _shape(value: Any) -> str:
    """How Jackson names a scalar it found no creator for (``String value ('abc')``, ``Number value (5)``)."""
    if isinstance(value, bool):
        return f"Boolean value ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"Number value ({value})"
    return f"String value ('{value}')"


def _token(value: Any) -> str:
    """Jackson's ``from <shape> value (token ...)`` wording of an unexpected token."""
    if isinstance(value, list):
        return "Array value (token `JsonToken.START_ARRAY`)"
    if isinstance(value, dict):
        return "Object value (token `JsonToken.START_OBJECT`)"
    if isinstance(value, bool):
        return f"Boolean value (token `JsonToken.VALUE_{str(value).upper()}`)"
    if isinstance(value, int):
        return "Integer value (token `JsonToken.VALUE_NUMBER_INT`)"
    if isinstance(value, float):
        return "Floating-point value (token `JsonToken.VALUE_NUMBER_FLOAT`)"
    return "String value (token `JsonToken.VALUE_STRING`)"


def _type_error(java: str, value: Any) -> str | None:
    """Jackson's message when ``value`` cannot become ``java``, or None when it can (with its coercions:
    scalars to String, numeric text to Integer, ``true``/``false`` text and numbers to Boolean)."""
    if value is None:
        return None
    name = _JAVA_NAMES[java]
    if java == _STRING:
        if isinstance(value, (list, dict)):
            return f"Cannot deserialize value of type `{name}` from {_token(value)}"
        return None
    if java == _INTEGER:
        if isinstance(value, str):
            if re.fullmatch(r"[+-]?\d+", value.strip()):
                return None
            return (
                f'Cannot deserialize value of type `{name}` from String "{value}": not a valid `{name}` value'
            )
        if isinstance(value, (bool, list, dict)):
            return f"Cannot deserialize value of type `{name}` from {_token(value)}"
        return None
    if java == _BOOLEAN:
        if isinstance(value, str):
            if value in ("true", "True", "TRUE", "false", "False", "FALSE"):
                return None
            return f'Cannot deserialize value of type `{name}` from String "{value}": ' + _ONLY_TRUE_FALSE
        if isinstance(value, (list, dict)):
            return f"Cannot deserialize value of type `{name}` from {_token(value)}"
        return None
    if java == _MAP:
        if isinstance(value, dict):
            return None
        if isinstance(value, list):
            return f"Cannot deserialize value of type `{name}` from {_token(value)}"
        kinds = {str: "String", bool: "boolean/Boolean", int: "int/Int", float: "double/Double"}
        kind = kinds.get(type(value), "String")
        return (
            "Cannot construct instance of `java.util.LinkedHashMap` (although at least one Creator exists): "
            f"no {kind}-argument constructor/factory method to deserialize from {_shape(value)}"
        )
    if isinstance(value, list):
        return None
    return f"Cannot deserialize value of type `{name}` from {_token(value)}"


def check_property_types(raw: dict[str, Any], type_name: str) -> None:
    """Raise Kestra's ``Illegal flow yaml`` violation for the first property of the wrong Java type."""
    for name, java in _JAVA_TYPES.get(type_name, {}).items():
        if name in raw and (problem := _type_error(java, raw[name])) is not None:
            message = f"Illegal flow yaml: {problem}"
            raise KestraSimConstraintViolation([KestraSimViolation("yaml", problem)], message)
    if type_name == _DAG and isinstance(raw.get("tasks"), list):
        for item in raw["tasks"]:
            if isinstance(item, dict) and "dependsOn" in item:
                problem = _type_error(_LIST, item["dependsOn"])
                if problem is not None:
                    problem = problem.replace(_JAVA_NAMES[_LIST], "java.util.ArrayList<java.lang.String>")
                    raise KestraSimConstraintViolation(
                        [KestraSimViolation("yaml", problem)], f"Illegal flow yaml: {problem}"
                    )


_ONLY_TRUE_FALSE = 'only "true" or "false" recognized'
_NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
#: (low, high, names mapped to numbers) of each field, seconds first when ``withSeconds``.
_FIELDS: dict[str, tuple[int, int, dict[str, int]]] = {
    "second": (0, 59, {}),
    "minute": (0, 59, {}),
    "hour": (0, 23, {}),
    "day of month": (1, 31, {}),
    "month": (1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    "day of week": (0, 7, {name: i for i, name in enumerate(_DAYS)}),
}


def _invalid_chars(expression: str, chars: str) -> str:
    """cron-utils' ``StringValidations`` message for characters a field does not allow."""
    return f"Invalid chars in expression! Expression: {expression} Invalid chars: {chars}"


def _check_cron_field(text: str, field: str) -> None:
    """Raise ValueError with cron-utils' message when one field of a cron expression is invalid."""
    low, high, names = _FIELDS[field]
    allowed = "*?" if field in ("day of month", "day of week") else "*"
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(_invalid_chars(step, step))
        if base in allowed and base:
            continue
        for bound in base.split("-", 1):
            value = names.get(bound.upper()) if not bound.isdigit() else int(bound)
            if value is None:
                invalid = "".join(sorted({c for c in bound.upper() if not c.isdigit()})) or bound
                raise ValueError(_invalid_chars(bound.upper(), invalid))
            if not low <= value <= high:
                raise ValueError(f"Value {value} not in range [{low}, {high}]")


def cron_problem(cron: str, with_seconds: bool) -> str | None:
    """cron-utils' message for an expression Kestra's ``Schedule#parseCron`` refuses, or None."""
    expression = re.sub(r"\s+", " ", cron).strip()
    if not expression:
        return "Empty expression!"
    if expression.startswith("@"):
        if expression.lower() in _NICKNAMES:
            return None
        return f"Failed to parse '{cron}'. " + _invalid_chars(expression.upper(), "@")
    parts = expression.split(" ")
    expected = 6 if with_seconds else 5
    if len(parts) != expected:
        return f"Cron expression contains {len(parts)} parts but we expect one of [{expected}]"
    fields = list(_FIELDS)[0 if with_seconds else 1 :]
    try:
        for text, field in zip(parts, fields, strict=True):
            _check_cron_field(text, field)
    except ValueError as exc:
        return f"Failed to parse '{cron}'. {exc}"
    return None


def schedule_violations(trigger: dict[str, Any], path: str) -> list[KestraSimViolation]:
    """Bean validation of a ``Schedule`` trigger: ``cron`` @NotNull, ``ScheduleValidator`` and
    ``TimezoneIdValidator`` (a Schedule is accepted at deploy; the simulator never fires it)."""
    violations: list[KestraSimViolation] = []
    cron = trigger.get("cron")
    if cron is None:
        violations.append(KestraSimViolation(f"{path}.cron", "must not be null"))
    else:
        with_seconds = str(trigger.get("withSeconds", False)).lower() == "true"
        problem = cron_problem(str(cron), with_seconds)
        if problem is not None:
            violations.append(KestraSimViolation(path, f"invalid cron expression '{cron}': {problem}"))
    timezone = trigger.get("timezone")
    if timezone is not None and not _is_zone_id(str(timezone)):
        violations.append(
            KestraSimViolation(f"{path}.timezone", f"timezone '({timezone})' is not a valid time-zone ID")
        )
    return violations


_OFFSET = re.compile(
    r"^(?:Z|[+-]\d{1,2}(?::?\d{2}(?::?\d{2})?)?|(?:UTC|GMT|UT)(?:[+-]\d{1,2}(?::?\d{2})?)?)$"
)


def _is_zone_id(text: str) -> bool:
    """Whether Java's ``ZoneId.of`` accepts ``text``: a region id of the tz database or an offset form."""
    if _OFFSET.match(text):
        return True
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9~/._+-]+", text):
        return False
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
