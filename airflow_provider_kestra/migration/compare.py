"""Compare an Airflow task's result with the result of its Kestra flow, and say where they differ.

Both sides are first brought to their JSON form (what XCom and Kestra's API carry: tuples become lists,
dates become text), then walked together. Each difference names its path (``$.rows[2].amount``) and the
two values, shortened so a large payload never floods the task log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_kestra.migration.state import KestraComparisonSpec

VALUE_REPR_LIMIT = 120
"""Characters of a value shown in a difference."""
MISSING = "<missing>"


@dataclass(frozen=True)
class KestraParityDifference:
    """One place where the two results differ."""

    path: str
    airflow: str
    kestra: str

    def as_dict(self) -> dict[str, str]:
        """JSON form, for XCom and the ledger."""
        return {"path": self.path, "airflow": self.airflow, "kestra": self.kestra}

    def __str__(self) -> str:
        return f"{self.path}: airflow={self.airflow} kestra={self.kestra}"


def to_json_form(value: Any) -> Any:
    """The value as XCom / Kestra would carry it: JSON types only (unknown objects become text)."""
    return json.loads(json.dumps(value, default=str))


def _short(value: Any) -> str:
    if value is MISSING:
        return MISSING
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= VALUE_REPR_LIMIT else text[: VALUE_REPR_LIMIT - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers_match(left: float, right: float, spec: KestraComparisonSpec) -> bool:
    if left == right:
        return True
    allowed = max(spec.tolerance, spec.relative_tolerance * max(abs(left), abs(right)))
    return abs(left - right) <= allowed


def compare_results(airflow: Any, kestra: Any, spec: KestraComparisonSpec) -> list[KestraParityDifference]:
    """Every difference between the two results (empty list: they match under ``spec``)."""
    differences: list[KestraParityDifference] = []
    _walk(to_json_form(airflow), to_json_form(kestra), "$", spec, differences)
    return differences


def _walk(
    left: Any, right: Any, path: str, spec: KestraComparisonSpec, out: list[KestraParityDifference]
) -> None:
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            if key in spec.ignore_keys:
                continue
            child = f"{path}.{key}"
            if key not in right:
                out.append(KestraParityDifference(child, _short(left[key]), MISSING))
            elif key not in left:
                out.append(KestraParityDifference(child, MISSING, _short(right[key])))
            else:
                _walk(left[key], right[key], child, spec, out)
        return
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            out.append(KestraParityDifference(f"{path}.length", str(len(left)), str(len(right))))
        for index, (a, b) in enumerate(zip(left, right, strict=False)):
            _walk(a, b, f"{path}[{index}]", spec, out)
        return
    if _is_number(left) and _is_number(right):
        if not _numbers_match(float(left), float(right), spec):
            out.append(KestraParityDifference(path, _short(left), _short(right)))
        return
    if left != right or type(left) is not type(right):
        out.append(KestraParityDifference(path, _short(left), _short(right)))


def format_differences(
    differences: list[dict[str, str]] | list[KestraParityDifference], limit: int = 20
) -> str:
    """Readable diff, one line per difference, at most ``limit`` lines plus a count of the rest."""
    lines = []
    for item in differences[:limit]:
        if isinstance(item, KestraParityDifference):
            item = item.as_dict()
        lines.append(f"  {item['path']}: airflow={item['airflow']}  kestra={item['kestra']}")
    if len(differences) > limit:
        lines.append(f"  ... and {len(differences) - limit} more difference(s)")
    return "\n".join(lines)
