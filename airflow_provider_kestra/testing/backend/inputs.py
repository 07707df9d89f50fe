"""Typing of execution inputs from multipart parts, with Kestra's messages.

Kestra reads each multipart part named after a flow input, applies the input's default when the part is
absent, and converts the text by the input type (``FlowInputOutput#readData``). Errors are collected and
reported together as ``Invalid entity: <message>`` (422): ``Missing required input:x`` or
``Invalid value for input `x`. Cause: ...``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.testing.backend.clock import instant_from_datetime, parse_instant
from airflow_provider_kestra.testing.backend.exceptions import KestraSimInputOutputValidation

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_JAVA_INT = re.compile(r"^[+-]?\d+$")
_JAVA_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?$")


@dataclass
class KestraSimUploadedFile:
    """A multipart part that carried a filename (a FILE input)."""

    filename: str
    content: bytes


class _InputProblem(Exception):
    """A conversion failure; ``scoped`` messages get the ``Invalid value for input`` prefix."""

    def __init__(self, message: str, *, scoped: bool = True) -> None:
        super().__init__(message)
        self.scoped = scoped


def _parse_int(text: Any) -> int:
    if isinstance(text, bool):
        raise _InputProblem(f'For input string: "{str(text).lower()}"')
    if isinstance(text, int):
        return text
    value = str(text)
    if not _JAVA_INT.match(value) or not -(2**31) <= int(value) < 2**31:
        raise _InputProblem(f'For input string: "{value}"')
    return int(value)


def _parse_float(text: Any) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip()
    if not _JAVA_FLOAT.match(value) and value not in ("NaN", "Infinity", "-Infinity"):
        raise _InputProblem(f'For input string: "{value}"' if value else "empty String")
    return float(value.rstrip("fFdD"))


def _parse_datetime(text: Any) -> str:
    try:
        return instant_from_datetime(parse_instant(str(text)))
    except ValueError:
        raise _InputProblem(
            f" errors:\n```\nText '{text}' could not be parsed at index 0\n```", scoped=False
        ) from None


def _parse_json(text: Any) -> Any:
    if isinstance(text, (dict, list)):
        return text
    try:
        return json.loads(str(text))
    except ValueError as exc:
        raise _InputProblem(f" errors:\n```\n{exc}\n```", scoped=False) from None


def _parse_boolean(text: Any) -> bool:
    return text if isinstance(text, bool) else str(text).strip().lower() == "true"


_SCALARS: dict[str, Callable[[Any], Any]] = {
    "STRING": str,
    "SELECT": str,
    "INT": _parse_int,
    "FLOAT": _parse_float,
    "BOOLEAN": _parse_boolean,
    "BOOL": _parse_boolean,
    "DATETIME": _parse_datetime,
    "JSON": _parse_json,
}


def _parse_array(definition: Mapping[str, Any], raw: Any) -> list[Any]:
    values = raw if isinstance(raw, list) else _parse_json(raw)
    if not isinstance(values, list):
        raise _InputProblem(
            f"Cannot deserialize value of type `java.util.ArrayList` from {type(values).__name__}"
        )
    item_type = str(definition.get("itemType") or "STRING")
    converter = _SCALARS.get(item_type, str)
    out = []
    for element in values:
        try:
            out.append(converter(element))
        except _InputProblem:
            raise _InputProblem(f"Unable to parse array element as `{item_type}` on `{element}`") from None
    return out


def _validate(definition: Mapping[str, Any], value: Any) -> None:
    kind = definition.get("type")
    if kind == "SELECT" and definition.get("required", True) and not definition.get("allowCustomValue"):
        values = [str(v) for v in definition.get("values") or []]
        if value not in values:
            raise _InputProblem(f"it must match the values `[{', '.join(values)}]`")
    if (
        kind == "STRING"
        and definition.get("validator")
        and not re.fullmatch(str(definition["validator"]), value)
    ):
        raise _InputProblem(f"it must match the pattern `{definition['validator']}`")
    if kind in ("INT", "FLOAT"):
        if definition.get("min") is not None and value < definition["min"]:
            raise _InputProblem(f"it must be more than `{definition['min']}`")
        if definition.get("max") is not None and value > definition["max"]:
            raise _InputProblem(f"it must be less than `{definition['max']}`")


def parse_typed_value(kind: str, raw: Any) -> Any:
    """Convert a rendered flow output value to its declared type; ValueError with Kestra's cause."""
    try:
        if kind == "ARRAY":
            return _parse_array({"itemType": "STRING"}, raw)
        return _SCALARS.get(kind, lambda v: v)(raw)
    except _InputProblem as problem:
        raise ValueError(str(problem).strip()) from None


def read_execution_inputs(
    definitions: list[dict[str, Any]],
    provided: Mapping[str, str | KestraSimUploadedFile],
    store_file: Callable[[str, KestraSimUploadedFile], str],
) -> dict[str, Any]:
    """Type every declared input from ``provided`` (or its default); raise 422 listing every problem.

    ``store_file(input_id, upload)`` saves an uploaded FILE input and returns its ``kestra:///`` URI.
    Parts that match no declared input are ignored, as Kestra ignores them.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for definition in definitions:
        input_id = str(definition["id"])
        raw: Any = provided.get(input_id)
        if raw is None or raw == "":
            raw = definition.get("defaults")
        if raw is None:
            if definition.get("required", True):
                problems.append(f"Missing required input:{input_id}")
            continue
        try:
            kind = str(definition["type"])
            if kind == "FILE":
                value: Any = store_file(input_id, raw) if isinstance(raw, KestraSimUploadedFile) else str(raw)
            elif isinstance(raw, KestraSimUploadedFile):
                value = _SCALARS.get(kind, str)(raw.content.decode("utf-8", "replace"))
            elif kind == "ARRAY":
                value = _parse_array(definition, raw)
            else:
                value = _SCALARS[kind](raw)
            _validate(definition, value)
            values[input_id] = value
        except _InputProblem as problem:
            if problem.scoped:
                problems.append(f"Invalid value for input `{input_id}`. Cause: {problem}")
            else:
                problems.append(str(problem))
    if problems:
        raise KestraSimInputOutputValidation("\n".join(problems))
    return values
