"""Fixtures for the Kestra hook tests: a case-sensitive requests mock, a hook per API shape, and
``transport``: one adapter that runs a scenario through both hooks (``kestra_conn`` is shared:
``tests/support/fixtures.py``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import requests_mock as requests_mock_module
import respx
from kestra_hook_transports import KestraTransport
from support.kestra_payloads import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture
def http() -> Iterator[requests_mock_module.Mocker]:
    with requests_mock_module.Mocker(case_sensitive=True) as mocker:
        yield mocker


@pytest.fixture(params=["1.3.25", "2.0.0-SNAPSHOT"], ids=["kestra1", "kestra2"])
def server_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hook(kestra_conn: str, http: requests_mock_module.Mocker, server_version: str) -> Any:
    """A hook against a mocked 1.x or 2.x server; sleeps are recorded, not slept."""
    from airflow_provider_kestra.hooks.kestra import KestraHook

    http.get(f"{BASE}/api/v1/configs", json={"version": server_version, "edition": "OSS", "uuid": "u1"})
    instance = KestraHook(retry_limit=3, retry_delay=0.5)
    instance.sleeps = []  # type: ignore[attr-defined]

    def sleep(seconds: float) -> None:  # recorded, not slept: the hook's clock moves on by that much
        instance.sleeps.append(seconds)  # type: ignore[attr-defined]

    instance._sleep = sleep  # type: ignore[method-assign]
    instance._clock = lambda: time.time() + sum(instance.sleeps)  # type: ignore[attr-defined]
    return instance


@pytest.fixture
def v2(server_version: str) -> bool:
    return server_version.startswith("2")


@pytest.fixture
def api(v2: bool) -> str:
    return f"{BASE}/api/v1/main"


@pytest.fixture
def kestra_version() -> str:
    """The version the mocked server reports (override with ``@pytest.mark.parametrize``)."""
    return "1.3.25"


@pytest.fixture(params=["sync", "async"])
async def transport(
    request: pytest.FixtureRequest, kestra_conn: str, kestra_version: str
) -> AsyncIterator[KestraTransport]:
    """Each scenario runs twice: through ``KestraHook`` (requests) and ``KestraAsyncHook`` (httpx)."""
    configs = {"version": kestra_version, "edition": "OSS"}
    if request.param == "sync":
        from airflow_provider_kestra.hooks.kestra import KestraHook

        with requests_mock_module.Mocker(case_sensitive=True) as mocker:
            mocker.get(f"{BASE}/api/v1/configs", json=configs)
            with KestraHook(retry_limit=2, retry_delay=0.5) as hook:
                yield KestraTransport("sync", hook, mocker)
        return
    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{BASE}/api/v1/configs").respond(json=configs)
        async with KestraAsyncHook(retry_limit=2, retry_delay=0.5) as ahook:
            yield KestraTransport("async", ahook, router)
