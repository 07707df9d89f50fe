"""Flow sources and small drivers shared by the conformance tests of every profile.

The flows use only task types the simulator runs and finish in well under a second, except ``sleeper``
(a long Sleep, only ever killed) and ``pauser`` (waits for a resume).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection

    from kestra_conformance_harness import KestraConformanceClient, SseFrame

TERMINAL_STATES = frozenset(
    {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"}
)

_FLOWS: dict[str, str] = {
    "hello": """
labels:
  team: data
variables:
  greeting: Hello
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "{{ vars.greeting }} {{ inputs.name }}"
  - id: result
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}"
outputs:
  - id: echoed
    type: STRING
    value: "{{ outputs.result.value }}"
""",
    "needs_input": """
inputs:
  - id: count
    type: INT
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.count }}"
""",
    "writer": """
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: conformance file content
    extension: .txt
""",
    "pauser": """
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed
""",
    "sleeper": """
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT10M
""",
    "failing": """
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: conformance failure
""",
    "hooked": """
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: webhook received
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: conformance-key
""",
}


def flow_source(kind: str, namespace: str, flow_id: str | None = None) -> str:
    """YAML of one of the flows above, with its id (default: the kind) and namespace."""
    return f"id: {flow_id or kind}\nnamespace: {namespace}\n" + _FLOWS[kind].lstrip("\n")


def deploy(
    api: KestraConformanceClient, kind: str, namespace: str, flow_id: str | None = None
) -> dict[str, Any]:
    """Create a flow (unchecked: the flow endpoints have tests of their own)."""
    response = api.send(
        "POST",
        "/api/v1/{tenant}/flows",
        content=flow_source(kind, namespace, flow_id),
        headers={"Content-Type": "application/x-yaml"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def deploy_for_path(api: KestraConformanceClient, kind: str, namespace: str) -> dict[str, str]:
    """Create flow ``kind`` and return the ``{namespace, id}`` path parameters that name it."""
    deploy(api, kind, namespace)
    return {"namespace": namespace, "id": kind}


def start(
    api: KestraConformanceClient, namespace: str, flow_id: str, *, wait: bool = False, **request: Any
) -> dict[str, Any]:
    """Create an execution (unchecked) and return its body."""
    if wait:
        request["params"] = {**request.get("params", {}), "wait": "true"}
    response = api.send(
        "POST",
        "/api/v1/{tenant}/executions/{namespace}/{id}",
        path={"namespace": namespace, "id": flow_id},
        **request,
    )
    assert response.status_code == 200, response.text
    return response.json()


def deploy_and_start(api: KestraConformanceClient, kind: str, namespace: str) -> dict[str, Any]:
    """Create flow ``kind`` and start an execution of it (both unchecked); return the new execution."""
    deploy(api, kind, namespace)
    return start(api, namespace, kind)


def wait_for_state(
    api: KestraConformanceClient,
    execution_id: str,
    states: Collection[str] = TERMINAL_STATES,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Poll ``GET /executions/{id}`` until its state is one of ``states``; fail with the last state seen."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.send(
            "GET", "/api/v1/{tenant}/executions/{executionId}", path={"executionId": execution_id}
        )
        assert response.status_code == 200, response.text
        execution: dict[str, Any] = response.json()
        if execution["state"]["current"] in states:
            return execution
        assert time.monotonic() < deadline, f"{execution_id} stuck in {execution['state']['current']}"
        time.sleep(0.05)


def run_until(
    api: KestraConformanceClient, kind: str, namespace: str, states: Collection[str] = TERMINAL_STATES
) -> dict[str, Any]:
    """Deploy ``kind``, run it and return the execution once its state is one of ``states``."""
    return wait_for_state(api, deploy_and_start(api, kind, namespace)["id"], states)


def run_to_end(api: KestraConformanceClient, kind: str, namespace: str) -> dict[str, Any]:
    """Deploy ``kind``, run it and return the terminal execution."""
    return run_until(api, kind, namespace)


def follow_hello_logs(api: KestraConformanceClient, namespace: str) -> list[SseFrame]:
    """Run ``hello`` to the end and follow its logs up to its ``Hello world`` line (checked against the
    spec); the log stream never ends by itself, so the line is where reading stops."""
    execution = run_to_end(api, "hello", namespace)
    return api.conform_stream(
        "/api/v1/{tenant}/logs/{executionId}/follow",
        path={"executionId": execution["id"]},
        stop=lambda frame: "Hello world" in frame.data,
        stub_start=True,
    )
