"""Per-version wire differences of the Kestra API that the simulator reproduces.

Each profile names one Kestra line the provider supports ("0.22", "1.3", "2.0"). The backend, the routes
and the response builders consult named flags of the profile and never compare version strings, so every
difference between Kestra lines lives here, in one place (``tests/unit/testing/test_simulator_layers.py``
fails on a ``profile.name == ...`` anywhere else).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class KestraSimulatorProfile:
    """What one Kestra line looks like on the wire."""

    name: str
    #: Version reported by ``/api/v1/configs``; a real-looking semver so clients can parse it.
    version: str
    #: ``/api/v1/{tenant}/...`` (0.23+) or ``/api/v1/...`` (0.22 and older).
    tenant_in_path: bool
    #: Execution actions live under ``/executions/{id}/actions/...`` (2.0) or directly under ``{id}`` (1.x).
    actions_under_actions: bool
    #: Errors are RFC 9457 problem+json (2.0) instead of Micronaut JsonError (1.x, 0.x).
    problem_json: bool
    #: ``GET /api/v1/configs`` answers without credentials (1.x only).
    configs_open: bool
    #: ``/api/v1/configs`` carries ``edition`` (1.x+) or the 0.2x field set.
    configs_has_edition: bool
    #: Status for creating a flow that already exists: 422 (1.x) or 409 (2.0 AlreadyExistsException).
    duplicate_flow_status: int
    #: Status of ``IllegalStateException``: 409 (1.x) or 500 (2.0 leaves it unmapped).
    illegal_state_status: int
    #: ``taskRunList[].outputs`` is serialized (1.x) or dropped in favour of ``/outputs`` endpoints (2.0).
    task_run_outputs: bool
    #: Kill/resume/labels/restart... answer ``200 Execution`` (2.0) instead of 202/204 empty (1.x).
    actions_return_execution: bool
    #: Log follow starts with an empty ``start`` LogEntry (1.x) or not (0.2x).
    log_follow_start_event: bool
    #: Execution follow starts with the ``start`` stub (0.21+; all supported lines).
    follow_start_event: bool
    #: Execution bodies carry ``deleted`` (1.x); 2.0 ``ApiExecution`` does not.
    execution_has_deleted: bool
    #: Logs search answers CursorOrOffsetPagedResults (2.0) or PagedResults (1.x).
    logs_search_cursor: bool
    #: API-created executions get the label ``system.from=api`` (1.x+; not in 0.2x).
    system_from_label: bool
    #: ``GET /executions/search`` answers light executions without task runs (2.0 ``ApiLightExecution``).
    search_returns_light: bool
    #: ``GET /executions/{id}`` task runs are 2.0 ``ApiTaskRun``s: no tenantId/executionId/namespace/flowId.
    api_task_runs: bool
    #: Output routes: ``""`` (none: outputs live in task runs) or ``"split"`` (2.0 ``OutputController``:
    #: ``/outputs/executions/{id}``, ``/outputs/tasks/{id}``, ``/outputs/tasks/{id}/{taskRunId}``).
    output_routes: str
    #: Refusals that Kestra 2.0 raises as ``ConflictException`` (409 ``conflict``, new wording): kill of a
    #: terminated execution without cascade, restart of a non-restartable one, pause of a non-running one,
    #: webhook on a disabled flow. 1.x raises IllegalState (409) / IllegalArgument (422 for pause).
    conflict_refusals: bool
    #: Single-execution actions are commands awaited through the executor (2.0 ``awaitBlockingAction``):
    #: executor-side failures answer 409 ``Failed to execute action ...``, a timeout 504, and the answer
    #: is the execution re-read by the requested id.
    awaited_actions: bool
    #: 404 answers carry ``X-Kestra-Edition`` and ``X-Kestra-Route-Matched`` (2.0 ``NotFoundHeadersFilter``),
    #: which tell "no such route" from "no such entity".
    not_found_headers: bool
    #: ``Property<T>`` fields (input ``defaults``/``prefill``, plugin properties) are written as their
    #: expression string (``PropertySerializer``, 1.x+); 0.2x inputs kept typed ``T defaults``.
    property_as_string: bool
    #: Realm of the ``WWW-Authenticate`` challenge (0.2x ``Basic realm="Kestra"``), None for a bare ``Basic``.
    basic_realm: str | None
    #: Cookie-authenticated writes need an ``X-CSRF-TOKEN`` header (2.0 line); header auth is exempt.
    csrf_for_cookie_auth: bool
    #: ``GET /api/v1/configs/login`` exists and is open (2.0 line: ``{isBasicAuthInitialized}``).
    configs_login_route: bool
    #: OSS retries a request that matched no route with ``/api/v1/main`` (``TenantAliasingRooter``, 0.23-1.x).
    tenant_alias: bool
    #: Flows carry ``updated`` (1.x+).
    flow_has_updated: bool
    #: Flows carry ``draft`` (2.0 line).
    flow_has_draft: bool
    #: JSON data of the log follow ``start`` event: an empty LogEntry (1.x: ``attemptNumber`` is always
    #: included) or an empty ``FollowLogEvent`` (2.0). Only sent when ``log_follow_start_event``.
    log_follow_start_payload: str
    #: Fraction digits of a LogEntry ``timestamp``: 3 (0.2x ``RunContextLogger``:
    #: ``Instant.ofEpochMilli(event.getTimeStamp())``) or 6 (1.x+: ``event.getInstant()``, a logback
    #: ``Instant.now()``, microseconds on Linux). Lines logged within one such unit share a timestamp.
    log_timestamp_digits: int
    #: ``GET /logs/search`` goes through ``RequestUtils.getFiltersOrDefaultToLegacyMapping`` and
    #: ``AbstractJdbcLogRepository.find(pageable, tenant, filters)`` (1.x+): the deprecated parameters count
    #: only without any ``filters[...]``, legacy ``startDate``/``endDate`` are exclusive (``GREATER_THAN``/
    #: ``LESS_THAN``), results are newest first whatever ``sort`` says. 0.2x: the parameters go straight
    #: to SQL, ``startDate``/``endDate`` inclusive, ``sort`` applied (no default order).
    logs_search_query_filters: bool


_KESTRA_0_22 = KestraSimulatorProfile(
    name="0.22",
    version="0.22.6",
    tenant_in_path=False,
    actions_under_actions=False,
    problem_json=False,
    configs_open=False,
    configs_has_edition=False,
    duplicate_flow_status=422,
    illegal_state_status=409,
    task_run_outputs=True,
    actions_return_execution=False,
    log_follow_start_event=False,
    follow_start_event=True,
    execution_has_deleted=True,
    logs_search_cursor=False,
    system_from_label=False,
    search_returns_light=False,
    basic_realm="Kestra",
    csrf_for_cookie_auth=False,
    configs_login_route=False,
    tenant_alias=False,
    flow_has_updated=False,
    flow_has_draft=False,
    log_follow_start_payload='{"attemptNumber":null}',
    log_timestamp_digits=3,
    logs_search_query_filters=False,
    api_task_runs=False,
    output_routes="",
    conflict_refusals=False,
    awaited_actions=False,
    not_found_headers=False,
    property_as_string=False,
)
# Each later line is written as what changed since the previous one.
_KESTRA_1_3 = replace(
    _KESTRA_0_22,
    name="1.3",
    version="1.3.25",
    tenant_in_path=True,
    configs_open=True,
    configs_has_edition=True,
    log_follow_start_event=True,
    system_from_label=True,
    basic_realm=None,
    tenant_alias=True,
    flow_has_updated=True,
    property_as_string=True,
    log_timestamp_digits=6,
    logs_search_query_filters=True,
)
_KESTRA_2_0 = replace(
    _KESTRA_1_3,
    name="2.0",
    version="2.0.0",
    actions_under_actions=True,
    problem_json=True,
    configs_open=False,
    duplicate_flow_status=409,
    illegal_state_status=500,
    task_run_outputs=False,
    actions_return_execution=True,
    execution_has_deleted=False,
    logs_search_cursor=True,
    search_returns_light=True,
    csrf_for_cookie_auth=True,
    configs_login_route=True,
    tenant_alias=False,
    flow_has_draft=True,
    log_follow_start_payload="{}",
    api_task_runs=True,
    output_routes="split",
    conflict_refusals=True,
    awaited_actions=True,
    not_found_headers=True,
)

PROFILES: dict[str, KestraSimulatorProfile] = {p.name: p for p in (_KESTRA_0_22, _KESTRA_1_3, _KESTRA_2_0)}


ACTION_ROUTES = ("actions", "plain")


def kestra_simulator_profile(kestra_version: str, action_routes: str | None = None) -> KestraSimulatorProfile:
    """The profile for ``"0.22"``, ``"1.3"`` or ``"2.0"`` (a full version like ``1.3.25`` works too).

    ``action_routes`` picks the 2.x action layout: ``"actions"`` (the default: ``/executions/{id}/actions/
    kill``..., as the EE 2.0 spec and kestrapy 2.x call them) or ``"plain"`` (``/executions/{id}/kill``...,
    as Kestra's open-source 2.0 ``ExecutionController`` serves them). Both 2.x servers exist, so a client
    must cope with both. Pre-2.0 lines only have the plain layout.
    """
    key = str(kestra_version).strip()
    if key not in PROFILES:
        key = ".".join(key.split(".")[:2])
    if key not in PROFILES:
        raise ValueError(
            f"Unsupported simulated Kestra version {kestra_version!r}; choose one of {sorted(PROFILES)}"
        )
    profile = PROFILES[key]
    if action_routes is None:
        return profile
    if action_routes not in ACTION_ROUTES:
        raise ValueError(f"action_routes must be one of {ACTION_ROUTES}, not {action_routes!r}")
    if action_routes == "actions" and not profile.awaited_actions:
        raise ValueError(f"Kestra {profile.name} has no /actions/ routes: action_routes='actions' needs 2.0")
    return replace(profile, actions_under_actions=action_routes == "actions")
