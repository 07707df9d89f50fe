"""Unit tests of the "Kestra execution" extra link."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from airflow_provider_kestra.links.kestra import KestraExecutionLink, push_execution_link
from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator
from airflow_provider_kestra.sensors.kestra import KestraExecutionSensor
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

XCOM_CLASS = "airflow.sdk.execution_time.xcom.XCom" if AIRFLOW_V_3_0_PLUS else "airflow.models.xcom.XCom"
URL = "http://kestra.test:8080/ui/main/executions/company.team/hello/ex1"


@pytest.mark.parametrize(("stored", "expected"), [(URL, URL), (None, "")])
def test_link_reads_the_execution_url_xcom(stored: Any, expected: Any) -> None:
    ti_key = mock.MagicMock()
    operator = KestraTriggerExecutionOperator(task_id="t", namespace="n", flow_id="f")
    with mock.patch(f"{XCOM_CLASS}.get_value", return_value=stored) as get_value:
        assert KestraExecutionLink().get_link(operator, ti_key=ti_key) == expected
    get_value.assert_called_once_with(ti_key=ti_key, key="execution_url")


def test_push_execution_link_publishes_id_url_and_the_link_itself() -> None:
    ti = mock.MagicMock()
    push_execution_link({"ti": ti}, "ex1", URL)
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in ti.xcom_push.call_args_list}
    assert pushed["execution_id"] == "ex1"
    assert pushed["execution_url"] == URL
    if AIRFLOW_V_3_0_PLUS:  # Airflow 3 renders links from this XCom; pushing it early shows it while waiting
        assert pushed[KestraExecutionLink().xcom_key] == URL


def test_operators_and_sensor_carry_the_link() -> None:
    sensor = KestraExecutionSensor(task_id="s", execution_id="ex1")
    for task in (KestraTriggerExecutionOperator(task_id="t", namespace="n", flow_id="f"), sensor):
        assert [link.name for link in task.operator_extra_links] == ["Kestra execution"]
