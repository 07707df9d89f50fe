"""Command line of the migration: ``python -m airflow_provider_kestra.migration <command> ...``.

* ``check --dag-file F [--dag-id X]``: parse the DAG file as Airflow would and check its state file.
* ``report --dag-id X [--task-id T] [--ledger-folder DIR] [--json]``: the parity report of the shadow runs
  recorded in the ledger (a local file: no Airflow DB, no Kestra needed).
* ``cutover --dag-file F --dag-id X [--output PATH] [--validate] [--deploy] ...``: generate the whole-DAG
  Kestra flow once every task is in kestra mode; validate it with Kestra, deploy it.

Exit codes: 0 done, 1 a problem to fix (message on stderr), 2 bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_kestra.migration",
        description="Move an Airflow DAG to Kestra one task at a time (state file, shadow runs, cut-over).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="check a DAG's migration state file (parses the DAG file)")
    check.add_argument("--dag-file", required=True, type=Path)
    check.add_argument("--dag-id", help="default: every DAG of the file")

    report = commands.add_parser("report", help="parity report of the shadow runs of a DAG")
    report.add_argument("--dag-id", required=True)
    report.add_argument("--task-id", help="only this task")
    report.add_argument("--ledger-folder", type=Path, help="default: [kestra] migration_ledger_folder")
    report.add_argument("--json", action="store_true", help="machine-readable output")

    cutover = commands.add_parser("cutover", help="generate the whole-DAG Kestra flow")
    cutover.add_argument("--dag-file", required=True, type=Path)
    cutover.add_argument("--dag-id", required=True)
    cutover.add_argument("--state-file", type=Path, help="default: the DAG's state file")
    cutover.add_argument("--output", type=Path, help="write the flow YAML here (default: print it)")
    cutover.add_argument("--validate", action="store_true", help="validate the flow with Kestra")
    cutover.add_argument("--deploy", action="store_true", help="validate, then create/update the flow")
    cutover.add_argument("--kestra-conn-id", help="default: the state file's kestra_conn_id")
    cutover.add_argument("--without-schedule", action="store_true", help="no trigger if untranslatable")
    cutover.add_argument("--enable-trigger", action="store_true", help="generate the trigger enabled")
    return parser


def load_dags(dag_file: Path) -> dict[str, Any]:
    """The DAGs of one file, parsed by Airflow's DagBag (import errors raise, with their text)."""
    from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    options: dict[str, Any] = {} if AIRFLOW_V_3_0_PLUS else {"include_examples": False}
    bag = DagBag(dag_folder=str(dag_file), safe_mode=False, **options)
    if bag.import_errors:
        errors = "\n".join(f"{path}:\n{text}" for path, text in bag.import_errors.items())
        raise SystemExit(f"error: {dag_file} does not parse:\n{errors}")
    return dict(bag.dags)


def _pick(dags: dict[str, Any], dag_id: str, dag_file: Path) -> Any:
    if dag_id not in dags:
        raise SystemExit(
            f"error: no DAG {dag_id!r} in {dag_file} (found: {', '.join(sorted(dags)) or 'none'})"
        )
    return dags[dag_id]


def _check(args: argparse.Namespace) -> int:
    from airflow_provider_kestra.migration import check_state_against_dag, resolve_state_path
    from airflow_provider_kestra.migration.state import load_state

    dags = load_dags(args.dag_file)
    selected = [_pick(dags, args.dag_id, args.dag_file)] if args.dag_id else list(dags.values())
    for dag in selected:
        path = resolve_state_path(dag)
        state = load_state(path)
        check_state_against_dag(state, dag)
        modes = {tid: state.mode_of(tid) for tid in dag.task_dict}
        counts = {
            mode: sum(1 for m in modes.values() if m == mode) for mode in ("airflow", "shadow", "kestra")
        }
        print(f"{dag.dag_id}: {path} is valid; tasks by mode: {counts}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from airflow_provider_kestra.migration.report import (
        KestraParityLedger,
        build_parity,
        format_parity_report,
    )

    ledger = KestraParityLedger(args.ledger_folder)
    parity = build_parity(ledger.read(args.dag_id), args.task_id)
    if args.json:
        print(json.dumps({"dag_id": args.dag_id, "tasks": [p.as_dict() for p in parity]}, indent=2))
    else:
        print(format_parity_report(args.dag_id, parity, ledger.path_for(args.dag_id)))
    return 0


def _cutover(args: argparse.Namespace) -> int:
    from airflow_provider_kestra.migration import resolve_state_path
    from airflow_provider_kestra.migration.cutover import build_cutover_flow, validate_cutover_flow
    from airflow_provider_kestra.migration.state import load_state

    dag = _pick(load_dags(args.dag_file), args.dag_id, args.dag_file)
    state = load_state(resolve_state_path(dag, args.state_file))
    flow = build_cutover_flow(
        dag, state, without_schedule=args.without_schedule, enable_trigger=args.enable_trigger
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(flow.source, encoding="utf-8")
        print(f"Wrote flow {flow.namespace}.{flow.flow_id} to {args.output}", file=sys.stderr)
    else:
        print(flow.source)
    for note in flow.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.validate or args.deploy:
        from airflow_provider_kestra.hooks.kestra import KestraHook

        hook = KestraHook(args.kestra_conn_id or state.kestra_conn_id)
        problems = validate_cutover_flow(hook, flow)
        if problems:
            print("error: Kestra refused the generated flow:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        print(f"Kestra validated flow {flow.namespace}.{flow.flow_id}", file=sys.stderr)
        if args.deploy:
            result = hook.deploy_flows(flow.source)
            for item in result:
                flow_ref = f"{item['namespace']}.{item['flow_id']}"
                print(f"Flow {flow_ref}: {item['action']} (revision {item['revision']})", file=sys.stderr)
    print(
        f"Next: pause the Airflow DAG (`airflow dags pause {dag.dag_id}`), then enable the flow's Schedule "
        "trigger in Kestra, so the pipeline never runs on both schedulers.",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    from airflow_provider_kestra.exceptions import KestraError

    args = _parser().parse_args(argv)
    handlers = {"check": _check, "report": _report, "cutover": _cutover}
    try:
        return handlers[args.command](args)
    except KestraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
