"""Fixtures for the operator unit tests: a hook double and a connection pinned to API version 1.

``kestra_conn`` and ``std_log`` are the shared fixtures of ``tests/support/fixtures.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from support.airflow_doubles import hook_double
from support.kestra_payloads import CONN_URI_V1

if TYPE_CHECKING:
    from unittest import mock


@pytest.fixture
def kestra_conn_uri() -> str:
    """The end-to-end operator tests mock no ``/api/v1/configs``: pin the API version."""
    return CONN_URI_V1


@pytest.fixture
def hook() -> mock.MagicMock:
    """A KestraHook double with the real signatures; unconfigured calls return MagicMocks."""
    return hook_double()
