"""How Python values become Kestra flow inputs (utils/encoding.py), one test per type.

Kestra parses each multipart part's text by the input's declared type (core ``FlowInputOutput``): DATETIME
as an ISO instant, DATE/TIME as ISO local values, DURATION with ``java.time.Duration.parse``, JSON/ARRAY
as JSON, INT/FLOAT as numbers.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_kestra.exceptions import KestraError, KestraInputError
from airflow_provider_kestra.utils.encoding import encode_inputs, input_text, iso_duration, validate_labels


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-7, "-7"),
        (1.5, "1.5"),
        (Decimal("1234.50"), "1234.50"),
        (Decimal("1E+3"), "1000"),  # never exponent notation: Kestra INT inputs would refuse it
        (datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc), "2026-03-04T05:06:07+00:00"),
        (datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2))), "2026-03-04T05:06:07+02:00"),
        (datetime(2026, 3, 4, 5, 6, 7), "2026-03-04T05:06:07+00:00"),  # naive: UTC, as in Airflow
        (date(2026, 3, 4), "2026-03-04"),
        (time(5, 6, 7), "05:06:07"),
        (time(5, 6, 7, 500000), "05:06:07.500000"),
        ([1, "a", None], '[1, "a", null]'),
        ((1, 2), "[1, 2]"),
        ({"a": {"b": [True]}}, '{"a": {"b": [true]}}'),
        (
            {"when": date(2026, 1, 2), "cost": Decimal("2.5"), "n": Decimal("3")},
            '{"when": "2026-01-02", "cost": 2.5, "n": 3}',
        ),
    ],
)
def test_input_text_per_type(value: Any, text: str) -> None:
    assert input_text("x", value) == text
    assert encode_inputs({"x": value}) == [("x", (None, text, None))]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(seconds=45), "PT45S"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(days=3), "P3D"),
        (timedelta(milliseconds=1500), "PT1.5S"),
        (timedelta(minutes=-5), "-PT5M"),
        (timedelta(days=-1, hours=1), "-PT23H"),
    ],
)
def test_timedelta_is_an_iso_8601_duration(value: timedelta, text: str) -> None:
    assert iso_duration(value) == text
    assert input_text("d", value) == text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "input 'bad': values of type object are not supported"),
        ({1, 2}, "type set are not supported"),
        (float("nan"), "not a number Kestra accepts"),
        (Decimal("Infinity"), "not a number Kestra accepts"),
        ([float("inf")], "not JSON"),
        ({"k": object()}, "type object cannot go into JSON"),
        (time(5, tzinfo=timezone.utc), "TIME inputs have no time zone"),
    ],
)
def test_unsupported_values_name_the_input(value: Any, message: str) -> None:
    with pytest.raises(KestraInputError, match=message) as info:
        encode_inputs({"bad": value})
    assert "'bad'" in str(info.value)
    assert isinstance(info.value, KestraError) and isinstance(info.value, ValueError)


def test_bad_labels_are_input_errors() -> None:
    with pytest.raises(KestraInputError, match="reserved"):
        validate_labels({"system.restarted": "true"})
    with pytest.raises(KestraInputError, match="empty value"):
        validate_labels({"a": ""})
