"""Airflow version gates and the few base classes whose import path moved in Airflow 3.

Keeping them here means every other module imports ``BaseHook`` & co. from one place and works on
Airflow 2.11 and 3.x alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow import __version__ as _airflow_version


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


AIRFLOW_VERSION: tuple[int, int, int] = _version_tuple(_airflow_version)
AIRFLOW_V_3_0_PLUS = AIRFLOW_VERSION >= (3, 0, 0)
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= (3, 3, 0)

if TYPE_CHECKING or AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, BaseSensorOperator
else:  # Airflow 2.11
    from airflow.hooks.base import BaseHook
    from airflow.models import BaseOperator, BaseOperatorLink
    from airflow.sensors.base import BaseSensorOperator

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
]
