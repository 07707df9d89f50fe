"""Find ``kestra:///`` file URIs in outputs and map them to safe local file names.

A local name is built only from the last segment of the URI, reduced to ``[A-Za-z0-9._-]``, so a
server-provided path (``../``, absolute paths, NUL, Windows separators) can never leave the target
directory; :func:`safe_local_path` checks that again on the resolved path.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.utils.models import KestraExecution

KESTRA_URI_PREFIX = "kestra://"
STORED_OUTPUTS_TYPE = "io.kestra.datatype:outputs"
"""Marker of task outputs kept in internal storage (1.x); their ``storageUri`` is not an output file."""
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_CHARS = 150


def find_kestra_uris(value: Any) -> list[str]:
    """Every distinct ``kestra://`` string inside a nested outputs structure, in document order.

    Outputs stored in internal storage (``{"type": "io.kestra.datatype:outputs", "storageUri": ...}``)
    are skipped: that URI holds Kestra's serialised outputs, not a file the flow produced.
    """
    found: list[str] = []
    seen: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, str):
            if item.startswith(KESTRA_URI_PREFIX) and item not in seen:
                seen.add(item)
                found.append(item)
        elif isinstance(item, dict):
            if item.get("type") == STORED_OUTPUTS_TYPE:
                return
            for child in item.values():
                walk(child)
        elif isinstance(item, (list, tuple)):
            for child in item:
                walk(child)

    walk(value)
    return found


def safe_file_name(uri: str, *, fallback: str = "output") -> str:
    """A file name made of ``[A-Za-z0-9._-]`` from the URI's last path segment (never empty or dots only)."""
    path = unquote(urlsplit(uri).path or "")
    segment = re.split(r"[/\\]", path.rstrip("/\\"))[-1] if path else ""
    name = _UNSAFE_CHARS.sub("_", segment).strip("._") or fallback
    if len(name) > _MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        name = (
            (stem[: _MAX_NAME_CHARS - len(suffix) - 1] + dot + suffix)
            if dot and len(suffix) < 16
            else name[:_MAX_NAME_CHARS]
        )
    return name


def unique_file_names(uris: Iterable[str], prefixes: Iterable[str | None] | None = None) -> list[str]:
    """Distinct safe names for the URIs (``name``, ``name-1.ext``...), optionally prefixed (e.g. task id)."""
    names: list[str] = []
    used: set[str] = set()
    prefix_list = list(prefixes) if prefixes is not None else None
    for index, uri in enumerate(uris):
        name = safe_file_name(uri)
        prefix = prefix_list[index] if prefix_list is not None and index < len(prefix_list) else None
        if prefix:
            name = f"{_UNSAFE_CHARS.sub('_', prefix).strip('._') or 'task'}__{name}"
        stem, dot, suffix = name.rpartition(".")
        if not dot or not stem:
            stem, dot, suffix = name, "", ""
        candidate, counter = name, 1
        while candidate.lower() in used:
            candidate = f"{stem}-{counter}{dot}{suffix}"
            counter += 1
        used.add(candidate.lower())
        names.append(candidate)
    return names


def safe_local_path(directory: Path, name: str) -> Path:
    """``directory / name``, refusing anything that would resolve outside ``directory``."""
    base = directory.resolve()
    target = (base / name).resolve()
    if target.parent != base:
        raise ValueError(f"refusing to write {name!r} outside {str(base)!r}")
    return target


def move_into(path: Path, directory: Path) -> Path:
    """Rename ``path`` to ``directory / path.name``; a link already there is replaced, never followed."""
    target = directory / path.name
    if target.is_dir() and not target.is_symlink():
        raise FileExistsError(f"refusing to replace folder {target} with an output file")
    path.replace(target)
    return target


def download_output_files_into(hook: KestraHook, execution: KestraExecution, directory: Path) -> list[Path]:
    """Download into a private folder created inside ``directory``, then rename each file into place.

    Nothing is written through a link planted in ``directory`` (the private folder is new and only this
    user's; a rename replaces a link at the destination instead of following it) or outside it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kestra-download-", dir=directory))
    try:
        staged = hook.download_output_files(execution, staging)
        return [move_into(path, directory) for path in staged]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
