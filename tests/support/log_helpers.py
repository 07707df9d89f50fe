"""Log-cursor helpers that only tests need (they used to live in ``utils/logs.py`` with no runtime caller).

Both are thin views of :class:`~airflow_provider_kestra.utils.logs.KestraLogSelection`, the one place that
decides which lines are new and at which level, so tests exercise exactly what the provider runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.utils.logs import KestraLogSelection

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_kestra.utils.models import KestraLogCursor


def at_least(entries: Iterable[dict[str, Any]], min_level: str) -> list[dict[str, Any]]:
    """The entries at ``min_level`` or more severe (unknown levels are kept)."""
    selection = KestraLogSelection(min_level)
    return [e for e in entries if selection.has_level(e)]


def new_log_entries(
    entries: Iterable[dict[str, Any]], cursor: KestraLogCursor | None
) -> tuple[list[dict[str, Any]], KestraLogCursor]:
    """The entries not returned before (in server order) and the cursor to pass next time."""
    selection = KestraLogSelection(None, cursor)
    fresh = [entry for entry in entries if selection.accepts(entry)]
    return fresh, selection.cursor
