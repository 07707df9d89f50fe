"""Kestra's own controller tests, transcribed and run against the simulator on profiles 1.3 and 2.0.

Each test names the Java test method it transcribes. The Java tests read are Kestra 1.3.25's
(``binhth-vuejx/kestra-1.3.25`` @2a102a6a, a verbatim upload of the release):
``webserver/src/test/java/io/kestra/webserver/controllers/api/ExecutionControllerTest.java``,
``ExecutionControllerRunnerTest.java``, ``FlowControllerTest.java`` and ``LogControllerTest.java``. Their
flows come from Kestra's test resources; here each test deploys an equivalent flow of core tasks.

On 2.0 the same assertions run where Kestra's 2.0 source answers the same; where it does not, the 2.0
expectation comes from the 2.0 source and the test says so (``DEPARTS_2_0``): errors are RFC 9457 problems
(``detail`` carries what 1.x puts after ``<Reason>: ``; ``webserver/.../errors/ProblemFactory.java``
@a5a9d5d2), actions are awaited commands answering ``200 Execution`` (``ExecutionController.java``, the
``awaitBlockingAction`` version, code index file 54490078967). Java ``assertThat`` calls map one to one to
``assert`` statements (a few comparisons of a whole object count as one).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator

YAML = {"Content-Type": "application/x-yaml"}
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED"}
RETURN = "  - id: ret\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\n"
SLEEP = "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n"
PAUSE = "  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n"
FAIL = "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"
DEPARTS_2_0 = "Kestra 2.0 source answers differently here"


class Kestra:
    """One simulator profile seen as Kestra's tests see a server: raw HTTP on ``/api/v1/main``."""

    def __init__(self, sim: KestraSimulator, http: httpx.Client) -> None:
        self.sim = sim
        self.http = http
        self.v2 = sim.profile.problem_json
        self.act = "actions/" if sim.profile.actions_under_actions else ""

    def __call__(self, method: str, path: str, **request: Any) -> httpx.Response:
        return self.http.request(method, "/api/v1/main" + path, **request)

    def message(self, response: httpx.Response) -> str:
        """The error text: the 1.x JsonError ``message``; on 2.0 the problem's ``detail``."""
        body = response.json()
        return str(body["detail"] if self.v2 else body["message"])

    def error(self, reason: str, detail: str) -> str:
        """What :meth:`message` reads for an error ``<reason>: <detail>`` of 1.x (only ``detail`` on 2.0)."""
        return detail if self.v2 else f"{reason}: {detail}"

    def deploy(self, namespace: str, flow_id: str, tasks: str, extra: str = "") -> dict[str, Any]:
        response = self("POST", "/flows", content=flow(namespace, flow_id, tasks, extra), headers=YAML)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def create(self, namespace: str, flow_id: str, **request: Any) -> httpx.Response:
        return self("POST", f"/executions/{namespace}/{flow_id}", **request)

    def get(self, execution_id: str) -> dict[str, Any]:
        return dict(self("GET", f"/executions/{execution_id}").json())

    def wait(self, execution_id: str, states: set[str] = TERMINAL) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while True:
            execution = self.get(execution_id)
            if execution["state"]["current"] in states or time.monotonic() > deadline:
                return execution
            time.sleep(0.01)

    def run(self, namespace: str, flow_id: str, until: set[str] = TERMINAL) -> dict[str, Any]:
        response = self.create(namespace, flow_id)
        assert response.status_code == 200, response.text
        return self.wait(response.json()["id"], until)


def flow(namespace: str, flow_id: str, tasks: str, extra: str = "") -> str:
    return f"id: {flow_id}\n# Comment i added\nnamespace: {namespace}\n{extra}tasks:\n{tasks}"


def generated(namespace: str, flow_id: str, input_id: str) -> str:
    """``FlowControllerTest#generateFlowAsString``: one input ``input_id`` and a Return task."""
    return flow(namespace, flow_id, RETURN, extra=f"inputs:\n  - id: {input_id}\n    type: STRING\n")


@pytest.fixture(params=["1.3", "2.0"])
def kestra(request: pytest.FixtureRequest) -> Iterator[Kestra]:
    sim: KestraSimulator = request.getfixturevalue("simulator_" + request.param.replace(".", "_"))
    with httpx.Client(base_url=sim.url, auth=(sim.username, sim.password), timeout=30) as http:
        yield Kestra(sim, http)


def unique(prefix: str = "f") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- ExecutionControllerTest ------------------------------------------------------------------------------


def test_get_execution_not_found(kestra: Kestra) -> None:
    """ExecutionControllerTest#getExecutionNotFound."""
    assert kestra("GET", "/executions/exec_id_not_found").status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "GET"])
def test_webhook_flow_not_found(kestra: Kestra, method: str) -> None:
    """ExecutionControllerTest#webhookFlowNotFound (POST with a map, a list and a string, PUT, GET)."""
    bodies = {"POST": [{"a": 1, "b": True}, "bla"], "PUT": [[{"a": 1, "b": True}]], "GET": [None]}
    for body in bodies[method]:
        response = kestra(
            method, "/executions/webhook/not-found/webhook/not-found?name=john&age=12&age=13", json=body
        )
        assert response.status_code == 404
        assert kestra.error("Not Found", "Flow not found") in kestra.message(response)


def test_webhook_dynamic_key(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#webhookDynamicKey (flows/valids/webhook-dynamic-key.yaml: key from flow.id)."""
    trigger = (
        'triggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: "{{ flow.id }}"\n'
    )
    kestra.deploy(namespace, "webhook-dynamic-key", RETURN, extra=trigger)
    response = kestra("GET", f"/executions/webhook/{namespace}/webhook-dynamic-key/webhook-dynamic-key")
    assert response.status_code == 200
    assert response.json()["id"]


def test_null_and_duplicated_labels(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#nullLabels and #duplicatedLabels (RequestUtils.toMap refusals)."""
    kestra.deploy(namespace, "inputs", RETURN)
    for labels in (":value", "key:"):
        assert kestra.create(namespace, "inputs", params={"labels": labels}).status_code == 422
    duplicated = kestra.create(namespace, "inputs", params={"labels": ["key:value1", "key:value2"]})
    assert duplicated.status_code == 422
    assert "The queryString parameter keys contains duplicities" in kestra.message(duplicated)


def test_bad_query_filters(kestra: Kestra) -> None:
    """ExecutionControllerTest#badQueryFilters."""
    response = kestra("GET", "/executions/search", params={"filters[triggerId][EQUALS]": "test"})
    assert response.status_code == 400
    assert kestra.message(response) == kestra.error(
        "Invalid query filters",
        "Provided query filters are invalid: Field TRIGGER_ID is not supported for resource EXECUTION. "
        "Supported fields are QUERY, SCOPE, FLOW_ID, START_DATE, END_DATE, STATE, LABELS, "
        "TRIGGER_EXECUTION_ID, CHILD_FILTER, NAMESPACE, KIND",
    )
    dates = {
        "filters[startDate][EQUALS]": "2024-06-03T00:00:00.000+02:00",
        "filters[endDate][EQUALS]": "2023-06-05T00:00:00.000+02:00",
    }
    response = kestra("GET", "/executions/search", params=dates)
    assert response.status_code == 422
    assert kestra.message(response) == kestra.error("Illegal argument", "Start date must be before End Date")
    legacy = {"startDate": "2024-06-03T00:00:00.000+02:00", "endDate": "2023-06-05T00:00:00.000+02:00"}
    response = kestra("GET", "/executions/search", params=legacy)
    assert response.status_code == 422
    assert kestra.message(response) == kestra.error("Illegal argument", "Start date must be before End Date")


def test_comma_in_single_labels_value(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#commaInSingleLabelsValue (create, search with filters and legacy labels)."""
    kestra.deploy(namespace, "inputs", RETURN)
    for _ in range(2):
        created = kestra.create(namespace, "inputs", params={"labels": "project:foo,bar"}).json()
        assert {"key": "project", "value": "foo,bar"} in created["labels"]
    scope = {"filters[namespace][EQUALS]": namespace}
    found = kestra(
        "GET", "/executions/search", params={**scope, "filters[labels][EQUALS][project]": "foo,bar"}
    )
    assert found.json()["total"] == 2
    legacy = kestra("GET", "/executions/search", params={"namespace": namespace, "labels": "project:foo,bar"})
    assert legacy.json()["total"] == 2
    by_trigger = kestra("GET", "/executions/search", params={"triggerExecutionId": "test"})
    assert by_trigger.json()["total"] == 0


def test_comma_in_one_of_multi_labels(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#commaInOneOfMultiLabels."""
    kestra.deploy(namespace, "inputs", RETURN)
    created = kestra.create(namespace, "inputs", params={"labels": ["project:foo,bar", "status:test"]}).json()
    assert {"key": "project", "value": "foo,bar"} in created["labels"]
    assert {"key": "status", "value": "test"} in created["labels"]
    params = {
        "filters[namespace][EQUALS]": namespace,
        "filters[labels][EQUALS][project]": "foo,bar",
        "filters[labels][EQUALS][status]": "test",
    }
    assert kestra("GET", "/executions/search", params=params).json()["total"] == 1
    legacy = {"namespace": namespace, "labels": ["project:foo,bar", "status:test"]}
    assert kestra("GET", "/executions/search", params=legacy).json()["total"] == 1


def test_schedule_date(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#scheduleDate: an ISO zoned date-time, answered as the Instant."""
    kestra.deploy(namespace, "minimal", RETURN)
    now = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0) + timedelta(seconds=1)
    execution = kestra.create(namespace, "minimal", params={"scheduleDate": now.isoformat()}).json()
    assert execution["scheduleDate"] == now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_should_have_an_url_when_created(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#shouldHaveAnUrlWhenCreated (kestra.url is the simulator's own URL)."""
    kestra.deploy(namespace, "minimal", RETURN)
    execution = kestra.create(namespace, "minimal").json()
    assert execution["url"] == f"{kestra.sim.url}/ui/main/executions/{namespace}/minimal/{execution['id']}"


def test_should_refuse_system_labels_when_creating_an_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerTest#shouldRefuseSystemLabelsWhenCreatingAnExecution."""
    kestra.deploy(namespace, "minimal", RETURN)
    assert kestra.create(namespace, "minimal", params={"labels": "system.label:system"}).status_code == 422


# -- ExecutionControllerRunnerTest ------------------------------------------------------------------------


def test_trigger_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#triggerExecution (flows/valids/inputs.yaml, what it asserts)."""
    inputs = "inputs:\n  - id: float\n    type: FLOAT\n  - id: bool\n    type: BOOL\n    required: false\n"
    kestra.deploy(namespace, "inputs", RETURN, extra="labels:\n  flow-label-1: flow-label-1\n" + inputs)
    result = kestra.create(
        namespace, "inputs", params={"labels": ["a:label-1"]}, files={"float": (None, "42.42")}
    )
    execution = result.json()
    assert execution["state"]["current"] == "CREATED"
    assert execution["flowId"] == "inputs"
    assert execution["inputs"]["float"] == 42.42
    assert "bool" in execution["inputs"] and execution["inputs"]["bool"] is None
    assert sorted((label["key"], label["value"]) for label in execution["labels"]) == sorted(
        [
            ("flow-label-1", "flow-label-1"),
            ("a", "label-1"),
            ("system.correlationId", execution["id"]),
            ("system.from", "api"),
        ]
    )
    assert kestra("POST", "/executions/foo/bar").status_code == 404


def test_flow_labels_get_overridden_by_execution_labels_on_same_key(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#flowLabelsGetsOverriddenByExecutionLabelsOnSameKey."""
    kestra.deploy(namespace, "minimal", RETURN, extra="labels:\n  existing: fromFlow\n")
    created = kestra.create(namespace, "minimal", params={"labels": "existing:fromExecution", "wait": "true"})
    execution = kestra.get(created.json()["id"])
    assert sorted((label["key"], label["value"]) for label in execution["labels"]) == sorted(
        [("system.correlationId", execution["id"]), ("system.from", "api"), ("existing", "fromExecution")]
    )


def test_invalid_inputs(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#invalidInputs (validatedString: validator ``A\\d+``)."""
    extra = 'inputs:\n  - id: validatedString\n    type: STRING\n    validator: "A\\\\d+"\n'
    kestra.deploy(namespace, "inputs", RETURN, extra=extra)
    response = kestra.create(namespace, "inputs", files={"validatedString": (None, "B-failed")})
    assert response.status_code == 422
    assert ("invalid-entity" if kestra.v2 else "Invalid entity") in response.text
    assert "Invalid value for input `validatedString`" in response.text


def test_trigger_execution_and_wait_and_get_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#triggerExecutionAndWait and #getExecution."""
    kestra.deploy(namespace, "inputs", RETURN + RETURN.replace("id: ret", "id: ret2"))
    waited = kestra.create(namespace, "inputs", params={"wait": "true"}).json()
    assert waited["state"]["current"] == "SUCCESS"
    assert len(waited["taskRunList"]) == 2
    found = kestra.get(waited["id"])
    assert found["id"] == waited["id"]
    assert found["namespace"] == waited["namespace"]


def test_search_executions_by_flow_id(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#searchExecutionsByFlowId (``GET /executions?namespace=&flowId=``)."""
    kestra.deploy(namespace, "minimal-bis", RETURN)
    params = {"namespace": namespace, "flowId": "minimal-bis"}
    assert kestra("GET", "/executions", params=params).json()["total"] == 0
    kestra.create(namespace, "minimal-bis")
    assert kestra("GET", "/executions", params=params).json()["total"] == 1


def test_restart_execution_with_no_failure(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#restartExecutionWithNoFailure. 2.0 (``DEPARTS_2_0``): the restart is an
    awaited command the executor refuses, 409 ``Failed to execute action 'Restart' ...``."""
    kestra.deploy(namespace, "restart_with_inputs", RETURN)
    execution = kestra.run(namespace, "restart_with_inputs")
    response = kestra("POST", f"/executions/{execution['id']}/{kestra.act}restart")
    assert response.status_code == (409 if kestra.v2 else 422)
    assert "No task found to restart" in response.text


def test_restart_execution_should_fail_for_killed(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#restartExecutionShouldFailForKilled (pause-test, killed while paused).
    2.0 (``DEPARTS_2_0``): 200 ``Execution`` for kill, 409 ``conflict`` with ConflictException's wording."""
    kestra.deploy(namespace, "pause-test", PAUSE)
    paused = kestra.run(namespace, "pause-test", {"PAUSED"})
    killed = kestra("DELETE", f"/executions/{paused['id']}/{kestra.act}kill")
    assert killed.status_code == (200 if kestra.v2 else 202)
    assert kestra.wait(paused["id"])["state"]["current"] == "KILLED"
    response = kestra("POST", f"/executions/{paused['id']}/{kestra.act}restart")
    assert response.status_code == 409
    if kestra.v2:
        expected = "Cannot restart execution: current state is 'KILLED', expected terminated or paused."
    else:
        expected = (
            "Illegal state: Execution must be terminated or paused and not killed to be restarted, "
            "current state is 'KILLED' !"
        )
    assert kestra.message(response) == expected


def test_kill_execution_paused(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#killExecutionPaused: KILLED with its one task run."""
    kestra.deploy(namespace, "pause-test", PAUSE)
    paused = kestra.run(namespace, "pause-test", {"PAUSED"})
    assert paused["state"]["current"] == "PAUSED"
    assert kestra("DELETE", f"/executions/{paused['id']}/{kestra.act}kill").status_code == (
        200 if kestra.v2 else 202
    )
    killed = kestra.wait(paused["id"])
    assert killed["state"]["current"] == "KILLED"
    assert len(killed["taskRunList"]) == 1


def test_kill_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#killExecution (sleep-long): KILLING then KILLED, the task run KILLED."""
    kestra.deploy(namespace, "sleep-long", SLEEP)
    running = kestra.run(namespace, "sleep-long", {"RUNNING"})
    assert running["state"]["current"] == "RUNNING"
    assert kestra("DELETE", f"/executions/{running['id']}/{kestra.act}kill").status_code == (
        200 if kestra.v2 else 202
    )
    execution = kestra.wait(running["id"])
    assert execution["state"]["current"] == "KILLED"
    assert execution["taskRunList"][0]["state"]["current"] == "KILLED"


def test_resume_execution_paused(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#resumeExecutionPaused: 204 (2.0: 200 Execution, ``DEPARTS_2_0``), then
    the pause task run's ``resumed`` output has ``on`` (1.x: task outputs inline; 2.0: /outputs/tasks)."""
    kestra.deploy(namespace, "pause-test", PAUSE)
    paused = kestra.run(namespace, "pause-test", {"PAUSED"})
    response = kestra("POST", f"/executions/{paused['id']}/{kestra.act}resume")
    assert response.status_code == (200 if kestra.v2 else 204)
    execution = kestra.wait(paused["id"])
    assert execution["state"]["current"] != "PAUSED"
    task_run = execution["taskRunList"][0]
    if kestra.v2:
        outputs = kestra("GET", f"/outputs/tasks/{execution['id']}/{task_run['id']}").json()
    else:
        outputs = task_run["outputs"]
    assert "on" in outputs["resumed"]


def test_should_pause_execution_a_running_flow(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#shouldPauseExecutionARunningFlow. 2.0 (``DEPARTS_2_0``): pause and
    resume answer 200 Execution; pausing a finished execution is a 409 conflict, not 422."""
    kestra.deploy(namespace, "sleep", SLEEP.replace("PT60S", "PT0.3S"))
    kestra.deploy(namespace, "minimal", RETURN)
    running = kestra.run(namespace, "sleep", {"RUNNING"})
    assert kestra("POST", f"/executions/{running['id']}/{kestra.act}pause").status_code == 200
    resumed = kestra("POST", f"/executions/{running['id']}/{kestra.act}resume")
    assert resumed.status_code == (200 if kestra.v2 else 204)
    assert kestra("POST", f"/executions/notfound/{kestra.act}pause").status_code == 404
    completed = kestra.run(namespace, "minimal")
    not_running = kestra("POST", f"/executions/{completed['id']}/{kestra.act}pause")
    assert not_running.status_code == (409 if kestra.v2 else 422)
    assert kestra.wait(running["id"])["state"]["current"] == "SUCCESS"


def test_delete_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#deleteExecution."""
    kestra.deploy(namespace, "minimal", RETURN)
    execution = kestra.run(namespace, "minimal")
    assert kestra("DELETE", f"/executions/{execution['id']}").status_code == 204
    assert kestra("DELETE", "/executions/notfound").status_code == 404


def test_set_labels_on_terminated_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#setLabelsOnTerminatedExecution (system labels kept, others replaced)."""
    kestra.deploy(namespace, "minimal", RETURN, extra="labels:\n  existing: label\n")
    execution = kestra.run(namespace, "minimal")
    assert execution["state"]["current"] == "SUCCESS"
    labels = [{"key": "existing", "value": "updated"}, {"key": "newKey", "value": "value"}]
    response = kestra("POST", f"/executions/{execution['id']}/{kestra.act}labels", json=labels).json()
    assert sorted((label["key"], label["value"]) for label in response["labels"]) == sorted(
        [
            ("system.correlationId", execution["id"]),
            ("system.from", "api"),
            ("existing", "updated"),
            ("newKey", "value"),
        ]
    )
    not_found = kestra(
        "POST", f"/executions/notfound/{kestra.act}labels", json=[{"key": "key", "value": "value"}]
    )
    assert not_found.status_code == 404
    nulls = kestra(
        "POST", f"/executions/{execution['id']}/{kestra.act}labels", json=[{"key": None, "value": None}]
    )
    assert nulls.status_code == 422


def test_should_refuse_system_labels_when_updating_labels(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#shouldRefuseSystemLabelsWhenUpdatingLabels."""
    kestra.deploy(namespace, "minimal", RETURN)
    execution = kestra.run(namespace, "minimal")
    assert execution["state"]["current"] == "SUCCESS"
    labels = [{"key": "system.label", "value": "value"}]
    assert kestra("POST", f"/executions/{execution['id']}/{kestra.act}labels", json=labels).status_code == 422


def test_download_internal_storage_file_from_execution(kestra: Kestra, namespace: str) -> None:
    """ExecutionControllerRunnerTest#downloadInternalStorageFileFromExecution: the file, then 422 for a path
    outside the execution (``Invalid prefix path``)."""
    write = "  - id: write\n    type: io.kestra.plugin.core.storage.Write\n    content: hello\n"
    kestra.deploy(namespace, "writer", write)
    execution = kestra.run(namespace, "writer")
    task_run = execution["taskRunList"][0]
    if kestra.v2:
        uri = kestra("GET", f"/outputs/tasks/{execution['id']}/{task_run['id']}").json()["uri"]
    else:
        uri = task_run["outputs"]["uri"]
    path = quote(uri, safe="")
    response = kestra("GET", f"/executions/{execution['id']}/file?path={path}")
    assert response.status_code == 200
    assert response.content == b"hello"
    assert 'filename="' in response.headers["content-disposition"]
    outside = kestra("GET", f"/executions/{execution['id']}/file?path=kestra:///other/place/file.txt")
    assert outside.status_code == 422
    assert kestra.message(outside) == kestra.error("Illegal argument", "Invalid prefix path")


# -- FlowControllerTest -----------------------------------------------------------------------------------


def test_id_no_source_and_id_not_found(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#idNoSource and #idNotFound."""
    kestra.deploy(namespace, "full", RETURN)
    assert "source" not in kestra("GET", f"/flows/{namespace}/full").json()
    assert "# Comment i added" in kestra("GET", f"/flows/{namespace}/full?source=true").json()["source"]
    assert kestra("GET", f"/flows/{namespace}/notFound").status_code == 404


def test_search_flows(kestra: Kestra) -> None:
    """FlowControllerTest#searchFlowsMatch, #searchFlowsNotEqualsQuery, #searchFlows_shouldReturnNothing
    ForOppositeQuery and #searchFlowsByNamespacePrefix, with ``<root>.tests`` and ``<root>.tests2`` standing
    for ``io.kestra.tests`` and ``io.kestra.tests2`` (``PREFIX`` is the namespace or its children)."""
    root = unique("conformance.search").replace("-", "")
    kestra.deploy(root + ".tests", "one", RETURN)
    kestra.deploy(root + ".tests2", "two", RETURN)
    scope = {"filters[namespace][PREFIX]": root}

    def total(**params: str) -> int:
        return int(kestra("GET", "/flows/search", params={**scope, **params}).json()["total"])

    assert total(**{"filters[q][EQUALS]": root + ".tests2"}) == 1
    assert total(**{"filters[q][NOT_EQUALS]": root + ".tests2"}) == 1
    opposite = [
        *scope.items(),
        ("filters[q][EQUALS]", root + ".tests2"),
        ("filters[q][NOT_EQUALS]", root + ".tests2"),
    ]
    assert kestra("GET", "/flows/search", params=opposite).json()["total"] == 0
    assert total(**{"filters[namespace][PREFIX]": root + ".tests2"}) == 1
    assert total(**{"filters[namespace][PREFIX]": root + ".tests"}) == 1, "all except <root>.tests2"


def test_get_flow_flows_by_namespace(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#getFlowFlowsByNamespace."""
    kestra.deploy(namespace, "getbynamespace-test-flow", RETURN)
    kestra.deploy(namespace, "getbynamespace-test-flow2", RETURN)
    flows = kestra("GET", f"/flows/{namespace}").json()
    assert len(flows) == 2
    assert sorted(f["id"] for f in flows) == ["getbynamespace-test-flow", "getbynamespace-test-flow2"]


def test_update_flows_in_namespace_as_string_and_bulk(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#updateFlowFlowsInNamespaceAsString and #bulk (same flows again: no new revision)."""
    flows = "---\n".join(generated(namespace, f"flow{n}", "a") for n in (1, 2, 3))
    updated = kestra("POST", f"/flows/{namespace}", content=flows, headers=YAML).json()
    assert len(updated) == 3
    again = kestra("POST", f"/flows/bulk?namespace={namespace}", content=flows, headers=YAML).json()
    assert len(again) == 3
    assert {f["revision"] for f in again} == {1}


def test_deleted_flow(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#deletedFlow."""
    created = kestra.deploy(namespace, "deleted", RETURN)
    assert created["revision"] == 1
    assert kestra("DELETE", f"/flows/{namespace}/deleted").status_code == 204
    assert kestra("DELETE", f"/flows/{namespace}/deleted").status_code == 404
    assert kestra("GET", f"/flows/{namespace}/deleted?allowDeleted=true").json()["deleted"] is True


def test_delete_flow_revisions(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#deleteFlowRevisions."""
    assert (
        kestra("POST", "/flows", content=generated(namespace, "revs", "a"), headers=YAML).json()["revision"]
        == 1
    )
    for expected, input_id in ((2, "b"), (3, "c")):
        updated = kestra(
            "PUT", f"/flows/{namespace}/revs", content=generated(namespace, "revs", input_id), headers=YAML
        )
        assert updated.json()["revision"] == expected
    kestra("DELETE", f"/flows/{namespace}/revs/revisions?revisions=1,2")
    revisions = kestra("GET", f"/flows/{namespace}/revs/revisions?allowDelete=false").json()
    assert len(revisions) == 1
    assert revisions[0]["revision"] == 3


def test_delete_flow_revisions_errors(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#deleteFlowRevisionsErrors."""
    missing = kestra("DELETE", f"/flows/{namespace}/not_found/revisions?revisions=1,2")
    assert missing.status_code == 404
    zero = kestra("DELETE", f"/flows/{namespace}/{unique()}/revisions?revisions=0")
    assert zero.status_code == 422
    assert "must be greater than or equal to 1" in zero.text
    absent = kestra("DELETE", f"/flows/{namespace}/{unique()}/revisions")
    assert absent.status_code == 400
    assert "Required QueryValue [revisions] not specified" in absent.text


def test_create_and_update_flow_from_string(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#createFlowFromJsonFlowFromString and #updateFlowFlowFromJsonFromString."""
    created = kestra("POST", "/flows", content=generated(namespace, "updatedFlow", "a"), headers=YAML).json()
    assert created["id"] == "updatedFlow"
    assert created["inputs"][0]["id"] == "a"
    got = kestra("GET", f"/flows/{namespace}/updatedFlow?source=true").json()
    assert got["inputs"][0]["id"] == "a"
    assert " Comment i added" in got["source"]
    updated = kestra(
        "PUT",
        f"/flows/{namespace}/updatedFlow",
        content=generated(namespace, "updatedFlow", "b"),
        headers=YAML,
    )
    assert updated.json()["inputs"][0]["id"] == "b"
    unknown = kestra(
        "PUT",
        f"/flows/{namespace}/{unique()}",
        content=generated(namespace, "updatedFlow", "b"),
        headers=YAML,
    )
    assert unknown.status_code == 404


def test_update_flow_invalid_flow_from_string(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#updateFlowInvalidFlowFromJsonFromString (id and namespace changed on update)."""
    kestra("POST", "/flows", content=generated(namespace, "test-flow", "a"), headers=YAML)
    other = generated(namespace + "x", "test-flow-2", "a")
    response = kestra("PUT", f"/flows/{namespace}/test-flow", content=other, headers=YAML)
    assert response.status_code == 422
    assert "flow.id" in response.text
    assert "flow.namespace" in response.text


def test_create_flow_from_invalid_string(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#createFlowFromJsonInvalidFlowFromString."""
    invalid = flow(namespace, unique(), "  - id: test\n    type: io.kestra.plugin.core.debug.Invalid\n")
    assert kestra("POST", "/flows", content=invalid, headers=YAML).status_code == 422


def test_validate_flows(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#validateFlows (the invalid half: an unknown property, an unknown task type)."""
    valid = "---\n".join(generated(namespace, unique(), "a") for _ in range(2))
    body = kestra("POST", "/flows/validate", content=valid, headers=YAML).json()
    assert len(body) == 2
    assert all(item.get("constraints") is None for item in body)
    unknown_prop = flow(namespace, unique(), RETURN, extra="unknownProp: x\n")
    unknown_task = flow(namespace, unique(), "  - id: t\n    type: io.kestra.plugin.core.debug.UnknownTask\n")
    body = kestra(
        "POST", "/flows/validate", content=unknown_prop + "---\n" + unknown_task, headers=YAML
    ).json()
    assert len(body) == 2
    assert 'Unrecognized field "unknownProp"' in body[0]["constraints"]
    assert "Invalid type: io.kestra.plugin.core.debug.UnknownTask" in body[1]["constraints"]


def test_find_flow_revisions(kestra: Kestra, namespace: str) -> None:
    """FlowControllerTest#findFlowRevisions (a delete is a revision; re-creating continues the numbering)."""
    assert (
        kestra("POST", "/flows", content=generated(namespace, "revs", "a"), headers=YAML).json()["revision"]
        == 1
    )
    updated = kestra(
        "PUT", f"/flows/{namespace}/revs", content=generated(namespace, "revs", "b"), headers=YAML
    )
    assert updated.json()["revision"] == 2
    kestra("DELETE", f"/flows/{namespace}/revs")
    assert (
        kestra("POST", "/flows", content=generated(namespace, "revs", "b"), headers=YAML).json()["revision"]
        == 4
    )
    assert len(kestra("GET", f"/flows/{namespace}/revs/revisions").json()) == 3
    assert len(kestra("GET", f"/flows/{namespace}/revs/revisions?allowDelete=true").json()) == 4
    revisions = kestra("GET", f"/flows/{namespace}/revs/revisions?allowDelete=false").json()
    assert [r["revision"] for r in revisions] == [1, 2, 4]


# -- LogControllerTest ------------------------------------------------------------------------------------


def _logs_flow(kestra: Kestra, namespace: str) -> dict[str, Any]:
    """One execution logging ``john doe`` at INFO, ``another message`` at WARN and a DEBUG line."""
    tasks = "".join(
        f"  - id: {task}\n    type: io.kestra.plugin.core.log.Log\n"
        f"    message: {message}\n    level: {level}\n"
        for task, message, level in (
            ("i", "john doe", "INFO"),
            ("w", "another message", "WARN"),
            ("d", "dbg", "DEBUG"),
        )
    )
    kestra.deploy(namespace, "logs", tasks)
    return kestra.run(namespace, "logs")


def test_search_logs(kestra: Kestra, namespace: str) -> None:
    """LogControllerTest#searchLogs: ``filters[level][EQUALS]=INFO`` keeps INFO and more severe."""
    _logs_flow(kestra, namespace)
    scope = {"filters[namespace][EQUALS]": namespace}
    assert kestra("GET", "/logs/search", params=scope).json()["total"] == 3
    assert (
        kestra("GET", "/logs/search", params={**scope, "filters[level][EQUALS]": "INFO"}).json()["total"] == 2
    )
    assert (
        kestra("GET", "/logs/search", params={"namespace": namespace, "minLevel": "INFO"}).json()["total"]
        == 2
    )
    assert kestra("GET", "/logs/search", params={"page": 1, "size": -1}).status_code == 422
    assert kestra("GET", "/logs/search", params={"page": 0}).status_code == 422


def test_search_logs_by_execution(kestra: Kestra, namespace: str) -> None:
    """LogControllerTest#searchLogsByExecution."""
    execution = _logs_flow(kestra, namespace)
    logs = kestra("GET", f"/logs/{execution['id']}", params={"minLevel": "INFO"}).json()
    assert len(logs) == 2
    assert logs[0]["executionId"] == execution["id"]
    assert logs[1]["executionId"] == execution["id"]


def test_download_logs_from_execution(kestra: Kestra, namespace: str) -> None:
    """LogControllerTest#downloadLogsFromExecution."""
    execution = _logs_flow(kestra, namespace)
    text = kestra("GET", f"/logs/{execution['id']}/download").text
    assert "john doe" in text
    assert "another message" in text


def test_delete_logs_from_execution(kestra: Kestra, namespace: str) -> None:
    """LogControllerTest#deleteLogsFromExecution: 200, then no log left."""
    execution = _logs_flow(kestra, namespace)
    assert kestra("DELETE", f"/logs/{execution['id']}").status_code == 200
    assert kestra("GET", f"/logs/{execution['id']}").json() == []
