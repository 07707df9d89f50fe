"""Every route the simulator serves in a profile had an answer validated against that profile's spec.

The route table is read from the simulator's own app (``build_app``) for each profile, so a route
added to the simulator without a conformance test makes this fail. It runs after the rest of the suite
(``conftest.pytest_collection_modifyitems`` moves it last) and only judges profiles whose test file ran in
full: with ``-k`` or a single file selected it skips.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from kestra_conformance_harness import VALIDATED_OPERATIONS

if TYPE_CHECKING:
    from airflow_provider_kestra.testing import KestraSimulator

PROFILE_TEST_FILES = {
    "0.22": "test_conformance_0_22.py",
    "1.3": "test_conformance_1_3.py",
    "1.3-EE": "test_conformance_1_3.py",
    "2.0": "test_conformance_2_0.py",
}


def simulator_routes(simulator: KestraSimulator) -> set[tuple[str, str]]:
    """(METHOD, template) of every Kestra route ``simulator`` serves, spelt as in the specs.

    Built with the simulator's own ``build_app`` from the running simulator's context, then read from the
    router: its route objects carry a template (``template`` or Starlette's ``path``) and ``methods``.
    """
    from airflow_provider_kestra.testing.http.server import build_app

    app = build_app(simulator._context)  # type: ignore[arg-type]
    routes: set[tuple[str, str]] = set()
    for route in _route_objects(app):
        template = getattr(route, "template", None) or route.path
        template = re.sub(r"\{(\w+):\w+\}", r"{\1}", template)
        if template.startswith("/_simulator/"):
            continue
        if not simulator.profile.tenant_in_path and template != "/api/v1/configs":
            template = template.replace("/api/v1/", "/api/v1/{tenant}/", 1)
        routes.update((method, template) for method in route.methods if method != "HEAD")
    return routes


def _route_objects(node: Any, seen: set[int] | None = None) -> list[Any]:
    """Route objects reachable from an ASGI app through ``app`` / ``routes`` / ``exact`` / ``buckets``."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    if hasattr(node, "methods") and (hasattr(node, "template") or hasattr(node, "path")):
        return [node]
    found: list[Any] = []
    for attribute in ("app", "routes", "exact", "buckets"):
        child = getattr(node, attribute, None)
        children = (
            child.values() if isinstance(child, dict) else child if isinstance(child, list) else [child]
        )
        for item in children:
            for leaf in item if isinstance(item, list) else [item]:
                if leaf is not None:
                    found.extend(_route_objects(leaf, seen))
    return found


@pytest.mark.parametrize("profile", sorted(PROFILE_TEST_FILES))
def test_every_simulator_route_was_validated_against_the_spec(
    request: pytest.FixtureRequest, profile: str
) -> None:
    selected = {item.path.name for item in request.session.items}
    if PROFILE_TEST_FILES[profile] not in selected or request.config.getoption("keyword"):
        pytest.skip("judges coverage only when the whole conformance suite runs")
    simulator = request.getfixturevalue("simulator_" + profile.replace(".", "_").replace("-", "_").lower())
    validated = {(method, template) for name, method, template in VALIDATED_OPERATIONS if name == profile}
    missing = sorted(simulator_routes(simulator) - validated)
    assert not missing, f"simulator routes of profile {profile} never validated against its spec: {missing}"
