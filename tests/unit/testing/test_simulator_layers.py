"""The simulator's architecture, checked on its source: layers, oracle independence, the profile table.

* ``testing/`` never imports the provider's runtime package, and the runtime never imports ``testing/``:
  the simulator is the oracle the provider is tested against, and an oracle that shares the client's
  understanding of Kestra (its route table, its state sets) cannot catch the client's mistakes.
* ``testing/backend/`` imports no Starlette, no uvicorn and nothing of the HTTP layer (moto's split).
* No import cycle between the simulator's modules, type-only imports included.
* Version differences live in ``profiles.py`` only: no comparison of a profile name or a version string
  anywhere else.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_provider_kestra"
TESTING = PACKAGE / "testing"
BACKEND = TESTING / "backend"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (type-only imports included), as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _runtime_sources() -> list[Path]:
    return [p for p in _sources(PACKAGE) if TESTING not in p.parents]


def test_the_scan_sees_both_sides() -> None:
    """Guards the checks below against scanning nothing (a wrong path would make them pass vacuously)."""
    assert len(_sources(TESTING)) > 20
    assert len(_runtime_sources()) > 10
    assert "airflow_provider_kestra.testing.backend.backend" in _imports(TESTING / "simulator.py")


def test_simulator_imports_nothing_from_the_runtime_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            name
            for name in _imports(path)
            if (name == "airflow_provider_kestra" or name.startswith("airflow_provider_kestra."))
            and not name.startswith("airflow_provider_kestra.testing")
        )
        for path in _sources(TESTING)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_runtime_package_imports_nothing_from_the_simulator() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            name for name in _imports(path) if name.startswith("airflow_provider_kestra.testing")
        )
        for path in _runtime_sources()
    }
    assert not {k: v for k, v in offenders.items() if v}


@pytest.mark.parametrize("path", _sources(BACKEND), ids=lambda p: p.name)
def test_backend_imports_no_http(path: Path) -> None:
    forbidden = ("starlette", "uvicorn", "airflow_provider_kestra.testing.http", "http.")
    bad = sorted(n for n in _imports(path) if n.startswith(forbidden) or n == "http")
    assert not bad


def test_no_import_cycle_between_simulator_modules() -> None:
    modules = {_module_name(path): path for path in _sources(TESTING)}
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name and not name.startswith(m + ".")}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own submodules is not a cycle; anything else is.
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, " -> ".join([*visiting[visiting.index(name) :], name])
        visiting.append(name)
        for dependency in sorted(graph[name]):
            visit(dependency)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert (
        "airflow_provider_kestra.testing.backend.engine"
        not in graph["airflow_provider_kestra.testing.backend.tasks"]
    )


_NAME_COMPARISON = re.compile(r"profile\.name\s*[!=]=|\.name\s*[!=]=\s*[\"']|kestra_version\s*[!=]=")
_VERSION_LITERAL = re.compile(r"^\d+\.\d+")


@pytest.mark.parametrize(
    "path", [p for p in _sources(TESTING) if p.name != "profiles.py"], ids=lambda p: p.name
)
def test_versions_are_told_apart_only_in_the_profile_table(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert not _NAME_COMPARISON.findall(source)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            literals = [
                c.value
                for c in [node.left, *node.comparators]
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
            assert not [v for v in literals if _VERSION_LITERAL.match(v)], ast.unparse(node)


def test_the_version_check_catches_a_name_comparison() -> None:
    """The pattern above really matches the forms it forbids."""
    assert _NAME_COMPARISON.search('if ctx.profile.name == "2.0":')
    assert _NAME_COMPARISON.search("light = profile.name != '0.22'")
    assert not _NAME_COMPARISON.search('if name == "files":')
