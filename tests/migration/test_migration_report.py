"""The parity ledger and report built from it (no Airflow run needed: records are what the runner writes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.migration.__main__ import main
from airflow_provider_kestra.migration.report import KestraParityLedger, build_parity

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _record(task_id: str, verdict: str, **extra: Any) -> dict[str, Any]:
    return {
        "dag_id": "etl",
        "task_id": task_id,
        "run_id": f"run-{verdict}",
        "namespace": "company",
        "flow_id": task_id,
        "verdict": verdict,
        "airflow_seconds": 2.0,
        "kestra_seconds": 1.0,
        "execution_id": f"ex-{task_id}-{verdict}",
        **extra,
    }


def test_readiness_counts_compared_runs_only(tmp_path: Path) -> None:
    ledger = KestraParityLedger(tmp_path)
    for record in [
        _record("load", "match"),
        _record("load", "airflow_failed"),
        _record("clean", "match"),
        _record("clean", "no_verdict"),
        _record("score", "airflow_failed"),
    ]:
        ledger.append(record)
    with ledger.path_for("etl").open("a") as torn:
        torn.write("not json\n")  # a torn line is skipped

    parity = {p.task_id: p for p in build_parity(ledger.read("etl"))}

    assert {tid: p.ready for tid, p in parity.items()} == {"clean": False, "load": True, "score": False}
    assert parity["clean"].last_problem is not None
    assert parity["clean"].last_problem["verdict"] == "no_verdict"
    assert parity["load"].as_dict()["airflow_median_seconds"] == 2.0


def test_report_command_filters_by_task_and_shows_the_latest_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = KestraParityLedger(tmp_path)
    differences = [{"path": "$.total", "airflow": "42", "kestra": "41"}]
    ledger.append(_record("load", "mismatch", differences=differences, execution_url="http://k/ui/x"))
    ledger.append(_record("clean", "match"))

    assert main(["report", "--dag-id", "etl", "--task-id", "load", "--ledger-folder", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "clean" not in out
    assert (
        "Latest mismatch of load: run run-mismatch, Kestra execution ex-load-mismatch (http://k/ui/x)" in out
    )
    assert "  $.total: airflow=42  kestra=41" in out
    assert main(["report", "--dag-id", "nothing", "--ledger-folder", str(tmp_path)]) == 0
    assert "DAG nothing: no shadow runs recorded" in capsys.readouterr().out
