"""The response bodies the hook tests mock are valid against Kestra's own OpenAPI schemas.

OSS 1.3.25 for the 1.x shapes, the EE 2.0 development spec for ``ApiExecution``/``ApiLightExecution``.
Skipped when ../shared/kestra-openapi is not beside the repository or openapi-schema-validator is missing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from support.kestra_payloads import execution, flow_with_source, log_entry, paged, task_run, violation

SPECS = Path(__file__).resolve().parents[4] / "shared" / "kestra-openapi"
OSS = "kestra-oss-1.3.25-openapi.yml"
EE2 = "kestra-ee.yml"

validator_module = pytest.importorskip("openapi_schema_validator")
if not SPECS.is_dir():
    pytest.skip(f"{SPECS} is not available", allow_module_level=True)


def _ascii_patterns(node: Any) -> Any:
    """Python's ``re`` lacks ``\\p{..}``: approximate Kestra's label-key classes with ASCII ranges."""
    if isinstance(node, dict):
        return {
            key: value.replace(r"\p{Ll}", "a-z").replace(r"\p{L}", "a-zA-Z")
            if key == "pattern" and isinstance(value, str)
            else _ascii_patterns(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ascii_patterns(item) for item in node]
    return node


@cache
def spec(name: str) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return _ascii_patterns(yaml.load((SPECS / name).read_text(), Loader=loader))  # type: ignore[no-any-return]


def validate(body: Any, spec_name: str, schema_name: str) -> None:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    document = spec(spec_name)
    resource = Resource.from_contents(document, default_specification=DRAFT4)
    registry: Registry = Registry().with_resource("spec", resource)
    schema = {"$ref": f"spec#/components/schemas/{schema_name}"}
    validator_module.OAS30Validator(schema, registry=registry).validate(body)


RUNS = [
    task_run("extract", "5h8DJKAq2vC4jBcd2U6T3X", {"uri": "kestra:///x"}),
    task_run("log", "r2", None, value="a"),
]


@pytest.mark.parametrize(
    ("body", "schema"),
    [
        (execution("SUCCESS", outputs={"n": 1}, task_runs=RUNS, labels={"team": "data"}), "Execution"),
        (execution("PAUSED"), "Execution"),
        (execution("RUNNING"), "Execution"),
        (RUNS[0], "TaskRun"),
        (log_entry(1, "hello"), "LogEntry"),
        (flow_with_source(), "FlowWithSource"),
        (violation(0, "hello", "tasks: must not be empty"), "ValidateConstraintViolation"),
        (paged([execution("FAILED")]), "PagedResults_Execution_"),
    ],
)
def test_oss_1x_bodies(body: Any, schema: str) -> None:
    validate(body, OSS, schema)


@pytest.mark.parametrize(
    ("body", "schema"),
    [
        # The generated 2.0 spec types every outputs value as "object" (Java Object), hence a map here.
        (execution("SUCCESS", outputs={"n": {"rows": 1}}, task_runs=[]), "ApiExecution"),
        (execution("KILLED"), "ApiLightExecution"),
    ],
)
def test_ee_2x_bodies(body: Any, schema: str) -> None:
    validate(body, EE2, schema)
