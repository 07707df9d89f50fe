"""Result rows shared by every benchmark and the Markdown table they are printed as.

Each benchmark returns :class:`BenchRow` values; ``run.py`` prints them side by side and writes the same
table to ``bench/results.md``. A row that has a goal states whether the measurement met it, so a missed
goal is visible in the table itself and never hidden in a log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import median, quantiles


@dataclass(frozen=True)
class BenchRow:
    """One measured number (or a reason why it could not be measured)."""

    benchmark: str
    variant: str
    metric: str
    value: str
    goal: str = ""
    #: True/False when the row has a goal, None when it is informational.
    met: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``met`` / ``MISSED`` / empty, as shown in the table."""
        if self.met is None:
            return ""
        return "met" if self.met else "MISSED"


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method) of ``values``; the value itself for one sample."""
    if len(values) == 1:
        return values[0]
    if pct == 50:
        return median(values)
    return quantiles(values, n=100, method="inclusive")[pct - 1]


def markdown_table(rows: list[BenchRow]) -> str:
    """Render ``rows`` as a GitHub Markdown table (pipes in cells escaped)."""
    header = ["Benchmark", "Variant", "Metric", "Value", "Goal", "Verdict", "Note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.benchmark, row.variant, row.metric, row.value, row.goal, row.verdict, row.note]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def with_load(rows: list[BenchRow], start: str, end: str) -> list[BenchRow]:
    """``rows`` with the load average at the start and end of their measure appended to each note."""
    text = f"load avg (1/5/15 min) {start} at start, {end} at end"
    return [replace(row, note=f"{row.note}; {text}" if row.note else text) for row in rows]
