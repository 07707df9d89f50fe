"""The one table of Kestra API routes, per API generation.

``KestraApiVersion`` names the three shapes the hook speaks:

* ``0.22``: no tenant segment (``/api/v1/executions/...``);
* ``1``: ``/api/v1/{tenant}/...`` (0.23 up to 1.x);
* ``2``: as 1, plus single-execution actions under ``/executions/{id}/actions/...`` (kill, resume,
  restart return the execution), outputs from ``/outputs/executions/{executionId}`` (flow) and
  ``/outputs/tasks/{executionId}[/{taskRunId}]`` (task runs), problem+json errors, light executions
  from search.

Kestra 2.x builds do not agree on where the single-execution actions live: the published 2.0 API puts
them under ``/actions/`` (the ``actions`` layout), some builds still serve them at
``/executions/{id}/kill`` and so on (the ``plain`` layout, the 1.x paths). :func:`resolve_route` takes the
layout; the hooks try the other one when a server answers "no such route" (see ``hooks/kestra_base.py``).

Every entry also says whether the request may be repeated (see :mod:`.retry`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal
from urllib.parse import quote

from airflow_provider_kestra.utils.retry import KestraRetryMode

SAFE, ONCE, AMBIGUOUS = KestraRetryMode.SAFE, KestraRetryMode.ONCE, KestraRetryMode.AMBIGUOUS


class KestraApiVersion(str, Enum):
    """API generation of a Kestra server (value = what the ``api_version`` extra accepts)."""

    V0_22 = "0.22"
    V1 = "1"
    V2 = "2"

    @classmethod
    def from_server_version(cls, version: str) -> KestraApiVersion:
        """The generation of a server version string such as ``1.3.25``, ``0.22.3``, ``2.0.0-SNAPSHOT``."""
        match = re.match(r"\s*v?(\d+)(?:\.(\d+))?", version or "")
        if not match:
            raise ValueError(f"unrecognised Kestra version {version!r}")
        major, minor = int(match.group(1)), int(match.group(2) or 0)
        if major >= 2:
            return cls.V2
        if major == 0 and minor < 23:
            return cls.V0_22
        return cls.V1

    @classmethod
    def parse(cls, value: str) -> KestraApiVersion | None:
        """A pinned ``api_version`` extra (``0.22``, ``1``, ``1.3``, ``2``...), or None for ``auto``/empty."""
        text = (value or "").strip().lower()
        if text in ("", "auto"):
            return None
        return cls.from_server_version(text)


@dataclass(frozen=True)
class KestraRouteSpec:
    """One endpoint: method, path template below the API prefix, whether it is tenant-scoped, retry mode."""

    method: str
    template: str
    retry: KestraRetryMode
    tenant: bool = True


@dataclass(frozen=True)
class KestraRoute:
    """A route resolved for one server: ready to send."""

    name: str
    method: str
    path: str
    retry: KestraRetryMode


_E = "executions/{execution_id}"

ROUTES: dict[str, dict[KestraApiVersion, KestraRouteSpec]] = {}


def _route(name: str, v1: KestraRouteSpec, v2: KestraRouteSpec | None = None) -> None:
    ROUTES[name] = {KestraApiVersion.V0_22: v1, KestraApiVersion.V1: v1, KestraApiVersion.V2: v2 or v1}


_route("configs", KestraRouteSpec("GET", "configs", SAFE, tenant=False))
# Flows. Create is ONCE: a repeat after success answers "already exists".
_route("flow_get", KestraRouteSpec("GET", "flows/{namespace}/{flow_id}", SAFE))
_route("flow_list", KestraRouteSpec("GET", "flows/{namespace}", SAFE))
_route("flow_search", KestraRouteSpec("GET", "flows/search", SAFE))
_route("flow_create", KestraRouteSpec("POST", "flows", ONCE))
_route("flow_update", KestraRouteSpec("PUT", "flows/{namespace}/{flow_id}", SAFE))
_route("flow_delete", KestraRouteSpec("DELETE", "flows/{namespace}/{flow_id}", SAFE))
_route("flow_validate", KestraRouteSpec("POST", "flows/validate", SAFE))
# Bulk write (FlowController#bulkUpdateFlows, kestra-io/kestra@044883a0, 1.x; same in the 2.0 spec). SAFE: the
# same body sent again converges (created flows are then identical updates, which keep their revision).
# Not for 0.22: its bulkUpdate has no ``namespace`` parameter (kestra-io/kestra@629ce96f), so the hook
# writes flow by flow there (hooks/kestra_deploy.py).
ROUTES["flow_bulk"] = {
    version: KestraRouteSpec("POST", "flows/bulk", SAFE)
    for version in (KestraApiVersion.V1, KestraApiVersion.V2)
}
# Executions. Create may start a second run when repeated: the hook resolves ambiguity itself.
_route("execution_create", KestraRouteSpec("POST", "executions/{namespace}/{flow_id}", AMBIGUOUS))
_route("execution_get", KestraRouteSpec("GET", _E, SAFE))
_route("execution_search", KestraRouteSpec("GET", "executions/search", SAFE))
_route("execution_delete", KestraRouteSpec("DELETE", _E, SAFE))
_route("execution_follow", KestraRouteSpec("GET", _E + "/follow", SAFE))
_route("execution_file", KestraRouteSpec("GET", _E + "/file", SAFE))
# Kill with the default isOnKillCascade=true answers 202 even for a finished execution: idempotent.
_route(
    "execution_kill",
    KestraRouteSpec("DELETE", _E + "/kill", SAFE),
    KestraRouteSpec("DELETE", _E + "/actions/kill", SAFE),
)
# A second restart or resume fails with 409 (no longer terminated / not paused): never repeat once sent.
_route(
    "execution_restart",
    KestraRouteSpec("POST", _E + "/restart", ONCE),
    KestraRouteSpec("POST", _E + "/actions/restart", ONCE),
)
_route(
    "execution_resume",
    KestraRouteSpec("POST", _E + "/resume", ONCE),
    KestraRouteSpec("POST", _E + "/actions/resume", ONCE),
)
# Webhook triggers (ExecutionController#webhook, GET|POST|PUT; open without auth by default). A repeat
# would start a second execution, and the path holds the trigger's secret key: see KestraHook.trigger_webhook.
for _method in ("GET", "POST", "PUT"):
    _route(
        f"execution_webhook_{_method.lower()}",
        KestraRouteSpec(_method, "executions/webhook/{namespace}/{flow_id}/{key}", ONCE),
    )
# Logs, and (2.x only) outputs: webserver/.../controllers/api/OutputController.java
# (kestra-io/kestra@159e1bf8), @Controller("/api/v1/{tenant}/outputs").
_route("logs_get", KestraRouteSpec("GET", "logs/{execution_id}", SAFE))
_route("logs_download", KestraRouteSpec("GET", "logs/{execution_id}/download", SAFE))
# Log search (LogController#searchLogs, kestra-io/kestra@0034d67e): filters[executionId] and
# filters[startDate] (QueryFilter LOG fields) on generations 1 and 2; a server that still ignores them is
# caught by the hooks (any line of another execution). Not for 0.22, where the hooks read the whole log
# with logs_get: its search takes no executionId, so it would answer other executions' lines unfiltered.
ROUTES["logs_search"] = {
    version: KestraRouteSpec("GET", "logs/search", SAFE)
    for version in (KestraApiVersion.V1, KestraApiVersion.V2)
}
ROUTES["outputs_flow"] = {
    KestraApiVersion.V2: KestraRouteSpec("GET", "outputs/executions/{execution_id}", SAFE)
}
ROUTES["outputs_list"] = {KestraApiVersion.V2: KestraRouteSpec("GET", "outputs/tasks/{execution_id}", SAFE)}
ROUTES["outputs_task_run"] = {
    KestraApiVersion.V2: KestraRouteSpec("GET", "outputs/tasks/{execution_id}/{task_run_id}", SAFE)
}

KestraActionLayout = Literal["actions", "plain"]
"""Where a 2.x server serves single-execution actions: ``/executions/{id}/actions/kill`` (``actions``)
or ``/executions/{id}/kill`` (``plain``)."""

ACTION_ROUTES: frozenset[str] = frozenset({"execution_kill", "execution_restart", "execution_resume"})
"""The routes whose 2.x path depends on the action layout."""


def other_layout(layout: KestraActionLayout) -> KestraActionLayout:
    """The layout to try when a server does not know ``layout``'s path."""
    return "plain" if layout == "actions" else "actions"


def has_route(name: str, version: KestraApiVersion) -> bool:
    """Whether the server generation offers this route (e.g. ``outputs_list`` is 2.x only)."""
    return version in ROUTES.get(name, {})


def resolve_route(
    name: str,
    version: KestraApiVersion,
    tenant: str,
    *,
    layout: KestraActionLayout = "actions",
    **params: str,
) -> KestraRoute:
    """The method, URL path (from ``/api/v1``) and retry mode of a route; path parameters are URL-quoted.

    ``layout`` chooses the path of a 2.x single-execution action (:data:`ACTION_ROUTES`).
    """
    try:
        spec = ROUTES[name][version]
    except KeyError:
        raise ValueError(f"Kestra API {version.value} has no route {name!r}") from None
    if layout == "plain" and name in ACTION_ROUTES:
        spec = ROUTES[name][KestraApiVersion.V1]
    path = spec.template.format(**{key: quote(str(value), safe="") for key, value in params.items()})
    if spec.tenant and version is not KestraApiVersion.V0_22:
        prefix = f"/api/v1/{quote(tenant, safe='')}/"
    else:
        prefix = "/api/v1/"
    return KestraRoute(name=name, method=spec.method, path=prefix + path, retry=spec.retry)
