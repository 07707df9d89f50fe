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


# ------------------------------------------------------------- connection settings, once per process
class Lookups:
    """The connection lookups made (``aget_connection`` replaced), and the settings cache's clock."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.now = 0.0


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Lookups:
    import asyncio

    from airflow_provider_kestra.hooks import kestra_async

    made = Lookups()

    class Conn:
        host, schema, port, login, password = "http://kestra.test:8080", None, None, None, None

        def __init__(self, api_version: str) -> None:
            self.extra_dejson = {"api_version": api_version}

    async def aget_connection(cls: Any, conn_id: str) -> Any:
        made.ids.append(conn_id)
        await asyncio.sleep(0)
        return Conn("banana" if conn_id == "broken" else "1")

    monkeypatch.setattr(KestraAsyncHook, "aget_connection", classmethod(aget_connection), raising=False)
    monkeypatch.setattr(kestra_async.CONNECTION_SETTINGS, "_clock", lambda: made.now)
    return made


async def test_hooks_starting_together_look_the_connection_up_once(lookups: Lookups) -> None:
    import asyncio

    hooks = [KestraAsyncHook() for _ in range(50)]
    settings = await asyncio.gather(*(hook.settings() for hook in hooks))
    assert lookups.ids == ["kestra_default"] and len({id(s) for s in settings}) == 1
    lookups.now += 29
    await KestraAsyncHook().settings()
    assert len(lookups.ids) == 1
    lookups.now += 1
    await KestraAsyncHook().settings()
    assert len(lookups.ids) == 2, "an edited connection is seen by hooks made 30 s later"


async def test_a_connection_that_cannot_be_used_is_not_stored(lookups: Lookups) -> None:
    from airflow_provider_kestra.exceptions import KestraConfigError

    for _ in range(2):
        with pytest.raises(KestraConfigError, match="api_version"):
            await KestraAsyncHook("broken").settings()
    assert lookups.ids == ["broken", "broken"]
