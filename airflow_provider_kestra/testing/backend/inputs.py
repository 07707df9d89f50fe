"""Typing of execution inputs from multipart parts, as ``FlowInputOutput`` does, with Kestra's messages.

Read from Kestra 1.3.25 (binhth-vuejx/kestra-1.3.25 @2a102a6a, a verbatim upload of the release):
``core/.../runners/FlowInputOutput.java`` (``resolveInputs``, ``parseType``), the input classes under
``core/.../models/flows/input/`` (their ``validate`` messages) and ``core/.../exceptions/
InputOutputValidationException.java``.

* A part named after an input is its value; an absent (or empty) part takes the input's ``defaults``
  (a ``Property``: its expression string is rendered, then converted).
* No value and no default: ``Missing required input:<id>`` when required; an optional input is in
  ``execution.inputs`` with a null value (``resolveWithValue(null)``; Jackson writes null map values, as
  ``ExecutionControllerRunnerTest#triggerExecution`` asserts: ``containsKey("bool")`` and ``isNull()``).
* Conversion failures that are ``IllegalArgumentException``s (numbers, URIs, array elements) and
  ``validate`` refusals read ``Invalid value for input `<id>`. Cause: <message>``; other parse failures
  (dates, times, durations, JSON, YAML) read `` errors:\\n```\\n<message>\\n```\\n`` without the prefix.
* Only the first input (in declaration order) that fails is reported (``readExecutionInputs`` throws on
  it), with all of its own violations joined by newlines. The inputs map is key-sorted (a ``TreeMap``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from airflow_provider_kestra.testing.backend.clock import (
    instant_from_datetime,
    iso_duration,
    parse_instant,
    parse_iso_duration,
)
from airflow_provider_kestra.testing.backend.exceptions import KestraSimInputOutputValidation
from airflow_provider_kestra.testing.backend.pebble import KestraPebbleError, render

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_JAVA_INT = re.compile(r"^[+-]?\d+$")
_JAVA_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?$")
#: ``EmailInput.EMAIL_PATTERN`` verbatim, typographic apostrophe included.
_EMAIL = re.compile(r"^$|^[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$")  # noqa: RUF001
_LOCAL_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_LOCAL_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URI_ILLEGAL = re.compile(r"[\s\"<>\\^`{|}]")
#: ``EncryptedString.TYPE``: how a SECRET input's value is written.
ENCRYPTED_TYPE = "io.kestra.datatype:aes_encrypted"
#: The simulator's own key: SECRET values are encrypted with it, not with Kestra's AES-GCM key.
_SECRET_KEY = secrets.token_bytes(32)


@dataclass
class KestraSimUploadedFile:
    """A multipart part that carried a filename (a FILE input)."""

    filename: str
    content: bytes


class _InputProblem(Exception):
    """A conversion or validation failure; ``scoped`` messages get the ``Invalid value for input`` prefix."""

    def __init__(self, message: str, *, scoped: bool = True) -> None:
        super().__init__(message)
        self.scoped = scoped


def _parse_failure(message: str) -> _InputProblem:
    """A non-``IllegalArgumentException`` failure, wrapped by ``parseType`` in `` errors:`` and backticks."""
    return _InputProblem(f" errors:\n```\n{message}\n```", scoped=False)


def java_text(value: Any) -> str:
    """``current.toString()`` of a value as Jackson read it from YAML (``true``, ``2``, ``2024-01-01``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _parse_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = java_text(value)
    if not _JAVA_INT.match(text) or not -(2**31) <= int(text) < 2**31:
        raise _InputProblem(f'For input string: "{text}"')
    return int(text)


def _parse_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = java_text(value).strip()
    if not _JAVA_FLOAT.match(text) and text not in ("NaN", "Infinity", "-Infinity"):
        raise _InputProblem(f'For input string: "{text}"' if text else "empty String")
    return float(text.rstrip("fFdD"))


def _parse_boolean(value: Any) -> bool:
    """``Boolean.valueOf``: ``true`` (any case) is true, anything else false."""
    return value if isinstance(value, bool) else java_text(value).strip().lower() == "true"


def _parse_datetime(value: Any) -> str:
    """``Instant.parse``, written as ``Instant.toString()``."""
    text = java_text(value)
    try:
        return instant_from_datetime(parse_instant(text))
    except ValueError:
        raise _parse_failure(f"Text '{text}' could not be parsed at index 0") from None


def _parse_date(value: Any) -> str:
    """``LocalDate.parse`` (``yyyy-MM-dd``), written as ``LocalDate.toString()``."""
    text = java_text(value)
    match = _LOCAL_DATE.match(text)
    try:
        if match is None:
            raise ValueError(text)
        return dt.date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    except ValueError:
        raise _parse_failure(f"Text '{text}' could not be parsed at index 0") from None


def _parse_time(value: Any) -> str:
    """``LocalTime.parse`` (``HH:mm[:ss[.n]]``), written with ``ISO_LOCAL_TIME`` (seconds always there)."""
    text = java_text(value)
    match = _LOCAL_TIME.match(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
        raise _parse_failure(f"Text '{text}' could not be parsed at index 0")
    fraction = (match[4] or "").rstrip("0")
    return f"{match[1]}:{match[2]}:{match[3] or '00'}" + (f".{fraction}" if fraction else "")


def _parse_duration(value: Any) -> str:
    """``Duration.parse``, written as ``Duration.toString()`` (``PT90M`` -> ``PT1H30M``)."""
    try:
        return iso_duration(parse_iso_duration(java_text(value)))
    except ValueError:
        raise _parse_failure("Text cannot be parsed to a Duration") from None


def _parse_json(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(java_text(value))
    except ValueError as exc:
        raise _parse_failure(str(exc)) from None


def _parse_yaml(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    try:
        return yaml.safe_load(java_text(value))
    except yaml.YAMLError as exc:
        raise _parse_failure(str(exc).splitlines()[0]) from None


def _parse_uri(value: Any) -> str:
    """``URI.create`` then a scheme check (``Invalid URI format.``); the value stays the given text."""
    text = java_text(value)
    illegal = _URI_ILLEGAL.search(text)
    if illegal is not None:
        raise _InputProblem(f"Illegal character in path at index {illegal.start()}: {text}")
    if not _URI_SCHEME.match(text):
        raise _InputProblem("Invalid URI format.")
    return text


def encrypt_secret(plain: str) -> dict[str, str]:
    """A SECRET input's value: an ``EncryptedString`` ``{value, type}`` (encrypted with a simulator key)."""
    nonce = secrets.token_bytes(12)
    data = plain.encode()
    return {"value": base64.b64encode(nonce + _xor_stream(nonce, data)).decode(), "type": ENCRYPTED_TYPE}


def decrypt_secret(encrypted: Mapping[str, Any]) -> str:
    """The plain text of an :func:`encrypt_secret` value (what a task's Pebble sees, as in Kestra)."""
    raw = base64.b64decode(str(encrypted["value"]))
    return _xor_stream(raw[:12], raw[12:]).decode()


def is_encrypted(value: Any) -> bool:
    """Whether ``value`` is an ``EncryptedString`` written by :func:`encrypt_secret`."""
    return isinstance(value, dict) and value.get("type") == ENCRYPTED_TYPE and "value" in value


def _xor_stream(nonce: bytes, data: bytes) -> bytes:
    stream = b""
    counter = 0
    while len(stream) < len(data):
        stream += hashlib.sha256(_SECRET_KEY + nonce + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


_SCALARS: dict[str, Callable[[Any], Any]] = {
    "STRING": java_text,
    "SELECT": java_text,
    "ENUM": java_text,
    "EMAIL": java_text,
    "INT": _parse_int,
    "FLOAT": _parse_float,
    "BOOLEAN": _parse_boolean,
    "BOOL": _parse_boolean,
    "DATETIME": _parse_datetime,
    "DATE": _parse_date,
    "TIME": _parse_time,
    "DURATION": _parse_duration,
    "JSON": _parse_json,
    "YAML": _parse_yaml,
    "URI": _parse_uri,
}


def _parse_list(definition: Mapping[str, Any], value: Any) -> list[Any]:
    """ARRAY and MULTISELECT: a list, or JSON text of one; elements converted by ``itemType``."""
    if isinstance(value, list):
        values = value
    else:
        try:
            values = json.loads(java_text(value))
        except ValueError as exc:
            raise _parse_failure(str(exc)) from None
        if not isinstance(values, list):
            raise _parse_failure(
                f"Cannot deserialize value of type `java.util.ArrayList` from {type(values).__name__}"
            )
    item_type = str(definition.get("itemType") or "STRING")
    converter: Callable[[Any], Any] = _SCALARS.get(item_type, java_text)
    out = []
    for element in values:
        try:
            out.append(converter(element))
        except _InputProblem:
            raise _InputProblem(f"Unable to parse array element as `{item_type}` on `{element}`") from None
    return out


def _range_messages(definition: Mapping[str, Any], kind: str, value: Any) -> list[str]:
    """``after``/``before`` (dates, times), ``min``/``max`` (numbers, durations) of the input classes."""
    if kind in ("DATETIME", "DATE", "TIME"):
        convert = {"DATETIME": _parse_datetime, "DATE": _parse_date, "TIME": _parse_time}[kind]
        after, before = definition.get("after"), definition.get("before")
        key: Callable[[str], Any] = parse_instant if kind == "DATETIME" else str
        if after is not None and key(value) < key(convert(after)):
            return [f"it must be after `{java_text(after)}`"]
        if before is not None and key(value) > key(convert(before)):
            return [f"it must be before `{java_text(before)}`"]
        return []
    low, high = definition.get("min"), definition.get("max")
    if kind == "DURATION":
        seconds = parse_iso_duration(value)
        if low is not None and seconds < parse_iso_duration(java_text(low)):
            return [f"It must be more than `{_parse_duration(low)}`"]
        if high is not None and seconds > parse_iso_duration(java_text(high)):
            return [f"It must be less than `{_parse_duration(high)}`"]
        return []
    if kind in ("INT", "FLOAT"):
        if low is not None and value < low:
            return [f"it must be more than `{java_text(low)}`"]
        if high is not None and value > high:
            return [f"it must be less than `{java_text(high)}`"]
    return []


def _violations(definition: Mapping[str, Any], value: Any) -> list[str]:
    """The messages of the input class's ``validate`` (empty when valid)."""
    kind = str(definition.get("type"))
    listed = [java_text(v) for v in definition.get("values") or []]
    refused = (
        value not in listed and definition.get("required", True) and not definition.get("allowCustomValue")
    )
    if kind == "SELECT" and refused:
        return [f"it must match the values `[{', '.join(listed)}]`"]
    if kind == "MULTISELECT":
        problems = []
        if definition.get("values") is not None and definition.get("options") is not None:
            problems.append("you can't define both `values` and `options`")
        allowed = listed or [java_text(v) for v in definition.get("options") or []]
        if not definition.get("allowCustomValue"):
            problems += [
                f"value `{item}` doesn't match the values `[{', '.join(allowed)}]`"
                for item in value
                if item not in allowed
            ]
        return problems
    pattern = definition.get("validator")
    if kind in ("STRING", "SECRET") and pattern and not re.fullmatch(str(pattern), value):
        return [f"it must match the pattern `{pattern}`"]
    if kind == "EMAIL" and not _EMAIL.match(value):
        return ["The input must be a valid email"]
    return _range_messages(definition, kind, value)


def _default_value(definition: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    """The rendered ``defaults`` Property (a Pebble expression string is rendered first), or None."""
    default = definition.get("defaults")
    if default is None and definition.get("autoSelectFirst") and definition.get("values"):
        values = list(definition["values"])
        default = values[0] if definition.get("type") == "SELECT" else [values[0]]
    if isinstance(default, str) and "{{" in default:
        try:
            return render(default, context)
        except KestraPebbleError as exc:
            raise _InputProblem(str(exc)) from None
    return default


def _typed(
    definition: Mapping[str, Any],
    raw: Any,
    store_file: Callable[[str, KestraSimUploadedFile], str],
) -> Any:
    """``parseType`` then ``validate`` of one input; raises :class:`_InputProblem` with every violation."""
    input_id, kind = str(definition["id"]), str(definition["type"])
    if kind == "FILE":
        return store_file(input_id, raw) if isinstance(raw, KestraSimUploadedFile) else java_text(raw)
    if isinstance(raw, KestraSimUploadedFile):
        raw = raw.content.decode("utf-8", "replace")
    if kind in ("ARRAY", "MULTISELECT"):
        value: Any = _parse_list(definition, raw)
    elif kind == "SECRET":
        value = java_text(raw)
    else:
        value = _SCALARS[kind](raw)
    problems = _violations(definition, value)
    if problems:
        raise _InputProblem("\n".join(f"Invalid value for input `{input_id}`. Cause: {p}" for p in problems))
    return encrypt_secret(value) if kind == "SECRET" else value


def parse_typed_value(kind: str, raw: Any) -> Any:
    """Convert a rendered flow output value to its declared type; ValueError with Kestra's cause."""
    try:
        if kind == "ARRAY":
            return _parse_list({"itemType": "STRING"}, raw)
        return _SCALARS.get(kind, lambda v: v)(raw)
    except _InputProblem as problem:
        raise ValueError(str(problem).strip()) from None


def read_execution_inputs(
    definitions: list[dict[str, Any]],
    provided: Mapping[str, str | KestraSimUploadedFile],
    store_file: Callable[[str, KestraSimUploadedFile], str],
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Type every declared input from ``provided`` (or its default); 422 on the first failing input.

    ``store_file(input_id, upload)`` saves an uploaded FILE input and returns its ``kestra:///`` URI;
    ``context`` is what a Pebble ``defaults`` expression sees. Parts that match no declared input are
    ignored, as Kestra ignores them (with a warning in the execution's logs).
    """
    values: dict[str, Any] = {}
    for definition in definitions:
        input_id = str(definition["id"])
        raw: Any = provided.get(input_id)
        try:
            if raw is None or raw == "":
                raw = _default_value(definition, context or {})
            if raw is None:
                if definition.get("required", True):
                    raise _InputProblem(f"Missing required input:{input_id}", scoped=False)
                values[input_id] = None
                continue
            values[input_id] = _typed(definition, raw, store_file)
        except _InputProblem as problem:
            message = str(problem)
            if problem.scoped and not message.startswith("Invalid value for input"):
                message = f"Invalid value for input `{input_id}`. Cause: {message}"
            raise KestraSimInputOutputValidation(message) from None
    return dict(sorted(values.items()))
