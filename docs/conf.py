"""Sphinx configuration: the API reference (autodoc) and the Markdown guides (MyST).

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``pip install ".[docs]"``).
``scripts/run-tests.sh`` runs this build, warnings as errors, on the Airflow 3.3 line.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# autodoc imports the provider, which imports Airflow; keep Airflow's home (airflow.cfg, SQLite file) out of
# ~/airflow when the caller did not choose one.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="kestra-docs-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_kestra import __version__  # noqa: E402

project = "airflow-provider-kestra"
author = "airflow-provider-kestra developers"
copyright = "airflow-provider-kestra developers, Apache License 2.0"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
OTHER_GUIDES_MARKER = "   OTHER-GUIDES"
"""A line of index.rst's guides toctree replaced by every docs/*.md guide that index.rst does not name."""
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown guides: anchors for their headings, so `[text](operators.md#deferrable-mode)` links resolve.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The public classes derive from Airflow's; documenting Airflow's inherited members is Airflow's job.
autodoc_inherit_docstrings = False
add_module_names = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No intersphinx: builds run offline (CI reaches no documentation site), so references to Python's,
# Airflow's, requests' and httpx's objects stay plain text instead of links. Sphinx only warns about
# unresolved Python references in nitpicky mode, which stays off for that reason.

html_theme = "alabaster"
html_title = f"airflow-provider-kestra {release}"
html_theme_options = {
    "description": "Apache Airflow provider for Kestra",
    "github_user": "airflow-provider-kestra",
    "github_repo": "airflow-provider-kestra",
    "fixed_sidebar": True,
}
html_static_path: list[str] = []


def _list_other_guides(app: object, docname: str, source: list[str]) -> None:
    """Add the Markdown guides of docs/ that index.rst does not name (architecture.md is written separately,
    later guides too) to its guides toctree, so none is left out and none is required to exist."""
    if docname != "index":
        return
    text = source[0]
    named = set(text.split())
    others = sorted(path.stem for path in Path(__file__).parent.glob("*.md") if path.stem not in named)
    source[0] = text.replace(OTHER_GUIDES_MARKER, "\n".join(f"   {name}" for name in others))


def setup(app: Any) -> None:
    app.connect("source-read", _list_other_guides)
