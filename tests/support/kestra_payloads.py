"""Spec-shaped Kestra bodies for every unit test: executions, task runs, states, logs, flows, pages.

Bodies follow the schemas of the OpenAPI specs in ../shared/kestra-openapi (``Execution``/``ApiExecution``,
``TaskRun``, ``State``, ``LogEntry``, ``FlowWithSource``, ``ValidateConstraintViolation``, ``PagedResults``).
One :func:`execution` serves Kestra 1.x and 2.x: its body validates as 1.3's ``Execution`` and as 2.0's
``ApiExecution``; without ``task_runs`` it is also 2.0's light search result (``ApiLightExecution``).
``tests/unit/hooks/test_hook_kestra_payloads.py`` checks that against the specs.

The constants name one test server: ``BASE`` (host), ``API`` (tenant ``main``), ``UI`` (execution pages),
and one connection with one password: ``CONN_URI`` lets the hook detect the API version from
``/api/v1/configs``; ``CONN_URI_V1`` pins version 1 so nothing asks for ``/configs``.
"""

from __future__ import annotations

from typing import Any

BASE = "http://kestra.test:8080"
API = f"{BASE}/api/v1/main"
UI = f"{BASE}/ui/main/executions/company.team/hello/"
PASSWORD = "S3cret-Pa55word"
TOKEN = "tok-very-secret-123"
CONN_URI = f"kestra://admin%40kestra.io:{PASSWORD}@kestra.test:8080"
CONN_URI_V1 = f"{CONN_URI}?api_version=1"
EXECUTION_ID = "4wjtkzwVGBM9yKnjm3yv8r"
NAMESPACE = "company.team"
FLOW_ID = "hello"


def iso(second: int, nanos: str = "228074635") -> str:
    return f"2026-11-22T10:00:{second:02d}.{nanos}Z"


def state(current: str, *, terminal: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "current": current,
        "histories": [
            {"state": "CREATED", "date": iso(0)},
            {"state": "RUNNING", "date": iso(1)},
        ],
        "startDate": iso(0),
    }
    if terminal:
        body["histories"].append({"state": current, "date": iso(3)})
        body["endDate"] = iso(3)
        body["duration"] = "PT3S"
    return body


def task_run(
    task_id: str,
    run_id: str = "5h8DJKAq2vC4jBcd2U6T3X",
    outputs: dict[str, Any] | None = None,
    value: str | None = None,
    *,
    current: str = "SUCCESS",
    execution_id: str = EXECUTION_ID,
) -> dict[str, Any]:
    """A ``TaskRun``; ``value`` makes it one iteration of a ``ForEach`` (with a parent task run)."""
    from airflow_provider_kestra.utils.state import is_terminal

    terminal = is_terminal(current)
    run: dict[str, Any] = {
        "tenantId": "main",
        "id": run_id,
        "executionId": execution_id,
        "namespace": NAMESPACE,
        "flowId": FLOW_ID,
        "taskId": task_id,
        "attempts": [{"state": state(current, terminal=terminal), "workerId": "w1"}],
        "outputs": outputs,
        "state": state(current, terminal=terminal),
        "iteration": 0,
        "dynamic": False,
        "forceExecution": False,
    }
    if value is not None:
        run["value"] = value
        run["parentTaskRunId"] = "parentRun"
    return run


def execution(
    current: str = "SUCCESS",
    *,
    execution_id: str = EXECUTION_ID,
    namespace: str = NAMESPACE,
    flow_id: str = FLOW_ID,
    outputs: dict[str, Any] | None = None,
    task_runs: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An execution in state ``current``, as Kestra (and so the hook) returns it.

    ``labels`` come after the ``system.correlationId`` label Kestra adds; ``task_runs`` (a list, even
    empty) adds ``taskRunList``; ``extra`` sets any other top-level field as given.
    """
    from airflow_provider_kestra.utils.state import is_terminal

    body: dict[str, Any] = {
        "tenantId": "main",
        "id": execution_id,
        "namespace": namespace,
        "flowId": flow_id,
        "flowRevision": 2,
        "labels": [{"key": "system.correlationId", "value": execution_id}]
        + [{"key": k, "value": v} for k, v in (labels or {}).items()],
        "state": state(current, terminal=is_terminal(current) or current == "PAUSED"),
        "originalId": execution_id,
        "deleted": False,
        "metadata": {"attemptNumber": 1, "originalCreatedDate": iso(0)},
        "kind": "NORMAL",
    }
    if task_runs is not None:
        body["taskRunList"] = task_runs
    if outputs:
        body["outputs"] = outputs
    body.update(extra)
    return body


def paged(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"results": results, "total": len(results)}


def log_entry(second: int, message: str, *, level: str = "INFO", nanos: str = "228074635") -> dict[str, Any]:
    return {
        "tenantId": "main",
        "namespace": "company.team",
        "flowId": "hello",
        "taskId": "hello",
        "executionId": EXECUTION_ID,
        "taskRunId": "5h8DJKAq2vC4jBcd2U6T3X",
        "attemptNumber": 0,
        "timestamp": iso(second, nanos),
        "level": level,
        "thread": "WorkerThread",
        "message": message,
        "executionKind": "NORMAL",
    }


FLOW_SOURCE = """id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }}"
"""


def flow_with_source(
    source: str = FLOW_SOURCE, *, revision: int = 1, flow_id: str = "hello"
) -> dict[str, Any]:
    return {
        "id": flow_id,
        "namespace": "company.team",
        "revision": revision,
        "disabled": False,
        "deleted": False,
        "tasks": [
            {"id": "hello", "type": "io.kestra.plugin.core.log.Log", "message": "Hello {{ inputs.name }}"}
        ],
        "source": source,
    }


def violation(index: int, flow: str, constraints: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": index,
        "namespace": "company.team",
        "flow": flow,
        "outdated": False,
        "deprecationPaths": [],
        "warnings": [],
        "infos": [],
    }
    if constraints is not None:
        body["constraints"] = constraints
    return body
