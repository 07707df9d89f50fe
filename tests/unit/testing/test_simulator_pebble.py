"""The Pebble subset: what it renders, and that everything else fails loudly with the expression named."""

from __future__ import annotations

import pytest

from airflow_provider_kestra.testing.backend.pebble import KestraPebbleError, render, render_value

CONTEXT = {
    "inputs": {"name": "bob", "n": 5, "flag": True, "dash-key": "d"},
    "outputs": {"task": {"value": "v", "map": {"list": [1, 2]}}},
    "execution": {"id": "E1"},
    "flow": {"id": "f", "namespace": "a.b"},
    "labels": {"team": "data"},
    "trigger": {"body": {"x": 1}},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        ("{{ inputs.name }}", "bob"),
        ("Hi {{inputs.name}} #{{ inputs.n }}", "Hi bob #5"),
        ("{{ inputs.flag }}", "true"),
        ("{{ outputs.task.value }}", "v"),
        ("{{ outputs['task']['map']['list'][1] }}", "2"),
        ("{{ inputs['dash-key'] }}", "d"),
        ("{{ execution.id }}/{{ flow.namespace }}/{{ flow.id }}", "E1/a.b/f"),
        ("{{ labels.team }}", "data"),
        ("{{ trigger.body.x }}", "1"),
        ("{{ outputs.task.map | toJson }}", '{"list":[1,2]}'),
        ("{{ inputs.name | upper }}", "BOB"),
        ("{{ inputs.missing | default('z') }}", "z"),
        ("{# comment #}x", "x"),
    ],
)
def test_supported_expressions(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ now() }}", "now()"),
        ("{{ secret('X') }}", "secret('X')"),
        ("{{ inputs.name ~ 'x' }}", "inputs.name ~ 'x'"),
        ("{{ inputs.name | date }}", "filter 'date'"),
        ("{% if true %}x{% endif %}", "{% if true %}"),
        ("{{ inputs.n + 1 }}", "inputs.n + 1"),
    ],
)
def test_anything_else_fails_naming_the_expression(template: str, named: str) -> None:
    with pytest.raises(KestraPebbleError, match="simulator") as error:
        render(template, CONTEXT)
    assert named in str(error.value)


def test_missing_variable_is_an_error_like_strict_pebble() -> None:
    with pytest.raises(KestraPebbleError, match=r"Missing variable: 'outputs.nope'"):
        render("{{ outputs.nope.value }}", CONTEXT)


def test_render_value_walks_lists_and_maps() -> None:
    assert render_value({"k": ["{{ inputs.name }}", 1]}, CONTEXT) == {"k": ["bob", 1]}
