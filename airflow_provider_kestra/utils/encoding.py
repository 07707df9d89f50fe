"""Request encodings Kestra expects: multipart inputs and ``key:value`` labels.

Every refusal raises :class:`~airflow_provider_kestra.exceptions.KestraInputError` (a ``KestraError`` and
a ``ValueError``) naming the input or label, before anything is sent.

How Python values become flow inputs (Kestra parses each part's text by the input's declared type):

* ``str`` as it is; ``bool`` as ``true``/``false``; ``int`` and finite ``float`` as JSON numbers;
* ``decimal.Decimal`` as a plain number string (``1234.50``, never exponent notation);
* ``datetime`` as ISO-8601 with its offset; a naive ``datetime`` is taken as UTC (Airflow's convention:
  its own dates are UTC), so ``datetime(2026, 1, 2, 3, 4)`` goes as ``2026-01-02T03:04:00+00:00``;
* ``date`` as ``YYYY-MM-DD``; ``time`` as ``HH:MM[:SS[.ffffff]]`` (a time zone is refused: Kestra's
  TIME inputs have none);
* ``timedelta`` as an ISO-8601 duration (``PT1H30M``, ``P1DT2H``, ``-PT5M``, ``PT0S``);
* ``list``, ``tuple`` and ``dict`` as JSON (dates, times, durations and decimals inside them as above);
* ``pathlib.Path``, ``bytes`` and binary file objects as file parts (FILE inputs); ``None`` is left out.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path, PurePath
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import KestraInputError

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    """Multipart parts for flow inputs, one part per input id (conversions: see the module docstring)."""
    parts: list[MultipartPart] = []
    for name, value in (inputs or {}).items():
        if not isinstance(name, str) or not name:
            raise KestraInputError(f"input names must be non-empty strings, got {name!r}")
        if value is None:
            continue
        if isinstance(value, PurePath):
            path = Path(value)
            if not path.is_file():
                raise KestraInputError(f"input {name!r}: file {str(path)!r} does not exist")
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
        else:
            parts.append((name, (None, input_text(name, value), None)))
    return parts


def input_text(name: str, value: Any) -> str:
    """The text of one non-file input value as Kestra parses it; raises naming ``name`` when unsupported."""
    if isinstance(value, str):
        return value
    scalar = _scalar_text(name, value)
    if scalar is not None:
        return scalar
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, default=lambda item: _json_default(name, item), allow_nan=False)
        except KestraInputError:
            raise
        except (TypeError, ValueError) as err:  # NaN or infinity, non-string keys, a cycle
            raise KestraInputError(f"input {name!r}: not JSON: {err}") from None
    raise KestraInputError(
        f"input {name!r}: values of type {type(value).__name__} are not supported (use str, bool, int, "
        "float, Decimal, datetime, date, time, timedelta, list, dict, a Path, bytes or a binary file)"
    )


def _scalar_text(name: str, value: Any) -> str | None:
    """The text of a bool, number, date, time or duration; None for other types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        if not math.isfinite(value):
            raise KestraInputError(f"input {name!r}: {value} is not a number Kestra accepts")
        return repr(value) if isinstance(value, float) else format(value, "f")
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise KestraInputError(f"input {name!r}: Kestra TIME inputs have no time zone, got {value}")
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    return None


def _json_default(name: str, item: Any) -> Any:
    """``json.dumps`` fallback inside list/dict inputs: dates, times and durations as their ISO text,
    decimals as JSON numbers."""
    if isinstance(item, Decimal) and item.is_finite():
        return int(item) if item == item.to_integral_value() else float(item)
    text = _scalar_text(name, item)
    if text is None or isinstance(item, Decimal):
        raise KestraInputError(f"input {name!r}: a value of type {type(item).__name__} cannot go into JSON")
    return text


def iso_duration(value: timedelta) -> str:
    """An ISO-8601 duration as Java's ``Duration.parse`` reads it: ``PT1H30M``, ``P1DT2H``, ``-PT0.5S``."""
    micros = abs(value // timedelta(microseconds=1))
    sign = "-" if value < timedelta(0) else ""
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if micros:
        clock += f"{seconds}.{micros:06d}".rstrip("0") + "S"
    elif seconds:
        clock += f"{seconds}S"
    head = f"P{days}D" if days else "P"
    if not clock and not days:
        clock = "0S"
    return f"{sign}{head}{'T' + clock if clock else ''}"


def _file_object_name(value: IO[Any], default: str) -> str:
    name = getattr(value, "name", None)
    return PurePath(name).name if isinstance(name, str) and name else default


def _read_binary(value: IO[Any], name: str) -> bytes:
    data = value.read()
    if isinstance(data, str):
        raise KestraInputError(f"input {name!r}: file objects must be opened in binary mode")
    return bytes(data)


def positive_seconds(value: float | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return seconds


def revision_number(task_id: str, revision: int | str | None) -> int | None:
    if revision is None or revision == "":
        return None
    try:
        return int(revision)
    except (TypeError, ValueError):
        raise ValueError(f"{task_id}: revision must be an integer, got {revision!r}") from None


def with_file_inputs(
    task_id: str, inputs: dict[str, Any] | None, file_inputs: Mapping[str, str | Path] | None
) -> dict[str, Any] | None:
    """``inputs`` plus ``file_inputs`` as paths; a missing file is reported before anything is sent."""
    files = {name: Path(str(path)) for name, path in (file_inputs or {}).items()}
    clash = sorted(set(files) & set(inputs or {}))
    if clash:
        raise ValueError(f"{task_id}: inputs {clash} are given both in inputs and file_inputs")
    missing = sorted(f"{name}={path}" for name, path in files.items() if not path.is_file())
    if missing:
        raise FileNotFoundError(f"{task_id}: file_inputs not found: {', '.join(missing)}")
    if not files:
        return inputs
    return {**(inputs or {}), **files}


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
                raise KestraInputError(f"label key {key_text!r} is reserved: Kestra refuses system.* labels")
        elif not is_valid_label_key(key_text):
            raise KestraInputError(
                f"label key {key_text!r} is invalid: Kestra requires a lower-case first letter, then "
                "letters, digits, '.', '_' or '-'"
            )
        value_text = value if isinstance(value, str) else json.dumps(value)
        if value_text == "":
            raise KestraInputError(f"label {key_text!r} has an empty value, which Kestra refuses")
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
