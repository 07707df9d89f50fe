"""``OutputController`` routes of the 2.0 line (kestra-io/kestra ``webserver/.../controllers/api/
OutputController.java`` @159e1bf8): task outputs left the task runs and are read here.

* ``GET /outputs/executions/{executionId}``: the flow-level outputs, a map;
* ``GET /outputs/tasks/{executionId}``: ``TaskOutputInformation[]`` ``{taskId, taskRunId, value, iteration,
  inline}``, one per task run that stored outputs;
* ``GET /outputs/tasks/{executionId}/{taskRunId}``: that task run's outputs, a map.

An unknown execution or task run is ``NotFoundException`` (404 without detail). The EE 2.0 spec's
``/outputs/{executionId}[/{taskRunId}]`` predate 2.0 as shipped and are not served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_kestra.testing.http.views import json_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from airflow_provider_kestra.testing.context import KestraSimContext


async def execution_outputs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /outputs/executions/{executionId}``."""
    return json_response(ctx.backend.flow_outputs(tenant, request.path_params["executionId"]))


async def task_outputs_information(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /outputs/tasks/{executionId}``."""
    return json_response(ctx.backend.task_outputs_information(tenant, request.path_params["executionId"]))


async def task_run_outputs(ctx: KestraSimContext, request: Request, tenant: str) -> Response:
    """``GET /outputs/tasks/{executionId}/{taskRunId}``."""
    params = request.path_params
    return json_response(ctx.backend.task_run_outputs(tenant, params["executionId"], params["taskRunId"]))
