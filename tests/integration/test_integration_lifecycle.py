"""The lifecycle operators in ``dag.test()`` against the simulator: Kestra 1.3 and 2.0 (both layouts of the
single-execution actions), sync and deferrable where they wait.

Restart on a fixed revision, then read the outputs of that execution (as for one a sensor found), then
delete the execution and the flow (and once more: already gone is success); fire a webhook with a key kept
in a Variable or a connection, which must appear nowhere in the task output or the XComs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from support.kestra_flows import (
    FAILING_TASKS,
    GREETING_INPUTS,
    SLOW_TASKS,
    WRITE_FILE_OUTPUTS,
    WRITE_FILE_TASKS,
)
from support.kestra_side import FLOW_NAMESPACE, KestraTestSide, flow_source, labels_of, state_history

from airflow_provider_kestra.exceptions import KestraNotFoundError
from airflow_provider_kestra.operators import kestra_lifecycle as lifecycle

if TYPE_CHECKING:
    from collections.abc import Iterator

    from support.dag_runner import DagFactory, DagRunner

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = pytest.mark.integration

MODES = pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
PROFILES = [("1.3", None), ("2.0", "actions"), ("2.0", "plain")]

FIXED_TASKS = FAILING_TASKS[: FAILING_TASKS.index("  - id: boom")] + WRITE_FILE_TASKS.replace(
    "- id: report", "- id: boom"
)
"""The same task ids as ``FAILING_TASKS``; ``boom`` now writes a file instead of failing."""
FIXED_OUTPUTS = WRITE_FILE_OUTPUTS.replace("outputs.report.uri", "outputs.boom.uri")
WEBHOOK_KEY = "wh-Key+9#secret"
WEBHOOK_EXTRA = yaml.safe_dump(
    {
        "outputs": [{"id": "who", "type": "STRING", "value": "{{ trigger.body.who }}"}],
        "triggers": [{"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "key": WEBHOOK_KEY}],
    },
    sort_keys=False,
)
WEBHOOK_TASKS = (
    '  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: "hello {{ trigger.body.who }}"\n'
)


@pytest.fixture(scope="module", params=PROFILES, ids=[f"kestra{v}-{a or 'v1'}" for v, a in PROFILES])
def kestra_sim(request: pytest.FixtureRequest) -> Iterator[KestraSimulator]:
    """Overrides the suite's ``kestra_sim`` (1.3 and 2.0): here also 2.0 with the plain action layout, so
    the suite's ``kestra`` fixture (the Kestra side of each test) runs on the three."""
    from airflow_provider_kestra.testing import KestraSimulator

    version, layout = request.param
    with KestraSimulator(kestra_version=version, **({"action_routes": layout} if layout else {})) as sim:
        yield sim


def _webhook(task_id: str, flow_id: str, **kwargs: Any) -> lifecycle.KestraWebhookTriggerOperator:
    return lifecycle.KestraWebhookTriggerOperator(
        task_id=task_id, namespace=FLOW_NAMESPACE, flow_id=flow_id, **kwargs
    )


def _failed(kestra: KestraTestSide, name: str) -> tuple[str, str]:
    """Deploy the failing flow ``name``, run it to FAILED outside Airflow: (flow id, execution id)."""
    flow_id = kestra.deploy(name, FAILING_TASKS, GREETING_INPUTS)
    execution_id = kestra.start(flow_id, name="lifecycle")
    assert kestra.wait_for_state(execution_id, {"FAILED"}) == "FAILED"
    return flow_id, execution_id


@MODES
def test_restart_on_a_fixed_revision_then_outputs_then_delete(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool, tmp_path: Path
) -> None:
    flow_id, original = _failed(kestra, "fixable")
    revision = kestra.hook.upsert_flow(flow_source(flow_id, FIXED_TASKS, GREETING_INPUTS + FIXED_OUTPUTS))[
        "revision"
    ]
    new_id = "{{ ti.xcom_pull(task_ids='restart', key='execution_id') }}"
    with make_dag() as dag:
        restart = lifecycle.KestraRestartExecutionOperator(
            task_id="restart",
            execution_id=original,
            revision="{{ params.revision }}",
            deferrable=deferrable,
            poll_interval=0.3,
            params={"revision": revision},
        )
        outputs = lifecycle.KestraGetOutputsOperator(
            task_id="outputs",
            execution_id=new_id,
            include_task_outputs=True,
            output_files_dir=str(tmp_path / "files"),
        )
        delete = lifecycle.KestraDeleteExecutionOperator(
            task_id="delete", execution_id=new_id, delete_logs=False
        )
        again = lifecycle.KestraDeleteExecutionOperator(task_id="again", execution_id=new_id)
        drop_flow = lifecycle.KestraDeleteFlowOperator(
            task_id="drop_flow", namespace=FLOW_NAMESPACE, flow_id=flow_id
        )
        drop_again = lifecycle.KestraDeleteFlowOperator(
            task_id="drop_again", namespace=FLOW_NAMESPACE, flow_id=flow_id
        )
        restart >> outputs >> delete >> again >> drop_flow >> drop_again
    run = run_dag(dag)

    assert run.state == "success", run.output[-4000:]
    restarted = run.xcom("restart", "execution_id")
    assert restarted and restarted != original, "a restart on a revision makes a new execution"
    assert str(run.xcom("restart")["report_file"]).startswith("kestra:///")
    assert run.xcom("restart", "execution_state") == "SUCCESS"
    restarted_line = f"Restarted Kestra execution {original} on revision {revision} as execution {restarted}"
    assert restarted_line in run.output
    # Outputs of an execution Airflow did not start: the same shapes as the trigger operator's.
    assert run.xcom("outputs") == run.xcom("restart")
    assert set(run.xcom("outputs", "task_outputs")) >= {"boom"}
    [local] = run.xcom("outputs", "output_files")
    assert Path(local).read_text() == "report for lifecycle"
    assert run.xcom("outputs", "execution_url").endswith(restarted)
    # Deleted, then already gone (success, logged); the flow likewise.
    assert run.xcom("delete") is True and run.xcom("again") is False
    assert run.xcom("drop_flow") is True and run.xcom("drop_again") is False
    assert "is already gone" in run.output
    with pytest.raises(KestraNotFoundError):
        kestra.execution(restarted)
    deletes = kestra.sim.requests.filter("DELETE", f"/executions/{restarted}$")
    assert [d.query for d in deletes] == [
        "deleteLogs=false&deleteMetrics=true&deleteStorage=true",
        "deleteLogs=true&deleteMetrics=true&deleteStorage=true",
    ]
    with pytest.raises(KestraNotFoundError):
        kestra.hook.get_flow(FLOW_NAMESPACE, flow_id)
    assert kestra.execution(original)["state"]["current"] == "FAILED", "the original stays as it was"


@MODES
def test_restart_in_place_fails_the_task_when_it_fails_again(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, deferrable: bool
) -> None:
    _, original = _failed(kestra, "still_broken")
    with make_dag() as dag:
        lifecycle.KestraRestartExecutionOperator(
            task_id="restart", execution_id=original, deferrable=deferrable, poll_interval=0.3
        )
    run = run_dag(dag)

    assert run.state == "failed"
    assert run.xcom("restart", "execution_id") == original
    assert "kestra-side failure: disk on fire" in run.output
    execution = kestra.execution(original)
    assert "RESTARTED" in state_history(execution) and state_history(execution)[-1] == "FAILED"
    assert labels_of(execution)["system.restarted"] == "true"


def test_get_outputs_of_a_running_execution_fails(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner
) -> None:
    flow_id = kestra.deploy("slow", SLOW_TASKS)
    execution_id = kestra.start(flow_id)
    with make_dag() as dag:
        lifecycle.KestraGetOutputsOperator(task_id="outputs", execution_id=execution_id)
    run = run_dag(dag)

    assert run.state == "failed"
    assert "has no final outputs yet" in run.output
    assert kestra.execution(execution_id)["state"]["current"] not in ("KILLED", "KILLING")
    kestra.hook.kill_execution(execution_id)


@MODES
def test_webhook_with_the_key_in_a_variable_waits_for_outputs(
    kestra: KestraTestSide,
    make_dag: DagFactory,
    run_dag: DagRunner,
    deferrable: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow_id = kestra.deploy("hooked", WEBHOOK_TASKS, WEBHOOK_EXTRA)
    monkeypatch.setenv("AIRFLOW_VAR_KESTRA_WEBHOOK_KEY", WEBHOOK_KEY)
    monkeypatch.setenv(
        "AIRFLOW_CONN_KESTRA_WEBHOOK_KEY", json.dumps({"conn_type": "generic", "password": WEBHOOK_KEY})
    )
    with make_dag() as dag:
        _webhook(
            "fire_and_wait",
            flow_id,
            webhook_key_variable="kestra_webhook_key",
            body={"who": "{{ dag.dag_id }}"},
            wait_for_completion=True,
            deferrable=deferrable,
            poll_interval=0.3,
        )
        _webhook("fire", flow_id, webhook_key_conn_id="kestra_webhook_key", body={"who": "conn"})
    run = run_dag(dag)

    assert run.state == "success", run.output[-4000:]
    assert run.xcom("fire_and_wait") == {"who": run.dag_id}
    assert run.xcom("fire_and_wait", "execution_state") == "SUCCESS"
    fired = run.xcom("fire")
    assert fired == run.xcom("fire", "execution_id")
    assert kestra.wait_for_state(fired, {"SUCCESS"}) == "SUCCESS"
    assert "hello " + run.dag_id in run.output
    for task_id in ("fire_and_wait", "fire"):
        for key in ("return_value", "execution_id", "execution_url", "execution_state"):
            assert "secret" not in json.dumps(run.xcom(task_id, key))
    assert "wh-Key" not in run.output and "secret" not in run.output.replace("secrets", "")


def test_webhook_with_a_wrong_key_fails_without_showing_it(
    kestra: KestraTestSide, make_dag: DagFactory, run_dag: DagRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_id = kestra.deploy("hooked", WEBHOOK_TASKS, WEBHOOK_EXTRA)
    monkeypatch.setenv("AIRFLOW_VAR_KESTRA_WEBHOOK_KEY", "wrong-Key-visible-nowhere")
    with make_dag() as dag:
        _webhook("fire", flow_id, webhook_key_variable="kestra_webhook_key")
    run = run_dag(dag)

    assert run.state == "failed"
    assert "Webhook not found" in run.output
    assert "visible-nowhere" not in run.output
    assert kestra.executions_of(flow_id) == []
