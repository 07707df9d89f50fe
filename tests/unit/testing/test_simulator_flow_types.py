"""Subflow, Dag, ForEach and the Schedule trigger: Kestra's deploy-time checks and how they run.

Written from kestra-io/kestra ``core/src/main/java/io/kestra/plugin/core/flow/Subflow.java`` @048d4844,
``Dag.java`` @0485db05, ``ForEach.java`` @005dd2f7, ``plugin/core/trigger/Schedule.java`` @00a7b504,
``core/validations/validator/DagTaskValidator.java`` @23491051 (its test asserts the path ``tasks[0]``),
``ScheduleValidator.java`` (``invalid cron expression '<cron>': <cron-utils message>``),
``TimezoneIdValidator.java`` @8a172f60, ``core/runners/ExecutableUtils.java`` @ec022c91 (subflow
execution: trigger variables, system labels, ``guessState``), ``core/runners/FlowableUtils.java``
(``resolveDagNexts``: a task starts once its dependencies are terminal; ``resolveEachTasks``: one task run
per distinct value with ``value`` and ``iteration``) and ``serializers/YamlParser.java`` (``Illegal flow
yaml: <Jackson message>`` on the path ``yaml``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from kestra_sim_client import YAML, SimClient, flow_source, return_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
DAG = "io.kestra.plugin.core.flow.Dag"
FOREACH = "io.kestra.plugin.core.flow.ForEach"
SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
RETURN = "io.kestra.plugin.core.debug.Return"
FAIL = "io.kestra.plugin.core.execution.Fail"


@pytest.fixture(scope="module")
def sim() -> Iterator[KestraSimulator]:
    with KestraSimulator(task_delay=0.0, start_delay=0.0) as simulator:
        yield simulator


@pytest.fixture
def client(sim: KestraSimulator) -> SimClient:
    return SimClient(sim)


def refused(client: SimClient, source: str) -> dict[str, Any]:
    """The 422 body of deploying an invalid flow."""
    response = client.request("POST", "/flows", data=source, headers=YAML)
    assert response.status_code == 422, response.text
    return dict(response.json())


def errors_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in body["_embedded"]["errors"]]


def subflow_task(extra: str = "", namespace: str = "company.team", flow_id: str = "child") -> str:
    return f"  - id: call\n    type: {SUBFLOW}\n    namespace: {namespace}\n    flowId: {flow_id}\n" + extra


def dag_task(items: str) -> str:
    return f"  - id: dag\n    type: {DAG}\n    tasks:\n" + items


def dag_item(task_id: str, depends: list[str] | None = None) -> str:
    item = (
        f'      - task:\n          id: {task_id}\n          type: {RETURN}\n          format: "{task_id}"\n'
    )
    if depends is not None:
        item += "        dependsOn: [" + ", ".join(depends) + "]\n"
    return item


def run_and_wait(client: SimClient, flow_id: str, limit: float = 60.0, **inputs: str) -> dict[str, Any]:
    execution = client.run("company.team", flow_id, inputs=inputs or None)
    return client.wait(execution["id"], limit=limit)


# -- Subflow -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            f"  - id: call\n    type: {SUBFLOW}\n    flowId: child\n",
            [("tasks[0].namespace", "must not be null")],
        ),
        (
            f"  - id: call\n    type: {SUBFLOW}\n    namespace: a.b\n",
            [("tasks[0].flowId", "must not be null")],
        ),
        (subflow_task(namespace='""'), [("tasks[0].namespace", "must not be empty")]),
        (subflow_task("    revision: 0\n"), [("tasks[0].revision", "must be greater than or equal to 1")]),
        (
            subflow_task("    labels:\n      system.foo: bar\n"),
            [
                (
                    "tasks[0].labels[0]",
                    "System labels can only be set by Kestra itself, offending label: system.foo=bar.",
                )
            ],
        ),
    ],
)
def test_subflow_bean_validation(client: SimClient, task: str, expected: list[tuple[str, str]]) -> None:
    assert errors_of(refused(client, flow_source(unique(), task))) == expected


_CANNOT = "Cannot deserialize value of type "
_ARRAY = "from Array value (token `JsonToken.START_ARRAY`)"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    wait: yes please\n",
         _CANNOT + '`java.lang.Boolean` from String "yes please": only "true" or "false" recognized'),
        ("    revision: latest\n",
         _CANNOT + '`java.lang.Integer` from String "latest": not a valid `java.lang.Integer` value'),
        ("    inputs: [a, b]\n",
         _CANNOT + "`java.util.LinkedHashMap<java.lang.String,java.lang.Object>` " + _ARRAY),
        ("    transmitFailed: [true]\n", _CANNOT + "`java.lang.Boolean` " + _ARRAY),
    ],
)  # fmt: skip
def test_subflow_property_of_the_wrong_type_is_an_illegal_flow_yaml(
    client: SimClient, extra: str, message: str
) -> None:
    body = refused(client, flow_source(unique(), subflow_task(extra)))
    assert body["message"] == f"Invalid entity: Illegal flow yaml: {message}"
    assert errors_of(body) == [("yaml", message)]


def test_subflow_unknown_property_is_unrecognized(client: SimClient) -> None:
    body = refused(client, flow_source(unique(), subflow_task("    flow: x\n")))
    assert f'Unrecognized field "flow" (class {SUBFLOW})' in body["message"]


def test_subflow_waits_for_the_child_and_takes_its_outputs(client: SimClient) -> None:
    child = unique("child")
    client.deploy(
        flow_source(child, return_task("r", "{{ inputs.who | upper }}"),
                    extra="inputs:\n  - id: who\n    type: STRING\n  - id: n\n    type: INT\n"
                    "outputs:\n  - id: greeting\n    type: STRING\n    value: \"hi {{ outputs.r.value }}\"\n")
    )  # fmt: skip
    parent = unique("parent")
    call = subflow_task(
        "    inputs:\n      who: bob\n      n: 3\n    labels:\n      team: data\n", flow_id=child
    )
    after = f'  - id: after\n    type: {RETURN}\n    format: "{{{{ outputs.call.outputs.greeting }}}}"\n'
    client.deploy(flow_source(parent, call + after))
    execution = run_and_wait(client, parent)
    assert execution["state"]["current"] == "SUCCESS"
    runs = {tr["taskId"]: tr for tr in execution["taskRunList"]}
    call = runs["call"]["outputs"]
    assert call["state"] == "SUCCESS" and call["outputs"] == {"greeting": "hi BOB"}
    assert runs["after"]["outputs"] == {"value": "hi BOB"}
    sub = client.get(call["executionId"])
    assert (sub["namespace"], sub["flowId"], sub["state"]["current"]) == ("company.team", child, "SUCCESS")
    assert sub["inputs"] == {"who": "bob", "n": 3}
    assert sub["trigger"] == {
        "id": "call",
        "type": SUBFLOW,
        "variables": {"executionId": execution["id"], "namespace": "company.team", "flowId": parent,
                      "flowRevision": 1},
    }  # fmt: skip
    labels = {label["key"]: label["value"] for label in sub["labels"]}
    assert labels["team"] == "data"
    # the child keeps the parent's system labels (correlation id), not its other labels
    assert labels["system.correlationId"] == execution["id"]


@pytest.mark.parametrize(("transmit", "expected"), [("true", "FAILED"), ("false", "SUCCESS")])
def test_subflow_failure_is_transmitted_only_with_transmit_failed(
    client: SimClient, transmit: str, expected: str
) -> None:
    child = unique("child")
    client.deploy(flow_source(child, f"  - id: boom\n    type: {FAIL}\n    errorMessage: nope\n"))
    parent = unique("parent")
    client.deploy(flow_source(parent, subflow_task(f"    transmitFailed: {transmit}\n", flow_id=child)))
    execution = run_and_wait(client, parent)
    assert execution["state"]["current"] == expected
    (call,) = execution["taskRunList"]
    assert (call["state"]["current"], call["outputs"]["state"]) == (expected, "FAILED")


def test_subflow_without_wait_succeeds_at_once_with_the_child_id(client: SimClient) -> None:
    child = unique("child")
    client.deploy(
        flow_source(child, "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1S\n")
    )
    parent = unique("parent")
    client.deploy(flow_source(parent, subflow_task("    wait: false\n", flow_id=child)))
    execution = run_and_wait(client, parent)
    assert execution["state"]["current"] == "SUCCESS"
    (call,) = execution["taskRunList"]
    assert list(call["outputs"]) == ["executionId"]
    assert client.get(call["outputs"]["executionId"])["state"]["current"] in ("CREATED", "RUNNING")


def test_subflow_of_a_missing_flow_fails_with_kestras_message(client: SimClient) -> None:
    parent = unique("parent")
    client.deploy(flow_source(parent, subflow_task(flow_id="nowhere")))
    execution = run_and_wait(client, parent)
    assert execution["state"]["current"] == "FAILED"
    logs = client.request("GET", f"/logs/{execution['id']}").json()
    assert "Unable to find flow 'company.team'.'nowhere' with revision '0'" in [e["message"] for e in logs]


def test_subflow_bad_input_fails_the_task_with_the_input_message(client: SimClient) -> None:
    child = unique("child")
    client.deploy(flow_source(child, return_task(), extra="inputs:\n  - id: n\n    type: INT\n"))
    parent = unique("parent")
    client.deploy(flow_source(parent, subflow_task("    inputs:\n      n: many\n", flow_id=child)))
    execution = run_and_wait(client, parent)
    assert execution["state"]["current"] == "FAILED"
    logs = [e["message"] for e in client.request("GET", f"/logs/{execution['id']}").json()]
    assert any("n" in m and "many" in m for m in logs), logs


# -- Dag ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (dag_item("a") + dag_item("b", ["x", "a", "y"]), "Not existing task id in dependency: x, y"),
        (
            dag_item("a", ["b"]) + dag_item("b", ["a"]) + dag_item("c", ["a"]),
            "Cyclic dependency detected: a, b",
        ),
        (dag_item("a", ["a"]), "Cyclic dependency detected: a"),
    ],
)
def test_dag_dependency_errors_as_dag_task_validator_reports_them(
    client: SimClient, items: str, expected: str
) -> None:
    body = refused(client, flow_source(unique(), dag_task(items)))
    assert errors_of(body) == [("tasks[0]", expected)]
    assert body["message"] == f"Invalid entity: tasks[0]: {expected}"


def test_dag_needs_tasks_and_each_item_a_task(client: SimClient) -> None:
    empty = refused(client, flow_source(unique(), f"  - id: dag\n    type: {DAG}\n    tasks: []\n"))
    assert errors_of(empty) == [("tasks[0].tasks", "must not be empty"), ("tasks[0]", "No task defined")]
    no_task = refused(client, flow_source(unique(), dag_task(dag_item("a") + "      - dependsOn: [a]\n")))
    assert errors_of(no_task) == [("tasks[0].tasks[1].task", "must not be null")]
    extra = refused(client, flow_source(unique(), dag_task(dag_item("a") + "        after: [a]\n")))
    assert 'Unrecognized field "after" (class io.kestra.plugin.core.flow.Dag$DagTask)' in extra["message"]


def test_dag_depends_on_must_be_a_list(client: SimClient) -> None:
    body = refused(
        client, flow_source(unique(), dag_task(dag_item("a") + dag_item("b") + "        dependsOn: a\n"))
    )
    message = (
        _CANNOT + "`java.util.ArrayList<java.lang.String>` from String value (token `JsonToken.VALUE_STRING`)"
    )
    assert errors_of(body) == [("yaml", message)]


def test_dag_runs_tasks_after_their_dependencies(client: SimClient) -> None:
    flow_id = unique()
    items = (
        dag_item("t5", ["t4", "t3"]) + dag_item("t1") + dag_item("t2", ["t1"]) + dag_item("t3", ["t1"])
        + dag_item("t4", ["t2"])
    )  # fmt: skip
    client.deploy(flow_source(flow_id, dag_task(items)))
    execution = run_and_wait(client, flow_id)
    assert execution["state"]["current"] == "SUCCESS"
    runs = {tr["taskId"]: tr for tr in execution["taskRunList"]}
    dag_id = runs["dag"]["id"]
    assert all(runs[t]["parentTaskRunId"] == dag_id for t in ("t1", "t2", "t3", "t4", "t5"))

    def ended(task_id: str) -> str:
        return str(runs[task_id]["state"]["endDate"])

    def started(task_id: str) -> str:
        return str(runs[task_id]["state"]["startDate"])

    for task_id, deps in {"t2": ["t1"], "t3": ["t1"], "t4": ["t2"], "t5": ["t4", "t3"]}.items():
        assert all(started(task_id) >= ended(dep) for dep in deps), task_id


def test_dag_property_fields_are_strings_in_the_flow_json_on_1_x(client: SimClient) -> None:
    flow_id = unique()
    values = "      - task:\n          id: v\n          type: io.kestra.plugin.core.output.OutputValues\n"
    values += "          values:\n            n: 1\n"
    client.deploy(
        flow_source(flow_id, dag_task(values).replace("    tasks:\n", "    concurrent: 2\n    tasks:\n", 1))
    )
    (dag,) = client.request("GET", f"/flows/company.team/{flow_id}").json()["tasks"]
    assert dag["concurrent"] == "2"  # Dag.concurrent is a Property<Integer>
    assert dag["tasks"][0]["task"]["values"] == '{"n":1}'


def test_dag_failure_stops_what_depends_on_it(client: SimClient) -> None:
    flow_id = unique()
    items = "      - task:\n          id: bad\n          type: " + FAIL + "\n" + dag_item("after", ["bad"])
    client.deploy(flow_source(flow_id, dag_task(items)))
    execution = run_and_wait(client, flow_id)
    assert execution["state"]["current"] == "FAILED"
    assert sorted(tr["taskId"] for tr in execution["taskRunList"]) == ["bad", "dag"]


# -- ForEach -----------------------------------------------------------------------------------------------


def foreach_task(values: str, extra: str = "", body: str = "") -> str:
    echo = '"{{ taskrun.value }}-{{ taskrun.iteration }}"'
    body = body or f"      - id: echo\n        type: {RETURN}\n        format: {echo}\n"
    return f"  - id: each\n    type: {FOREACH}\n    values: {values}\n{extra}    tasks:\n{body}"


def test_foreach_validation(client: SimClient) -> None:
    no_values = refused(
        client,
        flow_source(
            unique(),
            f"  - id: each\n    type: {FOREACH}\n    tasks:\n"
            + return_task().replace("  - ", "      - ").replace("\n    ", "\n        "),
        ),
    )
    assert errors_of(no_values) == [("tasks[0].values", "must not be null")]
    bad_limit = refused(client, flow_source(unique(), foreach_task("[a]", "    concurrencyLimit: two\n")))
    assert bad_limit["message"].startswith(
        "Invalid entity: Illegal flow yaml: " + _CANNOT + '`java.lang.Integer` from String "two"'
    )


def test_foreach_runs_its_tasks_per_distinct_value_with_value_and_iteration(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(
        flow_source(flow_id, foreach_task('["a", "b", "a", {"k": 1}, 7]')
                    + f'  - id: after\n    type: {RETURN}\n    format: "{{{{ outputs.echo.b.value }}}}"\n')
    )  # fmt: skip
    execution = run_and_wait(client, flow_id)
    assert execution["state"]["current"] == "SUCCESS"
    echoes = [tr for tr in execution["taskRunList"] if tr["taskId"] == "echo"]
    assert [(tr["value"], tr["iteration"], tr["outputs"]["value"]) for tr in echoes] == [
        ("a", 0, "a-0"), ("b", 1, "b-1"), ('{"k":1}', 2, '{"k":1}-2'), ("7", 3, "7-3"),
    ]  # fmt: skip
    each = next(tr for tr in execution["taskRunList"] if tr["taskId"] == "each")
    assert all(tr["parentTaskRunId"] == each["id"] for tr in echoes)
    assert "value" not in each
    after = next(tr for tr in execution["taskRunList"] if tr["taskId"] == "after")
    assert after["outputs"] == {"value": "b-1"}


def test_foreach_nested_tasks_see_parent_taskrun_value(client: SimClient) -> None:
    flow_id = unique()
    body = (
        "      - id: group\n        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n"
        f"          - id: inner\n            type: {RETURN}\n"
        '            format: "{{ parent.taskrun.value }}!"\n'
    )
    client.deploy(flow_source(flow_id, foreach_task("[x, y]", "    concurrencyLimit: 2\n", body)))
    execution = run_and_wait(client, flow_id)
    assert execution["state"]["current"] == "SUCCESS"
    inner = sorted(tr["outputs"]["value"] for tr in execution["taskRunList"] if tr["taskId"] == "inner")
    assert inner == ["x!", "y!"]


def test_foreach_null_value_fails_as_kestra_does(client: SimClient) -> None:
    flow_id = unique()
    client.deploy(flow_source(flow_id, foreach_task("'[\"a\", null]'")))
    execution = run_and_wait(client, flow_id)
    assert execution["state"]["current"] == "FAILED"
    logs = [e["message"] for e in client.request("GET", f"/logs/{execution['id']}").json()]
    assert "Found '1' null values on Each, with values=[a, null]" in logs


def test_foreach_with_1500_task_runs(client: SimClient) -> None:
    flow_id = unique()
    values = "[" + ", ".join(str(i) for i in range(750)) + "]"
    body = (
        f'      - id: one\n        type: {RETURN}\n        format: "{{{{ taskrun.value }}}}"\n'
        f'      - id: two\n        type: {RETURN}\n        format: "{{{{ taskrun.iteration }}}}"\n'
    )
    client.deploy(flow_source(flow_id, foreach_task(values, "    concurrencyLimit: 0\n", body)))
    started = time.monotonic()
    execution = run_and_wait(client, flow_id, limit=120)
    assert execution["state"]["current"] == "SUCCESS", time.monotonic() - started
    runs = execution["taskRunList"]
    assert len(runs) == 1501
    assert sorted(int(tr["value"]) for tr in runs if tr["taskId"] == "one") == list(range(750))
    assert all(tr["outputs"]["value"] == str(tr["iteration"]) for tr in runs if tr["taskId"] == "two")
    assert {tr["parentTaskRunId"] for tr in runs[1:]} == {runs[0]["id"]}


# -- Schedule ----------------------------------------------------------------------------------------------


def schedule(extra: str) -> str:
    return f"triggers:\n  - id: every\n    type: {SCHEDULE}\n{extra}"


@pytest.mark.parametrize(
    "cron", ["*/15 * * * *", "0 9 * * MON-FRI", "@hourly", "30 6 1,15 JAN-JUN ?", "0 0 * * 7"]
)
def test_schedule_with_a_valid_cron_is_accepted_and_never_fires(client: SimClient, cron: str) -> None:
    flow_id = unique()
    client.deploy(
        flow_source(
            flow_id, return_task(), extra=schedule(f'    cron: "{cron}"\n    timezone: Europe/Paris\n')
        )
    )
    found = client.request("GET", "/executions/search", params={"filters[flowId][EQUALS]": flow_id}).json()
    assert found["total"] == 0


def _cron(cron: str, problem: str) -> list[tuple[str, str]]:
    return [("triggers[0]", f"invalid cron expression '{cron}': {problem}")]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('    cron: "* * *"\n', _cron("* * *", "Cron expression contains 3 parts but we expect one of [5]")),
        ('    cron: "61 * * * *"\n',
         _cron("61 * * * *", "Failed to parse '61 * * * *'. Value 61 not in range [0, 59]")),
        ('    cron: "0 0 * * *"\n    withSeconds: true\n',
         _cron("0 0 * * *", "Cron expression contains 5 parts but we expect one of [6]")),
        ('    cron: "@reboot"\n',
         _cron("@reboot", "Failed to parse '@reboot'. "
               "Invalid chars in expression! Expression: @REBOOT Invalid chars: @")),
        ("    timezone: UTC\n", [("triggers[0].cron", "must not be null")]),
        ('    cron: "0 0 * * *"\n    timezone: Mars/Olympus\n',
         [("triggers[0].timezone", "timezone '(Mars/Olympus)' is not a valid time-zone ID")]),
    ],
)  # fmt: skip
def test_schedule_refused_as_schedule_validator_does(
    client: SimClient, extra: str, expected: list[tuple[str, str]]
) -> None:
    assert errors_of(refused(client, flow_source(unique(), return_task(), extra=schedule(extra)))) == expected


def test_schedule_unknown_property_is_unrecognized(client: SimClient) -> None:
    body = refused(
        client, flow_source(unique(), return_task(), extra=schedule('    cron: "@daily"\n    every: 1h\n'))
    )
    assert f'Unrecognized field "every" (class {SCHEDULE})' in body["message"]


@pytest.mark.parametrize("kestra_version", ["0.22", "2.0"])
def test_foreach_and_subflow_run_on_the_other_profiles(kestra_version: str) -> None:
    with KestraSimulator(kestra_version=kestra_version, task_delay=0.0) as other:
        client = SimClient(other)
        child = unique("child")
        client.deploy(flow_source(child, return_task()))
        flow_id = unique()
        client.deploy(flow_source(flow_id, foreach_task("[a, b]") + subflow_task(flow_id=child)))
        execution = run_and_wait(client, flow_id)
        assert execution["state"]["current"] == "SUCCESS"
        echoes = [(tr["value"], tr["iteration"]) for tr in execution["taskRunList"] if tr["taskId"] == "echo"]
        assert echoes == [("a", 0), ("b", 1)]
        (call,) = [tr for tr in execution["taskRunList"] if tr["taskId"] == "call"]
        assert call["state"]["current"] == "SUCCESS"


def test_restarting_the_parent_runs_a_failed_subflow_again(client: SimClient) -> None:
    child = unique("child")
    client.deploy(flow_source(child, f"  - id: boom\n    type: {FAIL}\n"))
    parent = unique("parent")
    client.deploy(flow_source(parent, subflow_task(flow_id=child)))
    first = run_and_wait(client, parent)
    (call,) = first["taskRunList"]
    assert first["state"]["current"] == "FAILED"
    fixed = client.request(
        "PUT", f"/flows/company.team/{child}", data=flow_source(child, return_task()), headers=YAML
    )
    assert fixed.status_code == 200, fixed.text
    restarted = client.request("POST", f"/executions/{first['id']}/restart")
    assert restarted.status_code == 200, restarted.text
    again = client.wait(first["id"])  # RESTARTED is not terminal: this waits for the second run
    assert again["state"]["current"] == "SUCCESS"
    (call_again,) = again["taskRunList"]
    assert call_again["outputs"]["executionId"] != call["outputs"]["executionId"]
    assert call_again["outputs"]["state"] == "SUCCESS"
