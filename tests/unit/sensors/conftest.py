"""Fixtures for the sensor unit tests: a Kestra hook double."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from support.airflow_doubles import hook_double

if TYPE_CHECKING:
    from unittest import mock


@pytest.fixture
def hook() -> mock.MagicMock:
    return hook_double()
