"""KestraAsyncHook specifics (the scenarios it shares with KestraHook are in test_hook_kestra_transports.py):
its httpx client's life cycle and the detection of the server's API generation without blocking."""

from __future__ import annotations

from typing import Any

import pytest
import respx
from support.kestra_payloads import BASE, execution

from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"
API = f"{BASE}/api/v1/main"


@pytest.fixture(params=["1.3.25", "2.0.0-SNAPSHOT"], ids=["kestra1", "kestra2"])
def router(request: pytest.FixtureRequest, kestra_conn: str) -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{BASE}/api/v1/configs").respond(json={"version": request.param, "edition": "OSS"})
        mock.v2 = request.param.startswith("2")  # type: ignore[attr-defined]
        yield mock


async def test_server_info_is_read_once(router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution())
    async with KestraAsyncHook() as hook:
        await hook.get_execution(EXEC_ID)
        info = await hook.server_info()
        assert info["api_version"] == ("2" if router.v2 else "1") and info["edition"] == "OSS"
        assert await hook.api_version() is await hook.api_version()
    assert router.calls.call_count == 2


async def test_aclose_and_reuse(router: Any) -> None:
    router.get(f"{API}/executions/{EXEC_ID}").respond(json=execution())
    hook = KestraAsyncHook()
    await hook.get_execution(EXEC_ID)
    await hook.aclose()
    await hook.aclose()
    assert (await hook.get_execution(EXEC_ID))["id"] == EXEC_ID
    await hook.aclose()
