"""Execution inputs and Property fields as Kestra 1.3.25 types and writes them.

Source: binhth-vuejx/kestra-1.3.25 @2a102a6a (a verbatim upload of Kestra 1.3.25):
``core/.../runners/FlowInputOutput.java`` (``resolveInputs``, ``parseType``, ``readExecutionInputs``),
``core/.../models/flows/input/*Input.java`` (``validate`` messages), ``core/.../exceptions/
InputOutputValidationException.java`` and ``core/.../models/property/Property.java`` (``PropertySerializer``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from kestra_sim_client import SimClient, flow_source, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator

if TYPE_CHECKING:
    from collections.abc import Iterator

YAML = {"Content-Type": "application/x-yaml"}
LOG_TASK = '  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: "{{ inputs.pwd }}"\n'
INPUTS = """inputs:
  - id: day
    type: DATE
    required: false
  - id: at
    type: TIME
    required: false
  - id: wait
    type: DURATION
    min: PT1M
    required: false
  - id: pick
    type: MULTISELECT
    values: [a, b]
    required: false
  - id: doc
    type: YAML
    required: false
  - id: mail
    type: EMAIL
    required: false
  - id: link
    type: URI
    required: false
  - id: pwd
    type: SECRET
    validator: "^s.*"
    required: false
  - id: size
    type: SELECT
    values: [S, M]
    required: false
"""
REQUIRED_SELECT = "inputs:\n  - id: size\n    type: SELECT\n    values: [S, M]\n"


@pytest.fixture(scope="module")
def sim() -> Iterator[KestraSimulator]:
    with KestraSimulator(kestra_version="1.3") as simulator:
        yield simulator


@pytest.fixture(scope="module")
def flow(sim: KestraSimulator) -> str:
    flow_id = unique()
    SimClient(sim).deploy(flow_source(flow_id, LOG_TASK, extra=INPUTS))
    return flow_id


def _create(sim: KestraSimulator, flow_id: str, inputs: dict[str, str]) -> Any:
    files = {key: (None, value) for key, value in inputs.items()}
    return SimClient(sim).request("POST", f"/executions/company.team/{flow_id}", files=files or None)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"day": "2024-02-29"}, {"day": "2024-02-29"}),
        ({"at": "10:15"}, {"at": "10:15:00"}),
        ({"at": "23:59:58.500"}, {"at": "23:59:58.5"}),
        ({"wait": "PT90M"}, {"wait": "PT1H30M"}),
        ({"wait": "P1D"}, {"wait": "PT24H"}),
        ({"pick": '["b", "a"]'}, {"pick": ["b", "a"]}),
        ({"doc": "a: 1\nb: [x]"}, {"doc": {"a": 1, "b": ["x"]}}),
        ({"mail": "ops@example.com"}, {"mail": "ops@example.com"}),
        ({"link": "https://kestra.io/docs"}, {"link": "https://kestra.io/docs"}),
        ({"size": "M"}, {"size": "M"}),
        # SelectInput#validate refuses an unlisted value only when the input is required.
        ({"size": "XL"}, {"size": "XL"}),
    ],
)
def test_typed_values(
    sim: KestraSimulator, flow: str, inputs: dict[str, str], expected: dict[str, Any]
) -> None:
    """``parseType``: LocalDate/LocalTime/Duration written by Jackson, lists and YAML parsed."""
    response = _create(sim, flow, inputs)
    assert response.status_code == 200, response.text
    typed = response.json()["inputs"]
    assert {key: typed[key] for key in expected} == expected
    assert all(typed[key] is None for key in typed.keys() - expected.keys())


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"day": "2024-13-01"}, " errors:\n```\nText '2024-13-01' could not be parsed at index 0\n```"),
        ({"at": "25:00"}, " errors:\n```\nText '25:00' could not be parsed at index 0\n```"),
        ({"wait": "90 minutes"}, " errors:\n```\nText cannot be parsed to a Duration\n```"),
        ({"wait": "PT30S"}, "Invalid value for input `wait`. Cause: It must be more than `PT1M`"),
        (
            {"pick": '["a", "z", "y"]'},
            "Invalid value for input `pick`. Cause: value `z` doesn't match the values `[a, b]`\n"
            "Invalid value for input `pick`. Cause: value `y` doesn't match the values `[a, b]`",
        ),
        ({"mail": "not-an-email"}, "Invalid value for input `mail`. Cause: The input must be a valid email"),
        ({"link": "kestra.io/docs"}, "Invalid value for input `link`. Cause: Invalid URI format."),
        ({"pwd": "nope"}, "Invalid value for input `pwd`. Cause: it must match the pattern `^s.*`"),
    ],
)
def test_refusals_carry_kestras_messages(
    sim: KestraSimulator, flow: str, inputs: dict[str, str], message: str
) -> None:
    """IllegalArgument and ``validate`` refusals are scoped to the input; other parse errors are not."""
    response = _create(sim, flow, inputs)
    assert response.status_code == 422
    assert response.json()["message"] == "Invalid entity: " + message


def test_a_required_select_refuses_unlisted_values(sim: KestraSimulator) -> None:
    flow_id = unique()
    SimClient(sim).deploy(flow_source(flow_id, LOG_TASK, extra=REQUIRED_SELECT))
    response = _create(sim, flow_id, {"size": "XL"})
    assert response.json()["message"] == (
        "Invalid entity: Invalid value for input `size`. Cause: it must match the values `[S, M]`"
    )


def test_only_the_first_failing_input_is_reported(sim: KestraSimulator, flow: str) -> None:
    """``readExecutionInputs`` throws on the first input (declaration order) that has exceptions."""
    response = _create(sim, flow, {"mail": "bad", "day": "bad"})
    assert (
        response.json()["message"]
        == "Invalid entity:  errors:\n```\nText 'bad' could not be parsed at index 0\n```"
    )


def test_optional_inputs_without_value_are_null_and_keys_are_sorted(sim: KestraSimulator, flow: str) -> None:
    """``resolveWithValue(null)`` keeps the key (ExecutionControllerRunnerTest#triggerExecution, 1.3.25
    @2a102a6a: ``containsKey("bool")`` and ``get("bool")`` is null); ``flattenToNestedMap`` sorts keys."""
    body = _create(sim, flow, {"size": "S", "at": "08:00", "day": "2024-01-01"}).json()
    assert body["inputs"] == {
        "at": "08:00:00", "day": "2024-01-01", "doc": None, "link": None, "mail": None, "pick": None,
        "pwd": None, "size": "S", "wait": None,
    }  # fmt: skip
    assert list(body["inputs"]) == sorted(body["inputs"])


def test_secret_is_an_encrypted_string_and_tasks_see_it_decrypted(sim: KestraSimulator, flow: str) -> None:
    execution = _create(sim, flow, {"pwd": "s3cret"}).json()
    secret = execution["inputs"]["pwd"]
    assert set(secret) == {"value", "type"} and secret["type"] == "io.kestra.datatype:aes_encrypted"
    assert "s3cret" not in json.dumps(secret)
    client = SimClient(sim)
    client.wait(execution["id"])
    logs = client.request("GET", f"/logs/{execution['id']}").json()
    assert [entry["message"] for entry in logs] == ["s3cret"]


def test_defaults_are_properties_rendered_then_converted(sim: KestraSimulator) -> None:
    flow_id = unique()
    extra = (
        "inputs:\n"
        "  - id: n\n    type: INT\n    defaults: 2\n"
        '  - id: who\n    type: STRING\n    defaults: "{{ flow.id }}"\n'
        "  - id: tags\n    type: ARRAY\n    itemType: STRING\n    defaults: [x, y]\n"
        "  - id: flag\n    type: BOOLEAN\n    defaults: true\n"
        "  - id: since\n    type: DATE\n    defaults: 2024-01-02\n"
    )
    client = SimClient(sim)
    deployed = client.deploy(flow_source(flow_id, LOG_TASK, extra=extra))
    assert [i["defaults"] for i in deployed["inputs"]] == [
        "2",
        "{{ flow.id }}",
        '["x","y"]',
        "true",
        "2024-01-02",
    ]
    execution = _create(sim, flow_id, {}).json()
    assert execution["inputs"] == {
        "flag": True,
        "n": 2,
        "since": "2024-01-02",
        "tags": ["x", "y"],
        "who": flow_id,
    }


def test_plugin_property_fields_come_back_as_strings(sim: KestraSimulator) -> None:
    flow_id = unique()
    tasks = (
        "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.1S\n"
        "  - id: out\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      a: 1\n"
        "  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: [one, two]\n    level: WARN\n"
    )
    flow = SimClient(sim).deploy(flow_source(flow_id, tasks))
    nap, out, say = flow["tasks"]
    assert nap["duration"] == "PT0.1S"
    assert out["values"] == '{"a":1}', "Property<Map> is its JSON text"
    assert say["level"] == "WARN" and say["message"] == ["one", "two"], (
        "Log.message is an Object, not a Property"
    )


def test_0_22_inputs_keep_typed_defaults() -> None:
    """0.21 ``Input.defaults`` is ``T defaults`` (kestra-io/kestra @58c1ca2d ``core/.../Input.java``)."""
    with KestraSimulator(kestra_version="0.22") as sim:
        flow_id = unique()
        extra = "inputs:\n  - id: n\n    type: INT\n    defaults: 2\n"
        deployed = SimClient(sim).deploy(
            flow_source(flow_id, LOG_TASK.replace("inputs.pwd", "inputs.n"), extra=extra)
        )
        assert deployed["inputs"][0]["defaults"] == 2
