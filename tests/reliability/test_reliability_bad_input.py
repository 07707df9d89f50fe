"""Bad input is refused with a clear message, and nothing is sent (where it can be caught locally) or lost.

Each test runs real Airflow (``dag.test()``) with one mistake and checks: the task failed, its log names the
problem (which file, flow, input, label or setting, and what Kestra said), no flow or execution was written,
and, for mistakes the provider can see by itself, that the request was never sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kestra_reliability_ledger import task_labels
from kestra_reliability_worker import PEAK_RSS_RESET, KestraWorkerProcess, KestraWorkerTry
from support.kestra_flows import greeting_tasks
from support.kestra_side import FLOW_NAMESPACE, flow_source

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from kestra_reliability_ledger import KestraExecutionLedger
    from kestra_reliability_recorder import KestraReliabilityRecorder
    from support.dag_runner import DagTestRun
    from support.kestra_side import KestraTestSide

    from airflow_provider_kestra.testing import KestraSimFaultRule

pytestmark = pytest.mark.integration

HOOK_PARAMS = {"retry_limit": 1, "retry_delay": 0.05}
TYPED_INPUTS = """inputs:
  - id: count
    type: INT
  - id: data
    type: FILE
    required: false
"""
FLOW_WRITES = (("POST", r"/flows$"), ("PUT", r"/flows/[^/]+/[^/]+$"), ("POST", r"/flows/bulk$"))


def request_counter(kestra_side: KestraTestSide, method: str, path: str) -> KestraSimFaultRule:
    """A zero-delay fault rule used only to count the requests matching ``method`` and ``path``."""
    return kestra_side.sim.faults.latency(0.0, method=method, path=path)


def flow_write_counters(kestra_side: KestraTestSide) -> list[KestraSimFaultRule]:
    return [request_counter(kestra_side, method, path) for method, path in FLOW_WRITES]


def stored_flow_ids(kestra_side: KestraTestSide) -> set[str]:
    return {flow_id for (_, _, flow_id) in kestra_side.sim.store.flows}


def assert_refused(run: DagTestRun, *fragments: str) -> None:
    """The task failed without retrying, and its log says why (every fragment appears)."""
    assert run.state == "failed" and run.task_states == {"run": "failed"}, run.output[-3000:]
    missing = [fragment for fragment in fragments if fragment not in run.output]
    assert not missing, f"the error does not mention {missing}:\n{run.output[-3000:]}"


def deploy_dag(make_dag: Callable[..., Any], **operator_kwargs: Any) -> Any:
    from airflow_provider_kestra.operators.kestra import KestraDeployFlowOperator

    with make_dag() as dag:
        KestraDeployFlowOperator(task_id="run", hook_params=HOOK_PARAMS, **operator_kwargs)
    return dag


def trigger_dag(make_dag: Callable[..., Any], flow_id: str, **operator_kwargs: Any) -> Any:
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    operator_kwargs.setdefault("hook_params", HOOK_PARAMS)
    with make_dag() as dag:
        KestraTriggerExecutionOperator(
            task_id="run", namespace=FLOW_NAMESPACE, flow_id=flow_id, poll_interval=0.2, **operator_kwargs
        )
    return dag


def assert_deploy_refused(
    kestra_side: KestraTestSide,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    *,
    says: Sequence[str],
    not_stored: Collection[str],
    **operator_kwargs: Any,
) -> None:
    """A deploy task with ``operator_kwargs`` is refused as one bad input: its log ``says`` every fragment,
    no flow write reaches Kestra and none of the ``not_stored`` flow ids exists afterwards."""
    writes = flow_write_counters(kestra_side)
    with reliability.bad_input():
        run = run_dag(deploy_dag(make_dag, **operator_kwargs))
        assert_refused(run, *says)
        assert sum(rule.fired for rule in writes) == 0
        assert not set(not_stored) & stored_flow_ids(kestra_side)


def assert_no_execution(ledger: KestraExecutionLedger, run: DagTestRun) -> None:
    assert ledger.executions(task_labels(run.dag_id, run.run_id)) == []


# -- flows ----------------------------------------------------------------------------------------------


def test_invalid_yaml_deploys_nothing(
    kestra_side: KestraTestSide,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    tmp_path: Path,
) -> None:
    good_id = kestra_side.flow_id("good")
    (tmp_path / "good.yml").write_text(flow_source(good_id, greeting_tasks()))
    (tmp_path / "broken.yml").write_text(
        f"id: {kestra_side.flow_id('broken')}\nnamespace: [unclosed\ntasks: :\n"
    )
    assert_deploy_refused(
        kestra_side,
        make_dag,
        run_dag,
        reliability,
        says=["broken.yml", "nothing deployed"],
        not_stored=[good_id],
        path=str(tmp_path),
    )


def test_flow_outside_the_namespace_deploys_nothing(
    kestra_side: KestraTestSide,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
) -> None:
    flow_id = kestra_side.flow_id("elsewhere")
    assert_deploy_refused(
        kestra_side,
        make_dag,
        run_dag,
        reliability,
        says=[flow_id, FLOW_NAMESPACE, "reliability.expected"],
        not_stored=[flow_id],
        source=flow_source(flow_id, greeting_tasks()),
        namespace="reliability.expected",
    )


def test_flow_id_mismatch_on_update_changes_nothing(
    kestra_side: KestraTestSide, reliability: KestraReliabilityRecorder
) -> None:
    """Updating flow A with a source whose id is B is refused; A keeps its revision and B is not created."""
    from airflow_provider_kestra.exceptions import KestraError

    flow_a = kestra_side.deploy("flow_a", greeting_tasks())
    flow_b = kestra_side.flow_id("flow_b")
    revisions_before = len(kestra_side.sim.store.flows[("main", FLOW_NAMESPACE, flow_a)])
    with reliability.bad_input():
        with pytest.raises(KestraError) as refused:
            kestra_side.hook.update_flow(FLOW_NAMESPACE, flow_a, flow_source(flow_b, greeting_tasks()))
        assert flow_a in str(refused.value) or flow_b in str(refused.value), str(refused.value)
        assert len(kestra_side.sim.store.flows[("main", FLOW_NAMESPACE, flow_a)]) == revisions_before
        assert flow_b not in stored_flow_ids(kestra_side)


def test_unknown_task_type_deploys_nothing(
    kestra_side: KestraTestSide,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    tmp_path: Path,
) -> None:
    good_id, bad_id = kestra_side.flow_id("fine"), kestra_side.flow_id("unknown_type")
    (tmp_path / "fine.yml").write_text(flow_source(good_id, greeting_tasks()))
    unknown = "  - id: mystery\n    type: io.kestra.plugin.notinstalled.Mystery\n"
    (tmp_path / "unknown.yml").write_text(flow_source(bad_id, unknown))
    assert_deploy_refused(
        kestra_side,
        make_dag,
        run_dag,
        reliability,
        says=["unknown.yml", bad_id, "io.kestra.plugin.notinstalled.Mystery"],
        not_stored=[good_id, bad_id],
        path=str(tmp_path),
    )


# -- inputs and labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "named"),
    [({}, "count"), ({"count": "twelve"}, "count")],
    ids=["missing", "mistyped"],
)
def test_bad_inputs_start_nothing(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    inputs: dict[str, Any],
    named: str,
) -> None:
    """Kestra refuses the inputs (422): the task fails naming the input, and no execution exists."""
    flow_id = kestra_side.deploy("typed", greeting_tasks(), TYPED_INPUTS)
    with reliability.bad_input():
        run = run_dag(trigger_dag(make_dag, flow_id, inputs=inputs))
        assert_refused(run, named, "422")
        assert_no_execution(ledger, run)


def test_missing_file_input_is_refused_before_sending(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    tmp_path: Path,
) -> None:
    flow_id = kestra_side.deploy("typed", greeting_tasks(), TYPED_INPUTS)
    missing = tmp_path / "not-there.csv"
    creates = request_counter(kestra_side, "POST", rf"/executions/{FLOW_NAMESPACE}/{flow_id}$")
    with reliability.bad_input():
        run = run_dag(trigger_dag(make_dag, flow_id, inputs={"count": 3, "data": missing}))
        assert_refused(run, "data", str(missing))
        assert creates.fired == 0
        assert_no_execution(ledger, run)


@pytest.mark.parametrize("key", ["Team Name", "system.flowId"])
def test_labels_kestra_refuses_are_refused_before_sending(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    key: str,
) -> None:
    flow_id = kestra_side.deploy("greeting", greeting_tasks())
    creates = request_counter(kestra_side, "POST", rf"/executions/{FLOW_NAMESPACE}/{flow_id}$")
    with reliability.bad_input():
        run = run_dag(trigger_dag(make_dag, flow_id, labels={key: "x"}))
        assert_refused(run, repr(key))
        assert creates.fired == 0
        assert_no_execution(ledger, run)


# -- connection ----------------------------------------------------------------------------------------


def bad_connection(
    kestra_side: KestraTestSide, monkeypatch: pytest.MonkeyPatch, **changes: Any
) -> dict[str, str | Any]:
    """Operator kwargs using connection ``kestra_bad``: the simulator's connection with ``changes``."""
    sim = kestra_side.sim
    connection = {
        "conn_type": "kestra",
        "host": sim.host,
        "port": sim.port,
        "login": sim.username,
        "password": sim.password,
        **changes,
    }
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_BAD", json.dumps(connection))
    return {"kestra_conn_id": "kestra_bad"}


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"extra": {"tenant": "acme"}}, ["400", "Tenant must be 'main'"]),
        ({"password": "not-the-password"}, ["401"]),
        ({"schema": "https"}, ["TLS", "https://"]),
    ],
    ids=["wrong-tenant", "bad-credentials", "tls-to-plain-http"],
)
def test_unusable_connection_starts_nothing(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, Any],
    fragments: list[str],
) -> None:
    flow_id = kestra_side.deploy("greeting", greeting_tasks())
    with reliability.bad_input():
        run = run_dag(trigger_dag(make_dag, flow_id, **bad_connection(kestra_side, monkeypatch, **changes)))
        assert_refused(run, *fragments)
        assert "not-the-password" not in run.output
        assert_no_execution(ledger, run)


# -- what comes back from Kestra ------------------------------------------------------------------------

ESCAPING_WRITES = """  - id: up
    type: io.kestra.plugin.core.storage.Write
    content: climbed
    extension: "/../../../../escaped-up.txt"
  - id: backslash
    type: io.kestra.plugin.core.storage.Write
    content: slid
    extension: "\\\\..\\\\..\\\\escaped-back.txt"
  - id: dots
    type: io.kestra.plugin.core.storage.Write
    content: dotted
    extension: "/.."
"""


def test_output_file_names_cannot_escape_the_download_folder(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    tmp_path: Path,
) -> None:
    """Kestra names files ``.../../../escaped-up.txt``: every download lands inside the folder."""
    flow_id = kestra_side.deploy("escaping_files", ESCAPING_WRITES)
    downloads = tmp_path / "a" / "b" / "downloads"
    with reliability.bad_input():
        run = run_dag(trigger_dag(make_dag, flow_id, output_files_dir=str(downloads)))
        assert run.state == "success", run.output[-3000:]
        written = sorted(path for path in tmp_path.rglob("*") if path.is_file())
        assert written and all(path.parent == downloads for path in written), written
        assert sorted(Path(p) for p in run.xcom("run", "output_files")) == written
        assert sorted(path.read_text() for path in written) == ["climbed", "dotted", "slid"]
    ledger.account(reliability, task_labels(run.dag_id, run.run_id), expected=1)


LOG_LINES = 1600
LOG_LINE_CHARS = 20_000
"""32 MB of log text in all: far more than a task should hold in memory at once."""
FLOOD_END = "end of the flood"
MEMORY_GROWTH_LIMIT_MB = 24
"""What the task may add to the worker's peak memory while it streams those logs."""


@pytest.mark.skipif(
    not PEAK_RSS_RESET.exists(), reason="needs Linux /proc/self/clear_refs to measure peak memory"
)
def test_oversized_logs_keep_memory_bounded(
    kestra_side: KestraTestSide, ledger: KestraExecutionLedger, reliability: KestraReliabilityRecorder
) -> None:
    """A 32 MB execution log is streamed into the task log without the worker holding it at once."""
    from airflow_provider_kestra.testing.backend.clock import now_instant

    flow_id = kestra_side.deploy(
        "chatty", "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT2S\n"
    )
    kwargs = {
        "namespace": FLOW_NAMESPACE,
        "flow_id": flow_id,
        "poll_interval": 1.0,
        "hook_params": HOOK_PARAMS,
    }
    task_try = KestraWorkerTry("reliability_logs_flooded", "manual__flooded", "run", 1, kwargs)
    labels = task_labels(task_try.dag_id, task_try.run_id)
    with reliability.bad_input():
        with KestraWorkerProcess(task_try) as worker:
            execution = ledger.wait_for_running(labels)

            def log(message: str) -> None:
                kestra_side.sim.store.add_log(
                    {
                        "executionId": execution["id"],
                        "namespace": FLOW_NAMESPACE,
                        "flowId": flow_id,
                        "taskId": "flood",
                        "timestamp": now_instant(),
                        "level": "INFO",
                        "message": message,
                        "tenantId": "main",
                    }
                )

            def flood() -> None:
                for index in range(LOG_LINES):
                    log(f"{index:06d} " + "x" * LOG_LINE_CHARS)
                log(FLOOD_END)

            kestra_side.sim.call(flood)
            code, report, output = worker.finish()
        assert code == 0 and "result" in report, f"{report}\n{output[-3000:]}"
        assert FLOOD_END in output, "the execution's logs never reached the task log"
        grown_mb = (report["peak_rss_kb"] - report["rss_kb_before"]) / 1024
        assert grown_mb < MEMORY_GROWTH_LIMIT_MB, (
            f"streaming {LOG_LINES * LOG_LINE_CHARS // 1_000_000} MB of Kestra logs grew the worker's peak "
            f"memory by {grown_mb:.0f} MB"
        )
    ledger.account(reliability, labels, expected=1)
