"""The distributed end-to-end suite: Airflow with CeleryExecutor, Redis and PostgreSQL (see
``kestra_distributed_stack.py``). Skipped unless ``KESTRA_DISTRIBUTED=1``; ``bash scripts/run-distributed.sh``
prepares the machine and the ``.venv/af33-celery`` virtualenv, then runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "distributed: Airflow with CeleryExecutor, Redis, PostgreSQL, 2 workers and 2 triggerers"
    )
