"""A password and an API token never show: not in task logs, XCom, rendered fields, trigger kwargs or errors.

DAGs run against an Enterprise-edition simulator, once with basic auth (password) and once with an API token,
each with a task that waits in a worker slot, one that defers, and one whose flow fails. Airflow's own log
masking hides connection secrets in task logs, so the places it does not cover are checked directly too:
XCom and rendered fields in the metadata DB, the trigger's ``serialize()`` output, and the text of the
errors the hook and operator raise (wrong credentials, TLS failure, failed execution).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from kestra_reliability_ledger import task_labels
from kestra_reliability_triggerer import run_until_event
from kestra_reliability_worker import KestraWorkerTry, build_operator, worker_context
from support.kestra_flows import FAILING_TASKS, GREETING_INPUTS, GREETING_OUTPUTS, greeting_tasks
from support.kestra_side import FLOW_NAMESPACE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from kestra_reliability_ledger import KestraExecutionLedger
    from kestra_reliability_recorder import KestraReliabilityRecorder
    from support.dag_runner import DagTestRun
    from support.kestra_side import KestraTestSide

    from airflow_provider_kestra.testing import KestraSimulator

pytestmark = pytest.mark.integration

USERNAME = "reliability@kestra.io"
PASSWORD = "Rel-Pa55word-d8Kq2"
TOKEN = "kestra-reliability-token-Zt41mQ"
HOOK_PARAMS = {"retry_limit": 1, "retry_delay": 0.05}
AUTH_MODES = ("password", "token")


def secrets_of(auth: str) -> list[str]:
    """The secret of one auth mode in every form it could leak in (raw, Authorization header value)."""
    if auth == "token":
        return [TOKEN, f"Bearer {TOKEN}"]
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    return [PASSWORD, basic]


def assert_no_secret(where: str, text: str, secrets: list[str]) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"{where} contains a secret"


@pytest.fixture(scope="module")
def reliability_sim() -> Iterator[KestraSimulator]:
    """An Enterprise simulator with a known password and one API token (overrides the suite's simulator)."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(
        kestra_version="1.3", edition="EE", username=USERNAME, password=PASSWORD, tokens=[TOKEN]
    ) as sim:
        yield sim


def use_auth(kestra_side: KestraTestSide, monkeypatch: pytest.MonkeyPatch, auth: str) -> None:
    uri = kestra_side.sim.connection_uri(token=TOKEN) if auth == "token" else kestra_side.sim.connection_uri()
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", uri)


def stored_run_text(run: DagTestRun) -> dict[str, str]:
    """Every XCom value, rendered template field and trigger kwarg the metadata DB holds for the run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        ).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == run.dag_id,
                RenderedTaskInstanceFields.run_id == run.run_id,
            )
        ).all()
        triggers = session.scalars(select(Trigger).where(Trigger.classpath.like("%Kestra%"))).all()
        return {
            "XCom": json.dumps(
                [[x.task_id, x.key, XComModel.deserialize_value(x)] for x in xcoms], default=str
            ),
            "rendered fields": json.dumps([[r.task_id, r.rendered_fields] for r in rendered], default=str),
            "stored trigger kwargs": json.dumps([t.kwargs for t in triggers], default=str),
        }


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_secrets_stay_out_of_everything_a_dag_run_leaves(
    kestra_side: KestraTestSide,
    ledger: KestraExecutionLedger,
    make_dag: Callable[..., Any],
    run_dag: Callable[[Any], DagTestRun],
    reliability: KestraReliabilityRecorder,
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
) -> None:
    from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

    use_auth(kestra_side, monkeypatch, auth)
    greeting = kestra_side.deploy("greeting", greeting_tasks(), GREETING_INPUTS + GREETING_OUTPUTS)
    failing = kestra_side.deploy("failing", FAILING_TASKS)
    common: dict[str, Any] = {"namespace": FLOW_NAMESPACE, "poll_interval": 0.2, "hook_params": HOOK_PARAMS}
    with make_dag() as dag:
        KestraTriggerExecutionOperator(
            task_id="in_worker", flow_id=greeting, inputs={"name": "{{ run_id }}"}, **common
        )
        KestraTriggerExecutionOperator(task_id="deferred", flow_id=greeting, deferrable=True, **common)
        KestraTriggerExecutionOperator(task_id="failing", flow_id=failing, **common)
    run = run_dag(dag)

    assert run.task_states == {"in_worker": "success", "deferred": "success", "failing": "failed"}, (
        run.output[-3000:]
    )
    assert "disk on fire" in run.output, "the failure reason should be in the task log"
    secrets = secrets_of(auth)
    assert_no_secret("the task logs", run.output, secrets)
    for where, text in stored_run_text(run).items():
        assert_no_secret(where, text, secrets)
    for task_id in run.task_states:
        ledger.account(reliability, task_labels(run.dag_id, run.run_id, task_id), expected=1)


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_trigger_kwargs_carry_no_secret(
    kestra_side: KestraTestSide, monkeypatch: pytest.MonkeyPatch, auth: str
) -> None:
    """What the triggerer stores and reloads (``serialize()``) names the connection, never its secrets."""
    from airflow.sdk.exceptions import TaskDeferred

    use_auth(kestra_side, monkeypatch, auth)
    flow_id = kestra_side.deploy("greeting", greeting_tasks(), GREETING_INPUTS + GREETING_OUTPUTS)
    task_try = KestraWorkerTry(
        dag_id="reliability_secrets_trigger",
        run_id=f"manual__{auth}",
        task_id="run",
        try_number=1,
        operator_kwargs={
            "namespace": FLOW_NAMESPACE,
            "flow_id": flow_id,
            "deferrable": True,
            "poll_interval": 0.2,
        },
    )
    operator = build_operator(task_try)
    context = worker_context(task_try, operator)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert_no_secret("the trigger's serialize()", json.dumps([classpath, kwargs]), secrets_of(auth))
    assert_no_secret("the trigger's repr", repr(trigger), secrets_of(auth))
    event = asyncio.run(run_until_event(trigger))
    assert event is not None and event.payload["status"] == "success"
    assert_no_secret("the trigger event", json.dumps(event.payload, default=str), secrets_of(auth))


@pytest.mark.parametrize(
    ("auth", "changes"),
    [
        ("password", {"password": PASSWORD + "-wrong"}),
        ("token", {"extra": {"token": TOKEN + "-wrong"}}),
        ("password", {"schema": "https"}),
    ],
    ids=["wrong-password", "wrong-token", "tls-failure"],
)
def test_error_text_carries_no_secret(
    kestra_side: KestraTestSide,
    monkeypatch: pytest.MonkeyPatch,
    reliability: KestraReliabilityRecorder,
    auth: str,
    changes: dict[str, Any],
) -> None:
    """The errors for refused credentials and a TLS failure name the problem, not the secret tried."""
    from airflow_provider_kestra.exceptions import KestraError

    sim = kestra_side.sim
    connection: dict[str, Any] = {"conn_type": "kestra", "host": sim.host, "port": sim.port}
    if auth == "token":
        connection["extra"] = {"token": TOKEN}
    else:
        connection.update(login=USERNAME, password=PASSWORD)
    connection.update(changes)
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_SECRET_TEST", json.dumps(connection))
    flow_id = kestra_side.deploy("greeting", greeting_tasks(), GREETING_INPUTS + GREETING_OUTPUTS)
    task_try = KestraWorkerTry(
        dag_id="reliability_secrets_errors",
        run_id=f"manual__{auth}_{sorted(changes)[0]}",
        task_id="run",
        try_number=1,
        operator_kwargs={
            "namespace": FLOW_NAMESPACE,
            "flow_id": flow_id,
            "kestra_conn_id": "kestra_secret_test",
            "hook_params": HOOK_PARAMS,
        },
    )
    operator = build_operator(task_try)
    with reliability.bad_input():
        with pytest.raises(KestraError) as refused:
            operator.execute(worker_context(task_try, operator))
        error = refused.value
        text = f"{error}\n{error!r}\n{error.__cause__!r}\n{error.__context__!r}"
        tried = [*secrets_of(auth), PASSWORD + "-wrong", TOKEN + "-wrong"]
        assert_no_secret("the error", text, tried)
        assert_no_secret("the hook's repr", repr(operator.hook), tried)
        assert ("401" in str(error)) or ("TLS" in str(error)), str(error)


@pytest.mark.parametrize(
    "fields",
    [
        {"host": f"ftp://{USERNAME}:{PASSWORD}@kestra.example.com"},
        {"host": f"https://{USERNAME}:{PASSWORD}@kestra.example.com:notaport"},
        {"host": "kestra.example.com", "schema": PASSWORD},
        {
            "host": "kestra.example.com",
            "login": USERNAME,
            "password": PASSWORD,
            "extras": {"timeout": PASSWORD},
        },
        {"host": "kestra.example.com", "extras": {"token": TOKEN, "tenant": f"{TOKEN}/x"}},
        {"host": "kestra.example.com", "extras": {"token": TOKEN, "api_version": TOKEN}},
    ],
    ids=["user-info-in-host", "bad-port", "schema", "timeout", "tenant", "api-version"],
)
def test_connection_errors_never_show_a_credential(
    reliability: KestraReliabilityRecorder, fields: dict[str, Any]
) -> None:
    """Case 16: a URL with user info typed into the host, or a secret pasted into the schema, timeout, tenant
    or api_version field: the configuration error names the field, with the secret shown as ``***``."""
    from airflow_provider_kestra.exceptions import KestraConfigError
    from airflow_provider_kestra.utils.connection import settings_from_fields

    with reliability.bad_input():
        with pytest.raises(KestraConfigError) as info:
            settings_from_fields(**fields)
        assert_no_secret("the configuration error", str(info.value), [PASSWORD, TOKEN])
        assert "***" in str(info.value) or "a value of" in str(info.value)


def test_user_info_in_the_host_never_reaches_the_base_url() -> None:
    """User info typed into the host is dropped: it would otherwise show in every error naming the URL."""
    from airflow_provider_kestra.utils.connection import settings_from_fields

    for host, schema in (
        (f"https://{USERNAME}:{PASSWORD}@kestra.example.com", None),
        (f"me:{PASSWORD}@k.io", "https"),
    ):
        settings = settings_from_fields(host=host, schema=schema)
        assert PASSWORD not in settings.base_url and "@" not in settings.base_url
