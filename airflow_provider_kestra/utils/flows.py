"""Flow YAML helpers: split multi-document sources the way Kestra will, read ``id``/``namespace``.

Sources are never rewritten: each document is sent to Kestra byte for byte as the user wrote it, so
Kestra's ``{{ ... }}`` Pebble expressions reach it untouched.

Kestra splits multi-document bodies naively (``/flows/validate``: ``split("\\n+---\\n*?")`` in 1.x;
``/flows/bulk`` and 0.x: ``split("---")``), not as a YAML parser would. We split on lines that are exactly
``---`` (a YAML document marker) and check the result against the YAML parser (one pass per source); a
document that still contains ``---`` anywhere is flagged (:attr:`KestraFlowDocument.has_separator_text`)
so it is never sent inside a multi-document body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_kestra.utils.models import KestraFlowProblem

_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)

YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one;
both accept the same documents."""


class KestraFlowSourceError(ValueError):
    """A flow source cannot be parsed or lacks ``id``/``namespace``."""


@dataclass(frozen=True)
class KestraFlowDocument:
    """One flow document of a source: its exact text and where it came from."""

    source: str
    namespace: str
    flow_id: str
    filename: str | None
    index: int

    @property
    def label(self) -> str:
        """``file.yml#2 (ns.flow)``: how problems name this document."""
        where = self.filename or "<source>"
        return f"{where}#{self.index} ({self.namespace}.{self.flow_id})"

    @property
    def has_separator_text(self) -> bool:
        """Whether the text holds ``---`` that Kestra's naive split would cut on."""
        return "---" in self.source


def split_documents(text: str) -> list[str]:
    """The non-empty YAML documents of a source, each as its original text (separators removed)."""
    pieces = [piece for piece in _SEPARATOR.split(text) if piece.strip() and _has_content(piece)]
    return pieces


def _has_content(piece: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in piece.splitlines())


def parse_flow_documents(text: str, *, filename: str | None = None) -> list[KestraFlowDocument]:
    """Split a source into flows and read each one's ``id`` and ``namespace``: the text is parsed once,
    with :data:`YAML_LOADER`."""
    where = filename or "<source>"
    try:
        loaded = [doc for doc in yaml.load_all(text, Loader=YAML_LOADER) if doc is not None]
    except yaml.YAMLError as err:
        raise KestraFlowSourceError(f"{where}: invalid YAML: {err}") from err
    pieces = split_documents(text)
    if len(pieces) != len(loaded):
        raise KestraFlowSourceError(
            f"{where}: cannot split into flows safely (YAML sees {len(loaded)} document(s), '---' lines give "
            f"{len(pieces)}); put each '---' separator on its own line"
        )
    # A lone flow is sent exactly as written; documents of a multi-flow source lose only their blank edges.
    pieces = [text] if len(pieces) == 1 else [piece.strip("\n") + "\n" for piece in pieces]
    documents = [
        _document(piece, data, where, filename, index)
        for index, (piece, data) in enumerate(zip(pieces, loaded, strict=True))
    ]
    if not documents:
        raise KestraFlowSourceError(f"{where}: no flow found (the source is empty)")
    return documents


def _document(piece: str, data: Any, where: str, filename: str | None, index: int) -> KestraFlowDocument:
    if not isinstance(data, dict):
        raise KestraFlowSourceError(
            f"{where}#{index}: a flow must be a YAML mapping, got {type(data).__name__}"
        )
    missing = [key for key in ("id", "namespace") if not isinstance(data.get(key), str) or not data.get(key)]
    if missing:
        raise KestraFlowSourceError(f"{where}#{index}: the flow has no {' and no '.join(missing)}")
    return KestraFlowDocument(
        source=piece,
        namespace=str(data["namespace"]),
        flow_id=str(data["id"]),
        filename=filename,
        index=index,
    )


def flow_identity(source: str) -> tuple[str, str]:
    """``(namespace, flow_id)`` of a single-flow source; raises if it holds zero or several flows."""
    documents = parse_flow_documents(source)
    if len(documents) != 1:
        raise KestraFlowSourceError(f"expected one flow, found {len(documents)}")
    return documents[0].namespace, documents[0].flow_id


def flow_problem(
    filename: str | None, index: int, namespace: str | None, flow_id: str | None, message: str
) -> KestraFlowProblem:
    """One problem, naming the file, the flow's position in it, its namespace and id (when known)."""
    return {
        "filename": filename,
        "index": index,
        "namespace": namespace,
        "flow_id": flow_id,
        "message": message,
    }


def _document_problem(doc: KestraFlowDocument, message: str) -> KestraFlowProblem:
    """A problem with a parsed flow document."""
    return flow_problem(doc.filename, doc.index, doc.namespace, doc.flow_id, message)


def parse_sources(
    sources: str | Sequence[str], filenames: Sequence[str] | None = None
) -> tuple[list[KestraFlowDocument], list[KestraFlowProblem]]:
    """All flow documents of one or several sources, and a problem for each source that cannot be read."""
    source_list = [sources] if isinstance(sources, str) else list(sources)
    if filenames is not None and len(filenames) != len(source_list):
        raise ValueError(f"got {len(source_list)} source(s) but {len(filenames)} filename(s)")
    documents: list[KestraFlowDocument] = []
    problems: list[KestraFlowProblem] = []
    for position, text in enumerate(source_list):
        filename = filenames[position] if filenames is not None else None
        if not isinstance(text, str):
            problems.append(
                flow_problem(filename, 0, None, None, f"flow source must be text, got {type(text).__name__}")
            )
            continue
        try:
            documents.extend(parse_flow_documents(text, filename=filename))
        except KestraFlowSourceError as err:
            problems.append(flow_problem(filename, 0, None, None, str(err)))
    return documents, problems


def scope_problems(documents: Sequence[KestraFlowDocument], namespace: str | None) -> list[KestraFlowProblem]:
    """Flows outside ``namespace`` (when given) and flows given twice."""
    problems: list[KestraFlowProblem] = []
    seen: dict[tuple[str, str], KestraFlowDocument] = {}
    for doc in documents:
        if namespace and doc.namespace != namespace:
            problems.append(
                _document_problem(
                    doc, f"flow {doc.flow_id} belongs to namespace {doc.namespace!r}, not {namespace!r}"
                )
            )
        key = (doc.namespace, doc.flow_id)
        if key in seen:
            problems.append(
                _document_problem(
                    doc, f"flow {doc.namespace}.{doc.flow_id} is defined twice (also in {seen[key].label})"
                )
            )
        else:
            seen[key] = doc
    return problems


def validation_problems(
    group: Sequence[KestraFlowDocument], results: Sequence[Any]
) -> list[KestraFlowProblem]:
    """Problems from Kestra's ``ValidateConstraintViolation[]`` for documents sent together, in order."""
    if len(results) != len(group):
        return [
            _document_problem(
                doc,
                f"Kestra split the validated source into {len(results)} flow(s) instead of {len(group)}; "
                "a '---' inside a flow confuses its splitter",
            )
            for doc in group
        ]
    problems = []
    for doc, result in zip(group, results, strict=True):
        constraints = result.get("constraints") if isinstance(result, dict) else None
        if constraints:
            problems.append(_document_problem(doc, str(constraints)))
    return problems


def problems_message(problems: Sequence[KestraFlowProblem]) -> str:
    """One readable message naming every invalid flow."""
    lines = []
    for problem in problems:
        where = problem["filename"] or "<source>"
        flow = f"{problem['namespace']}.{problem['flow_id']}" if problem["flow_id"] else "?"
        lines.append(f"- {where}#{problem['index']} flow {flow}: {problem['message']}")
    return f"{len(problems)} invalid flow(s), nothing deployed:\n" + "\n".join(lines)
