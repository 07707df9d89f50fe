"""Request encodings Kestra expects: multipart inputs, ``key:value`` labels and ``filters[...]`` params."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MultipartPart = tuple[str, tuple[str | None, Any, str | None]]
"""``(part name, (filename or None, content, content type or None))`` as requests and httpx take them."""


def is_valid_label_key(key: str) -> bool:
    """Kestra's label key rule ``^[\\p{Ll}][\\p{L}0-9._-]*$``: lower-case letter, then letters/digits/._-"""
    if not key or not (key[0].isalpha() and key[0].islower()):
        return False
    return all(ch.isalpha() or ch in "0123456789._-" for ch in key[1:])


def _is_file_object(value: Any) -> bool:
    return hasattr(value, "read") and not isinstance(value, (str, bytes))


def encode_inputs(inputs: Mapping[str, Any] | None) -> list[MultipartPart]:
    """Multipart parts for flow inputs, one part per input id.

    Strings go as they are; numbers, booleans, lists and dicts JSON-encoded (as Kestra's SDK does);
    ``pathlib.Path`` values, ``bytes`` and binary file objects become file parts (FILE inputs) whose
    filename is the file's name (or the input id). ``None`` values are left out.
    """
    parts: list[MultipartPart] = []
    for name, value in (inputs or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"input names must be non-empty strings, got {name!r}")
        if value is None:
            continue
        if isinstance(value, PurePath):
            path = Path(value)
            if not path.is_file():
                raise ValueError(f"input {name!r}: file {str(path)!r} does not exist")
            parts.append((name, (path.name, path.read_bytes(), "application/octet-stream")))
        elif isinstance(value, (bytes, bytearray)):
            parts.append((name, (name, bytes(value), "application/octet-stream")))
        elif _is_file_object(value):
            parts.append(
                (
                    name,
                    (_file_object_name(value, name), _read_binary(value, name), "application/octet-stream"),
                )
            )
        elif isinstance(value, str):
            parts.append((name, (None, value, None)))
        elif isinstance(value, datetime):
            parts.append((name, (None, value.isoformat(), None)))
        else:
            try:
                text = json.dumps(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"input {name!r}: value of type {type(value).__name__} is not JSON") from err
            parts.append((name, (None, text, None)))
    return parts


def _file_object_name(value: IO[Any], default: str) -> str:
    name = getattr(value, "name", None)
    return PurePath(name).name if isinstance(name, str) and name else default


def _read_binary(value: IO[Any], name: str) -> bytes:
    data = value.read()
    if isinstance(data, str):
        raise ValueError(f"input {name!r}: file objects must be opened in binary mode")
    return bytes(data)


def validate_labels(labels: Mapping[str, Any] | None, *, allow_system: bool = False) -> dict[str, str]:
    """Labels as ``str -> str``, refusing what Kestra would reject with 422 (before anything is sent).

    ``system.*`` keys are set by Kestra only (``system.correlationId`` excepted); searching on them is fine,
    hence ``allow_system``.
    """
    result: dict[str, str] = {}
    for key, value in (labels or {}).items():
        key_text = str(key)
        if key_text.startswith("system."):
            if not allow_system and key_text != "system.correlationId":
                raise ValueError(f"label key {key_text!r} is reserved: Kestra refuses system.* labels")
        elif not is_valid_label_key(key_text):
            raise ValueError(
                f"label key {key_text!r} is invalid: Kestra requires a lower-case first letter, then "
                "letters, digits, '.', '_' or '-'"
            )
        value_text = value if isinstance(value, str) else json.dumps(value)
        if value_text == "":
            raise ValueError(f"label {key_text!r} has an empty value, which Kestra refuses")
        result[key_text] = value_text
    return result


def encode_labels(labels: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Query parameters ``labels=key:value`` (repeated) for the create-execution POST."""
    return [("labels", f"{key}:{value}") for key, value in validate_labels(labels).items()]


def format_instant(value: datetime | str) -> str:
    """An ISO-8601 date-time with offset (naive datetimes are taken as UTC)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def execution_filters(
    *,
    namespace: str | None = None,
    flow_id: str | None = None,
    states: Iterable[str] | None = None,
    labels: Mapping[str, Any] | None = None,
    started_after: datetime | str | None = None,
) -> list[tuple[str, str]]:
    """``filters[...]`` query parameters for execution search; refuses to return an empty filter set.

    Kestra treats an empty filter set as "every execution of the tenant", so an empty result here is an
    error rather than a silent match-all.
    """
    params: list[tuple[str, str]] = []
    if namespace:
        params.append(("filters[namespace][EQUALS]", namespace))
    if flow_id:
        params.append(("filters[flowId][EQUALS]", flow_id))
    state_list = [str(getattr(s, "value", s)) for s in (states or [])]
    if state_list:
        params.append(("filters[state][IN]", ",".join(state_list)))
    for key, value in validate_labels(labels, allow_system=True).items():
        params.append((f"filters[labels][EQUALS][{key}]", value))
    if started_after is not None:
        params.append(("filters[startDate][GREATER_THAN_OR_EQUAL_TO]", format_instant(started_after)))
    if not params:
        raise ValueError("refusing to search executions without any filter (Kestra would match all of them)")
    return params


def multipart_body(parts: list[MultipartPart]) -> tuple[bytes, str]:
    """Encode parts as one ``multipart/form-data`` body (works for requests and httpx alike, even empty)."""
    from urllib3.filepost import encode_multipart_formdata

    fields: list[tuple[str, Any]] = []
    for name, (filename, content, content_type) in parts:
        if filename is None:
            fields.append((name, content))
        else:
            fields.append((name, (filename, content, content_type or "application/octet-stream")))
    return encode_multipart_formdata(fields)


def execution_search_params(
    *,
    namespace: str | None = None,
    flow_id: str | None = None,
    states: Iterable[str] | None = None,
    labels: Mapping[str, Any] | None = None,
    started_after: datetime | str | None = None,
    size: int = 100,
) -> list[tuple[str, str]]:
    """Query parameters of ``GET /executions/search``: the filters, newest first, first page of ``size``."""
    params = execution_filters(
        namespace=namespace, flow_id=flow_id, states=states, labels=labels, started_after=started_after
    )
    return [*params, ("sort", "state.startDate:desc"), ("page", "1"), ("size", str(int(size)))]
