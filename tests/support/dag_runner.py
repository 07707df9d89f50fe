"""Build and run a DAG in a test with ``dag.test()`` on Airflow 3.3 or 2.11 and read back what its tasks left.

``dag.test()`` on Airflow 3 only runs DAGs whose serialized form is in the metadata DB (it normally gets
there by parsing the dags folder); ``register_dag`` writes it directly, as the dag-processor would. On
Airflow 2.11 ``DAG.sync_to_db`` does the same. Task logs are not written to files by ``dag.test()``: the
tasks log to the test process's stdout/stderr, so tests capture them with ``capfd``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS
from support.kestra_side import unique_name

if TYPE_CHECKING:
    import pytest


def register_dag(dag: Any) -> None:
    """Store ``dag`` in the metadata DB the way DAG parsing would, so ``dag.test()`` can create a run."""
    from airflow.utils.session import create_session

    if not AIRFLOW_V_3_0_PLUS:
        with create_session() as session:
            dag.sync_to_db(session=session)
        return

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.commit()
        update_dag_parsing_results_in_db(
            "dags-folder",
            None,
            [LazyDeserializedDAG.from_dag(dag)],
            {},
            None,
            set(),
            session=session,
        )


DagFactory = Callable[..., Any]
"""``make_dag`` fixture: ``make_dag(suffix="", **default_args)`` returns a DAG with a per-test id."""


def dag_id_for(request: pytest.FixtureRequest, suffix: str = "") -> str:
    """A DAG id unique to the test: its suite folder (``integration``, ``reliability``) and its name."""
    return f"{request.path.parent.name}_{unique_name(request, limit=200)}{suffix}"[:200]


def build_dag(dag_id: str, **default_args: Any) -> Any:
    """An unscheduled DAG for ``dag.test()``: no catchup, no retries unless ``default_args`` say so."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import DAG
    else:
        from airflow import DAG

    return DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        default_args={"retries": 0, "retry_delay": timedelta(seconds=0), **default_args},
    )


@dataclass
class DagTestRun:
    """What one ``dag.test()`` run left behind: states, try numbers, XComs and the captured task output."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str | None]
    try_numbers: dict[str, int]
    output: str = field(repr=False)
    log_messages: list[str] | None = field(default=None, repr=False)
    """Airflow 2 only: the message of every log record, each once (its output repeats records)."""

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """The newest XCom value ``task_id`` pushed under ``key`` in this run (``None`` when absent)."""
        return read_xcom(self.dag_id, self.run_id, task_id, key)

    def log_records_with(self, text: str) -> int:
        """How many log records (task or trigger) contained ``text``: catches lines logged twice."""
        if self.log_messages is not None:
            return sum(text in message for message in self.log_messages)
        # Airflow 3 prints every record once, one line each.
        return sum(text in line for line in self.output.splitlines())


def _xcom_row(dag_id: str, run_id: str, task_id: str, key: str) -> Any:
    from airflow.utils.session import create_session

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        with create_session() as session:
            query = XComModel.get_many(run_id=run_id, key=key, task_ids=task_id, dag_ids=dag_id)
            row = session.scalars(query).first()
            if row is None:
                return None
            session.expunge(row)
            return row

    from airflow.models.xcom import XCom

    with create_session() as session:
        row = XCom.get_many(run_id=run_id, key=key, task_ids=task_id, dag_ids=dag_id, session=session).first()
        if row is None:
            return None
        session.expunge(row)
        return row


def read_xcom(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    """Deserialize one XCom value from the metadata DB (``None`` when the task pushed nothing)."""
    row = _xcom_row(dag_id, run_id, task_id, key)
    if row is None:
        return None
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        return XComModel.deserialize_value(row)
    # Airflow 2's XCom model deserializes ``value`` when the row is loaded.
    return row.value


def _task_instances(dag_id: str, run_id: str) -> tuple[dict[str, str | None], dict[str, int]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state, TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    states = {task_id: None if state is None else str(state) for task_id, state, _ in rows}
    tries = {task_id: int(try_number) for task_id, _, try_number in rows}
    return states, tries


class _LogRecordCollector(logging.Handler):
    """Keeps each log record's message once, however many loggers it propagates through."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        # Holding the records keeps their ids unique for the whole run.
        self._records: dict[int, logging.LogRecord] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self._records.setdefault(id(record), record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self._records.values()]


def _drop_stale_task_stream_handlers() -> None:
    """Airflow 2's ``dag.test()`` adds a stdout handler to ``airflow.task`` once per process.

    That handler keeps the stdout of the test that ran first (closed by then); removing it lets this run's
    ``dag.test()`` add one writing to the current, captured stdout.
    """
    task_logger = logging.getLogger("airflow.task")
    for handler in list(task_logger.handlers):
        if type(handler) is logging.StreamHandler:
            task_logger.removeHandler(handler)


DagRunner = Callable[[Any], DagTestRun]
"""``run_dag`` fixture: runs a DAG with ``dag.test()`` and returns its :class:`DagTestRun`."""


def run_dag_with_capture(dag: Any, capfd: pytest.CaptureFixture[str]) -> DagTestRun:
    """Register ``dag``, run it once with ``dag.test()`` and collect the outcome and the tasks' output."""
    register_dag(dag)
    collector: _LogRecordCollector | None = None
    # airflow.task does not propagate to the root logger on Airflow 2: listen on both.
    listened = [logging.getLogger(), logging.getLogger("airflow.task")]
    if not AIRFLOW_V_3_0_PLUS:
        _drop_stale_task_stream_handlers()
        collector = _LogRecordCollector()
        for logger in listened:
            logger.addHandler(collector)
    capfd.readouterr()
    try:
        dag_run = dag.test()
    finally:
        if collector is not None:
            for logger in listened:
                logger.removeHandler(collector)
    out, err = capfd.readouterr()
    # Echo the captured output so a failing test still shows the task logs in pytest's report.
    print(out)
    print(err)
    state = dag_run.state.value if hasattr(dag_run.state, "value") else str(dag_run.state)
    task_states, try_numbers = _task_instances(dag.dag_id, dag_run.run_id)
    return DagTestRun(
        dag_id=dag.dag_id,
        run_id=dag_run.run_id,
        state=state,
        task_states=task_states,
        try_numbers=try_numbers,
        output=out + err,
        log_messages=None if collector is None else collector.messages,
    )
