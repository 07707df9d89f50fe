"""Fixtures of the conformance suite: one cached spec per file, one simulator per profile, checking clients.

Every simulator here is session-scoped (starting one per test would cost more than the tests), so tests
isolate themselves with a namespace of their own (``namespace`` fixture) instead of a fresh server.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import httpx
import pytest

try:
    from kestra_conformance_harness import (
        EE_TENANTS,
        EE_TOKEN,
        PROFILE_0_22,
        PROFILE_1_3,
        PROFILE_1_3_EE,
        PROFILE_2_0,
        SPEC_FILES,
        KestraConformanceClient,
        KestraProfile,
        KestraSpec,
        kestra_spec_dir,
        load_kestra_spec,
    )
except ImportError:  # no openapi-core (the Airflow 2.11 environment): the suite cannot run, collect nothing
    collect_ignore_glob = ["test_*.py"]

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from airflow_provider_kestra.testing import KestraSimulator

_namespaces = itertools.count(1)


def _spec(name: str) -> KestraSpec:
    if not (kestra_spec_dir() / SPEC_FILES[name]).is_file():
        pytest.skip(
            f"Kestra OpenAPI spec {SPEC_FILES[name]} not found in {kestra_spec_dir()} (KESTRA_OPENAPI_DIR)"
        )
    return load_kestra_spec(name)


@pytest.fixture(scope="session")
def spec_oss_1_3() -> KestraSpec:
    """Kestra OSS 1.3.25 ``openapi.yml`` (judges profiles 1.3 and, without the tenant segment, 0.22)."""
    return _spec("oss-1.3.25")


@pytest.fixture(scope="session")
def spec_ee_1_3() -> KestraSpec:
    """Kestra EE 1.3.0 spec from client-sdk (judges the 1.3 EE mode: bearer tokens, other tenants)."""
    return _spec("ee-1.3.0")


@pytest.fixture(scope="session")
def spec_ee_2_0() -> KestraSpec:
    """Kestra EE 2.0.0-SNAPSHOT spec from client-sdk (judges profile 2.0)."""
    return _spec("ee-2.0")


def _simulator(**options: object) -> Iterator[KestraSimulator]:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(follow_missing_timeout=0.5, **options) as simulator:  # type: ignore[arg-type]
        yield simulator


@pytest.fixture(scope="session")
def simulator_1_3() -> Iterator[KestraSimulator]:
    yield from _simulator(kestra_version="1.3")


@pytest.fixture(scope="session")
def simulator_1_3_ee() -> Iterator[KestraSimulator]:
    yield from _simulator(kestra_version="1.3", edition="EE", tokens=(EE_TOKEN,), tenants=EE_TENANTS)


@pytest.fixture(scope="session")
def simulator_2_0() -> Iterator[KestraSimulator]:
    yield from _simulator(kestra_version="2.0")


@pytest.fixture(scope="session")
def simulator_0_22() -> Iterator[KestraSimulator]:
    yield from _simulator(kestra_version="0.22")


def _client(
    simulator: KestraSimulator, profile: KestraProfile, spec: KestraSpec, auth: httpx.Auth | None = None
) -> Iterator[KestraConformanceClient]:
    with httpx.Client(
        base_url=simulator.url,
        auth=auth or httpx.BasicAuth(simulator.username, simulator.password),
        timeout=30.0,
    ) as http:
        yield KestraConformanceClient(http=http, profile=profile, spec=spec)


@pytest.fixture(scope="session")
def api_1_3(simulator_1_3: KestraSimulator, spec_oss_1_3: KestraSpec) -> Iterator[KestraConformanceClient]:
    yield from _client(simulator_1_3, PROFILE_1_3, spec_oss_1_3)


@pytest.fixture(scope="session")
def api_1_3_ee(
    simulator_1_3_ee: KestraSimulator, spec_ee_1_3: KestraSpec, spec_oss_1_3: KestraSpec
) -> Iterator[KestraConformanceClient]:
    """The EE 1.3 simulator with a bearer token; what the EE 1.3.0 spec lacks is judged by OSS 1.3.25."""

    class _Bearer(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            request.headers["Authorization"] = f"Bearer {EE_TOKEN}"
            yield request

    for client in _client(simulator_1_3_ee, PROFILE_1_3_EE, spec_ee_1_3, auth=_Bearer()):
        client.fallback_spec = spec_oss_1_3
        yield client


@pytest.fixture(scope="session")
def api_2_0(simulator_2_0: KestraSimulator, spec_ee_2_0: KestraSpec) -> Iterator[KestraConformanceClient]:
    yield from _client(simulator_2_0, PROFILE_2_0, spec_ee_2_0)


@pytest.fixture(scope="session")
def api_0_22(simulator_0_22: KestraSimulator, spec_oss_1_3: KestraSpec) -> Iterator[KestraConformanceClient]:
    yield from _client(simulator_0_22, PROFILE_0_22, spec_oss_1_3)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so session-scoped simulators need no cleanup between tests."""
    return f"conformance.n{next(_namespaces)}"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Run the route-coverage test after every other test (it reads what they validated)."""
    items.sort(key=lambda item: item.path.name == "test_conformance_coverage.py")
