"""Spec-shaped Kestra response bodies for the hook tests.

Bodies follow the schemas of the OpenAPI specs in ../shared/kestra-openapi (``Execution``/``ApiExecution``,
``TaskRun``, ``State``, ``LogEntry``, ``FlowWithSource``, ``ValidateConstraintViolation``, ``PagedResults``).
"""

from __future__ import annotations

from typing import Any

BASE = "http://kestra.test:8080"
PASSWORD = "S3cret-Pa55word"
TOKEN = "tok-very-secret-123"
CONN_URI = f"kestra://admin%40kestra.io:{PASSWORD}@kestra.test:8080"


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
    task_id: str, run_id: str, outputs: dict[str, Any] | None, value: str | None = None
) -> dict[str, Any]:
    run: dict[str, Any] = {
        "tenantId": "main",
        "id": run_id,
        "executionId": "4wjtkzwVGBM9yKnjm3yv8r",
        "namespace": "company.team",
        "flowId": "hello",
        "taskId": task_id,
        "attempts": [{"state": state("SUCCESS"), "workerId": "w1"}],
        "outputs": outputs,
        "state": state("SUCCESS"),
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
    execution_id: str = "4wjtkzwVGBM9yKnjm3yv8r",
    outputs: dict[str, Any] | None = None,
    task_runs: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    from airflow_provider_kestra.utils.state import is_terminal

    body: dict[str, Any] = {
        "tenantId": "main",
        "id": execution_id,
        "namespace": "company.team",
        "flowId": "hello",
        "flowRevision": 2,
        "labels": [{"key": "system.correlationId", "value": execution_id}]
        + [{"key": k, "value": v} for k, v in (labels or {}).items()],
        "state": state(current, terminal=is_terminal(current) or current == "PAUSED"),
        "originalId": execution_id,
        "deleted": False,
        "metadata": {"attemptNumber": 1, "originalCreatedDate": iso(0)},
        "kind": "NORMAL",
        "trigger": None,
    }
    del body["trigger"]
    if task_runs is not None:
        body["taskRunList"] = task_runs
    if outputs:
        body["outputs"] = outputs
    return body


def paged(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"results": results, "total": len(results)}


def log_entry(second: int, message: str, *, level: str = "INFO", nanos: str = "228074635") -> dict[str, Any]:
    return {
        "tenantId": "main",
        "namespace": "company.team",
        "flowId": "hello",
        "taskId": "hello",
        "executionId": "4wjtkzwVGBM9yKnjm3yv8r",
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
