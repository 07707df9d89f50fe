"""pytest plugin: a ``kestra_simulator`` fixture (one fresh simulator per test).

Enable with ``pytest_plugins = ["airflow_provider_kestra.testing.pytest_plugin"]``. Options come from the
``kestra_simulator_options`` fixture (override it, or use indirect parametrization):

    @pytest.mark.parametrize("kestra_simulator", [{"kestra_version": "2.0"}], indirect=True)
    def test_x(kestra_simulator): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing.simulator import KestraSimulator


@pytest.fixture
def kestra_simulator_options() -> dict[str, Any]:
    """Keyword arguments for :class:`KestraSimulator`; override to change the default profile."""
    return {}


@pytest.fixture
def kestra_simulator(
    request: pytest.FixtureRequest, kestra_simulator_options: dict[str, Any]
) -> Iterator[KestraSimulator]:
    """A running Kestra simulator, stopped after the test."""
    from airflow_provider_kestra.testing.simulator import KestraSimulator

    options = {**kestra_simulator_options, **getattr(request, "param", {})}
    with KestraSimulator(**options) as simulator:
        yield simulator
