"""Wire formats of ids, instants and durations (Gotcha 7)."""

from __future__ import annotations

import re

import pytest

from airflow_provider_kestra.testing.backend.clock import (
    format_instant_ns,
    iso_duration,
    new_kestra_id,
    parse_instant,
    parse_iso_duration,
)


def test_ids_are_base62_and_at_most_22_chars() -> None:
    ids = {new_kestra_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(r"[0-9A-Za-z]{1,22}", i) for i in ids)


@pytest.mark.parametrize(
    ("epoch_ns", "text"),
    [
        (1_720_190_406_228_074_635, "2024-07-05T14:40:06.228074635Z"),
        (1_720_190_406_228_074_000, "2024-07-05T14:40:06.228074Z"),
        (1_720_190_406_228_000_000, "2024-07-05T14:40:06.228Z"),
        (1_720_190_406_000_000_000, "2024-07-05T14:40:06Z"),
    ],
)
def test_instants_print_like_java(epoch_ns: int, text: str) -> None:
    assert format_instant_ns(epoch_ns) == text
    assert parse_instant(text).timestamp() == pytest.approx(epoch_ns / 1e9, abs=1e-6)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2.51, "PT2.51S"), (62.5, "PT1M2.5S"), (0, "PT0S"), (3600, "PT1H"), (0.114167, "PT0.114167S")],
)
def test_durations_print_like_java(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text
    assert parse_iso_duration(text) == pytest.approx(seconds)


def test_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be parsed"):
        parse_iso_duration("five minutes")
