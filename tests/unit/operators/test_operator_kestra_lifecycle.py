"""Unit tests of the lifecycle operators with a hook double: what each asks the hook, returns and pushes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from support.airflow_doubles import FakeTaskStateStore, make_ti, pushed, use_hook
from support.kestra_payloads import execution

from airflow_provider_kestra.exceptions import (
    KestraExecutionError,
    KestraExecutionStateError,
    KestraNotFoundError,
)
from airflow_provider_kestra.operators.kestra_lifecycle import (
    KestraDeleteExecutionOperator,
    KestraDeleteFlowOperator,
    KestraGetOutputsOperator,
    KestraRestartExecutionOperator,
    KestraWebhookTriggerOperator,
)

if TYPE_CHECKING:
    from unittest import mock


def _webhook(hook: mock.MagicMock, **kwargs: Any) -> KestraWebhookTriggerOperator:
    """A webhook operator for flow ``ns.f`` using the hook double."""
    return use_hook(KestraWebhookTriggerOperator(task_id="w", namespace="ns", flow_id="f", **kwargs), hook)


def _not_found() -> KestraNotFoundError:
    return KestraNotFoundError(status=404, method="DELETE", path="/x", kestra_message="Not Found")


# -------------------------------------------------------------------------------------------- restart
def test_restart_reads_the_flow_restarts_once_and_returns_outputs(hook: mock.MagicMock) -> None:
    hook.get_execution.side_effect = [
        execution("FAILED", execution_id="old"),
        execution("SUCCESS", execution_id="new"),
    ]
    hook.restart_to_execution.return_value = execution("RESTARTED", execution_id="new")
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="new")
    hook.get_outputs.return_value = {"outputs": {"x": 1}, "task_outputs": {}}
    op = use_hook(
        KestraRestartExecutionOperator(
            task_id="restart", execution_id="old", revision="3", stream_logs=False, find_timeout=5
        ),
        hook,
    )
    ti = make_ti()
    assert op.execute({"ti": ti}) == {"x": 1}
    hook.restart_to_execution.assert_called_once_with("old", revision=3, find_timeout=5.0)
    hook.create_execution.assert_not_called()
    assert (op.namespace, op.flow_id) == ("company.team", "hello")
    assert pushed(ti)["execution_id"] == "new"
    assert pushed(ti)["execution_state"] == "SUCCESS"


def test_restart_refuses_a_bad_revision_before_any_request(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("FAILED", execution_id="old")
    op = use_hook(KestraRestartExecutionOperator(task_id="r", execution_id="old", revision="latest"), hook)
    with pytest.raises(ValueError, match="revision must be an integer"):
        op.execute({"ti": make_ti()})
    hook.restart_to_execution.assert_not_called()


def test_restart_retry_follows_the_execution_the_earlier_try_restarted(hook: mock.MagicMock) -> None:
    """Airflow 3.3: the state store remembers the restarted execution; a running one is not restarted."""
    hook.get_execution.side_effect = [
        execution("FAILED", execution_id="old"),
        execution("RUNNING", execution_id="old"),
        execution("SUCCESS", execution_id="old"),
    ]
    hook.wait_for_execution.return_value = execution("SUCCESS", execution_id="old")
    store = FakeTaskStateStore({"kestra_execution": {"execution_id": "old", "airflow.first_try_number": 1}})
    op = use_hook(
        KestraRestartExecutionOperator(task_id="r", execution_id="old", stream_logs=False, retries=1), hook
    )
    op.execute({"ti": make_ti(try_number=2, max_tries=1), "task_state_store": store})
    hook.restart_to_execution.assert_not_called()
    hook.restart_execution.assert_not_called()


def test_restart_deferrable_defers_on_the_restarted_execution(hook: mock.MagicMock) -> None:
    from airflow.exceptions import TaskDeferred

    hook.get_execution.side_effect = [
        execution("FAILED", execution_id="old"),
        execution("RUNNING", execution_id="new"),
    ]
    hook.restart_to_execution.return_value = execution("RESTARTED", execution_id="new")
    op = use_hook(
        KestraRestartExecutionOperator(task_id="r", execution_id="old", revision=2, deferrable=True), hook
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": make_ti()})
    assert deferred.value.trigger.execution_id == "new"


@pytest.mark.parametrize("option", ["inputs", "labels", "restart_on_retry"])
def test_followers_refuse_create_options(option: str) -> None:
    with pytest.raises(TypeError, match="does not create executions"):
        KestraRestartExecutionOperator(task_id="r", execution_id="x", **{option: {}})


# -------------------------------------------------------------------------------------------- webhook
def test_webhook_needs_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one of webhook_key_conn_id or webhook_key_variable"):
        KestraWebhookTriggerOperator(task_id="w", namespace="ns", flow_id="f")
    with pytest.raises(ValueError, match="exactly one"):
        KestraWebhookTriggerOperator(
            task_id="w", namespace="ns", flow_id="f", webhook_key_conn_id="a", webhook_key_variable="b"
        )
    with pytest.raises(ValueError, match="method"):
        KestraWebhookTriggerOperator(
            task_id="w", namespace="ns", flow_id="f", webhook_key_variable="b", method="DELETE"
        )


def test_webhook_key_is_never_a_template_field_nor_an_attribute() -> None:
    op = KestraWebhookTriggerOperator(task_id="w", namespace="ns", flow_id="f", webhook_key_variable="v")
    assert set(op.template_fields) == {"namespace", "flow_id", "body", "output_files_dir"}
    assert not any("key" in field for field in op.template_fields)


def test_webhook_fires_with_the_key_from_a_variable_and_returns_the_id(
    hook: mock.MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_HOOK_KEY", "the-Secret-Key")
    hook.trigger_webhook.return_value = execution("CREATED", execution_id="wh1")
    op = _webhook(hook, webhook_key_variable="hook_key", body={"a": 1})
    masked: list[str] = []
    monkeypatch.setattr("airflow_provider_kestra.operators.kestra_lifecycle._mask", masked.append)
    ti = make_ti()
    assert op.execute({"ti": ti}) == "wh1"
    hook.trigger_webhook.assert_called_once_with("ns", "f", "the-Secret-Key", {"a": 1}, method="POST")
    assert masked == ["the-Secret-Key"]
    assert "the-Secret-Key" not in repr(pushed(ti)) and "the-Secret-Key" not in repr(vars(op))


def test_webhook_key_from_a_connection_password(
    hook: mock.MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HOOK_KEY", '{"conn_type": "generic", "password": "pw-key"}')
    hook.trigger_webhook.return_value = execution("CREATED", execution_id="wh1")
    op = _webhook(hook, webhook_key_conn_id="hook_key")
    op.execute({"ti": make_ti()})
    assert hook.trigger_webhook.call_args.args[2] == "pw-key"


def test_webhook_missing_key_fails_before_sending(hook: mock.MagicMock) -> None:
    op = _webhook(hook, webhook_key_variable="nope")
    with pytest.raises(ValueError, match="holds no webhook key"):
        op.execute({"ti": make_ti()})
    hook.trigger_webhook.assert_not_called()


def test_webhook_answer_without_execution_returns_none(
    hook: mock.MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_HOOK_KEY", "k")
    monkeypatch.setattr("airflow_provider_kestra.operators.kestra_lifecycle._mask", lambda _: None)
    hook.trigger_webhook.return_value = {"result": "outputs only"}
    op = _webhook(hook, webhook_key_variable="hook_key")
    assert op.execute({"ti": make_ti()}) is None


# -------------------------------------------------------------------------------------------- outputs
def test_get_outputs_returns_outputs_and_pushes_task_outputs(hook: mock.MagicMock) -> None:
    hook.get_execution.return_value = execution("WARNING", execution_id="ex9")
    hook.get_outputs.return_value = {"outputs": {"rows": 3}, "task_outputs": {"t": {"v": 1}}}
    op = use_hook(KestraGetOutputsOperator(task_id="o", execution_id="ex9", include_task_outputs=True), hook)
    ti = make_ti()
    assert op.execute({"ti": ti}) == {"rows": 3}
    assert pushed(ti)["task_outputs"] == {"t": {"v": 1}}
    assert pushed(ti)["execution_id"] == "ex9"


@pytest.mark.parametrize(
    ("state", "error"), [("RUNNING", KestraExecutionStateError), ("FAILED", KestraExecutionError)]
)
def test_get_outputs_refuses_unfinished_or_failed(hook: mock.MagicMock, state: str, error: type) -> None:
    hook.get_execution.return_value = execution(state, execution_id="ex9")
    op = use_hook(KestraGetOutputsOperator(task_id="o", execution_id="ex9"), hook)
    with pytest.raises(error):
        op.execute({"ti": make_ti()})
    op.on_kill()
    hook.kill_execution.assert_not_called()


# --------------------------------------------------------------------------------------------- delete
@pytest.mark.parametrize("gone", [False, True])
def test_delete_execution_passes_options_and_404_is_success(hook: mock.MagicMock, gone: bool) -> None:
    if gone:
        hook.delete_execution.side_effect = _not_found()
    op = use_hook(KestraDeleteExecutionOperator(task_id="d", execution_id="ex1", delete_metrics=False), hook)
    assert op.execute({"ti": make_ti()}) is (not gone)
    hook.delete_execution.assert_called_once_with(
        "ex1", delete_logs=True, delete_metrics=False, delete_storage=True
    )


@pytest.mark.parametrize("gone", [False, True])
def test_delete_flow_404_is_success(hook: mock.MagicMock, gone: bool, caplog: Any, std_log: Any) -> None:
    std_log(KestraDeleteFlowOperator)
    if gone:
        hook.delete_flow.side_effect = _not_found()
    op = use_hook(KestraDeleteFlowOperator(task_id="d", namespace="ns", flow_id="f"), hook)
    with caplog.at_level("INFO"):
        assert op.execute({"ti": make_ti()}) is (not gone)
    assert ("already gone" in caplog.text) is gone
    hook.delete_flow.assert_called_once_with("ns", "f")
