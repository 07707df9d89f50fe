"""A tiny requests-based client used by the simulator behaviour tests (talks raw HTTP on purpose)."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.simulator import KestraSimulator

TERMINAL = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED")
YAML = {"Content-Type": "application/x-yaml"}


def unique(prefix: str = "f") -> str:
    """A fresh flow id."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class SimClient:
    """Raw HTTP access to one simulator tenant."""

    def __init__(self, sim: KestraSimulator, tenant: str = "main", token: str | None = None) -> None:
        self.sim = sim
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.auth = (sim.username, sim.password)
        self.root = sim.url + "/api/v1"
        self.base = self.root + (f"/{tenant}" if sim.profile.tenant_in_path else "")

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=30, **kwargs)

    def deploy(self, source: str) -> dict[str, Any]:
        response = self.request("POST", "/flows", data=source, headers=YAML)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def run(
        self,
        namespace: str,
        flow_id: str,
        inputs: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        files = {k: (None, v) if not isinstance(v, tuple) else v for k, v in (inputs or {}).items()}
        response = self.request(
            "POST",
            f"/executions/{namespace}/{flow_id}",
            files=files or None,
            params={"labels": labels or [], **params},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def get(self, execution_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/executions/{execution_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(
        self, execution_id: str, states: tuple[str, ...] = TERMINAL, limit: float = 20.0
    ) -> dict[str, Any]:
        """Poll until the execution reaches one of ``states`` (a safety limit, not a timing assertion)."""
        end = time.monotonic() + limit
        while True:
            execution = self.get(execution_id)
            if execution["state"]["current"] in states or time.monotonic() > end:
                return execution
            time.sleep(0.01)

    def follow(self, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
        """All SSE frames of an execution follow stream, until the server closes it."""
        response = self.request("GET", f"/executions/{execution_id}/follow", stream=True)
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_sse(response.iter_lines(decode_unicode=True))


def parse_sse(lines: Any, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(id, data) pairs from SSE lines; fails on an ``event:`` field, which Kestra never sends."""
    frames: list[tuple[str, dict[str, Any]]] = []
    current_id = ""
    for line in lines:
        if line is None:
            continue
        assert not line.startswith("event:"), line
        if line.startswith("id: "):
            current_id = line[4:]
        elif line.startswith("data: "):
            frames.append((current_id, json.loads(line[6:])))
            if limit is not None and len(frames) >= limit:
                break
    return frames


def flow_source(flow_id: str, tasks: str, namespace: str = "company.team", extra: str = "") -> str:
    """A flow YAML document with the given (already indented) task list."""
    return f"id: {flow_id}\nnamespace: {namespace}\n{extra}tasks:\n{tasks}"


def return_task(task_id: str = "ret", value: str = "ok") -> str:
    return f'  - id: {task_id}\n    type: io.kestra.plugin.core.debug.Return\n    format: "{value}"\n'


def sleep_task(task_id: str = "nap", duration: str = "PT30S") -> str:
    return f"  - id: {task_id}\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: {duration}\n"
