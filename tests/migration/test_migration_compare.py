"""The comparison of an Airflow result with a Kestra result, and its readable diff."""

from __future__ import annotations

from datetime import date

from airflow_provider_kestra.migration.compare import compare_results, format_differences
from airflow_provider_kestra.migration.state import KestraComparisonSpec

EXACT = KestraComparisonSpec()


def _paths(airflow: object, kestra: object, spec: KestraComparisonSpec = EXACT) -> list[str]:
    return [str(d) for d in compare_results(airflow, kestra, spec)]


def test_equal_results_match_after_json_normalisation() -> None:
    assert _paths({"rows": (1, 2), "day": date(2025, 1, 31)}, {"rows": [1, 2], "day": "2025-01-31"}) == []
    assert _paths(3, 3.0) == []


def test_each_difference_has_its_path_and_both_values() -> None:
    airflow = {"total": 42, "rows": [{"id": 1}, {"id": 2}], "only_airflow": True}
    kestra = {"total": 41, "rows": [{"id": 1}, {"id": 3}, {"id": 4}], "only_kestra": "x"}
    assert _paths(airflow, kestra) == [
        "$.only_airflow: airflow=true kestra=<missing>",
        '$.only_kestra: airflow=<missing> kestra="x"',
        "$.rows.length: airflow=2 kestra=3",
        "$.rows[1].id: airflow=2 kestra=3",
        "$.total: airflow=42 kestra=41",
    ]


def test_types_matter_numbers_aside() -> None:
    assert _paths({"n": "3"}, {"n": 3}) == ['$.n: airflow="3" kestra=3']
    assert _paths(True, 1) == ["$: airflow=true kestra=1"]


def test_ignored_keys_and_tolerances() -> None:
    spec = KestraComparisonSpec(ignore_keys=frozenset({"run_at"}), tolerance=0.01)
    assert _paths({"x": 1.0, "run_at": "a"}, {"x": 1.005, "run_at": "b"}, spec) == []
    assert _paths({"x": 1.0}, {"x": 1.02}, spec) == ["$.x: airflow=1.0 kestra=1.02"]
    relative = KestraComparisonSpec(relative_tolerance=0.001)
    assert _paths(1000.0, 1000.9, relative) == []
    assert _paths(1000.0, 1002.0, relative) == ["$: airflow=1000.0 kestra=1002.0"]


def test_long_values_are_shortened_and_long_diffs_cut() -> None:
    differences = compare_results({"blob": "a" * 500}, {"blob": "b"}, EXACT)
    assert len(differences[0].airflow) == 120
    assert differences[0].airflow.endswith("...")
    many = compare_results(list(range(30)), list(range(1, 31)), EXACT)
    text = format_differences(many, limit=5)
    assert text.splitlines()[-1] == "  ... and 25 more difference(s)"
    assert text.splitlines()[0] == "  $[0]: airflow=0  kestra=1"
