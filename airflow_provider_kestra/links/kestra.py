"""The "Kestra execution" button: opens the Kestra UI page of the execution a task runs or watches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS, BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_kestra.version_compat import BaseOperator

EXECUTION_ID_XCOM_KEY = "execution_id"
EXECUTION_URL_XCOM_KEY = "execution_url"


class KestraExecutionLink(BaseOperatorLink):
    """Link to the Kestra execution whose UI URL the task pushed to XCom under ``execution_url``."""

    name = "Kestra execution"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Read the URL the task pushed; empty (no button target) until the execution exists."""
        if AIRFLOW_V_3_0_PLUS:
            from airflow.sdk.execution_time.xcom import XCom
        else:
            from airflow.models.xcom import XCom  # type: ignore[no-redef]
        url: Any = XCom.get_value(ti_key=ti_key, key=EXECUTION_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""


def push_execution_link(context: Context, execution_id: str, url: str) -> None:
    """Push the execution id and UI URL to XCom so the button works while the task still waits.

    Airflow 3 renders extra links from an XCom the worker writes when the task ends; writing it now too
    makes the button usable during a long (or deferred) wait.
    """
    ti = context["ti"]
    ti.xcom_push(key=EXECUTION_ID_XCOM_KEY, value=execution_id)
    ti.xcom_push(key=EXECUTION_URL_XCOM_KEY, value=url)
    if AIRFLOW_V_3_0_PLUS:
        ti.xcom_push(key=KestraExecutionLink().xcom_key, value=url)
