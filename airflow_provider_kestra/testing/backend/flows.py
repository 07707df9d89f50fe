"""Flow YAML parsing and validation with Kestra's checks and messages.

Parsing mimics Jackson's strict mapper (the first unknown property or unknown ``type`` stops parsing, with
Kestra's ``Unrecognized field`` / ``Invalid type`` messages), then bean validation (``must not be null``,
patterns, ``must not be empty``) and Kestra's ``FlowValidator`` (reserved ids, duplicate task ids...).
Only the task types the simulator can run are known plugins; every other type is rejected at deploy time
exactly as Kestra rejects a plugin that is not installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from airflow_provider_kestra.testing.backend.exceptions import (
    KestraSimConstraintViolation,
    KestraSimViolation,
)
from airflow_provider_kestra.testing.backend.inputs import java_text
from airflow_provider_kestra.testing.backend.plugins import check_property_types, schedule_violations

if TYPE_CHECKING:
    from collections.abc import Container, Iterator

LOG = "io.kestra.plugin.core.log.Log"
RETURN = "io.kestra.plugin.core.debug.Return"
OUTPUT_VALUES = "io.kestra.plugin.core.output.OutputValues"
SLEEP = "io.kestra.plugin.core.flow.Sleep"
PAUSE = "io.kestra.plugin.core.flow.Pause"
FAIL = "io.kestra.plugin.core.execution.Fail"
WRITE = "io.kestra.plugin.core.storage.Write"
SEQUENTIAL = "io.kestra.plugin.core.flow.Sequential"
PARALLEL = "io.kestra.plugin.core.flow.Parallel"
SUBFLOW = "io.kestra.plugin.core.flow.Subflow"
DAG = "io.kestra.plugin.core.flow.Dag"
FOREACH = "io.kestra.plugin.core.flow.ForEach"
WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"
SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"

FLOWABLE_TYPES = (SEQUENTIAL, PARALLEL, DAG, FOREACH)
_COMMON_TASK_PROPERTIES = {
    "id", "type", "version", "description", "retry", "timeout", "disabled", "workerGroup", "logLevel",
    "allowFailure", "logToFile", "runIf", "allowWarning", "taskCache",
}  # fmt: skip
#: Known task types: property -> required?
TASK_PROPERTIES: dict[str, dict[str, bool]] = {
    LOG: {"message": True, "level": False},
    RETURN: {"format": False},
    OUTPUT_VALUES: {"values": False},
    SLEEP: {"duration": True},
    PAUSE: {"pauseDuration": False, "delay": False, "timeout": False, "behavior": False, "onResume": False},
    FAIL: {"errorMessage": False, "condition": False},
    WRITE: {"content": True, "extension": False},
    SEQUENTIAL: {"tasks": True, "errors": False},
    PARALLEL: {"tasks": True, "concurrent": False, "errors": False},
    # Subflow.java @048d4844: namespace @NotEmpty, flowId @NotNull, revision @Min(1), wait and transmitFailed
    # default true, restartBehavior @NotNull with a default.
    SUBFLOW: {
        "namespace": True,
        "flowId": True,
        "revision": False,
        "inputs": False,
        "labels": False,
        "wait": False,
        "transmitFailed": False,
        "inheritLabels": False,
        "outputs": False,
        "scheduleDate": False,
        "restartBehavior": False,
    },
    # Dag.java @0485db05: tasks @NotEmpty (DagTask: task @NotNull, dependsOn), concurrent, onChildFailure.
    DAG: {"tasks": True, "concurrent": False, "onChildFailure": False, "errors": False, "finally": False},
    # ForEach.java @005dd2f7 (extends Sequential): values @NotNull, concurrencyLimit Integer (default 1).
    FOREACH: {"values": True, "concurrencyLimit": False, "tasks": True, "errors": False},
}
_COMMON_TRIGGER_PROPERTIES = {
    "id", "type", "version", "description", "conditions", "disabled", "workerGroup", "logLevel",
    "logToFile", "stopAfter", "minLogLevel", "allowConcurrent",
}  # fmt: skip
TRIGGER_PROPERTIES: dict[str, dict[str, bool]] = {
    WEBHOOK: {"key": True, "wait": False, "returnOutputs": False, "responseCode": False,
              "responseContentType": False, "inputs": False},
    SCHEDULE: {"cron": True, "timezone": False, "inputs": False, "backfill": False, "lateMaximumDelay": False,
               "withSeconds": False, "recoverMissedSchedules": False},
}  # fmt: skip
FLOW_PROPERTIES = {
    "id", "namespace", "revision", "description", "inputs", "outputs", "disabled", "deleted", "labels",
    "variables", "tasks", "errors", "finally", "listeners", "afterExecution", "triggers", "pluginDefaults",
    "taskDefaults", "concurrency", "retry", "sla", "checks", "workerGroup", "tenantId", "updated",
}  # fmt: skip
INPUT_TYPES = (
    "STRING", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME", "DURATION", "JSON", "YAML",
    "ARRAY", "SELECT", "MULTISELECT", "ENUM", "EMAIL", "URI", "SECRET", "FILE",
)  # fmt: skip
_INPUT_CLASSES = {
    "STRING": "StringInput", "INT": "IntInput", "FLOAT": "FloatInput", "BOOLEAN": "BooleanInput",
    "BOOL": "BoolInput", "DATETIME": "DateTimeInput", "DATE": "DateInput", "TIME": "TimeInput",
    "DURATION": "DurationInput", "JSON": "JsonInput", "YAML": "YamlInput", "ARRAY": "ArrayInput",
    "SELECT": "SelectInput", "MULTISELECT": "MultiselectInput", "ENUM": "EnumInput", "EMAIL": "EmailInput",
    "URI": "URIInput", "SECRET": "SecretInput", "FILE": "FileInput",
}  # fmt: skip
#: ``Property<T>`` fields of the known plugins (Kestra 1.3.25 ``core/.../plugin/core/**``) and of inputs
#: (``Input.defaults``/``prefill``): ``PropertySerializer`` writes them as their expression string.
PROPERTY_FIELDS: dict[str, frozenset[str]] = {
    LOG: frozenset({"level"}),
    RETURN: frozenset({"format"}),
    OUTPUT_VALUES: frozenset({"values"}),
    SLEEP: frozenset({"duration"}),
    PAUSE: frozenset({"delay", "pauseDuration", "behavior"}),
    FAIL: frozenset({"condition", "errorMessage"}),
    WRITE: frozenset({"content", "extension"}),
    WEBHOOK: frozenset({"responseCode"}),
    SUBFLOW: frozenset({"inheritLabels", "scheduleDate"}),
    DAG: frozenset({"concurrent", "onChildFailure"}),
    "input": frozenset({"defaults", "prefill"}),
}
_INPUT_PROPERTIES = {
    "id", "name", "type", "description", "dependsOn", "required", "defaults", "prefill", "displayName",
    "validator", "min", "max", "values", "allowCustomValue", "expression", "itemType", "isRadio",
    "autoSelectFirst", "extension", "allowedFileExtensions", "after", "before", "options",
}  # fmt: skip
RESERVED_FLOW_IDS = (
    "pause", "resume", "force-run", "change-status", "kill", "executions", "search", "source", "disable",
    "enable",
)  # fmt: skip
FLOW_ID_PATTERN = "^[a-zA-Z0-9][a-zA-Z0-9._-]*"
NAMESPACE_PATTERN = "^[a-z0-9][a-z0-9._-]*"
TASK_ID_PATTERN = "^[a-zA-Z0-9][a-zA-Z0-9_-]*"
INPUT_ID_PATTERN = "^[a-zA-Z0-9][.a-zA-Z0-9_-]*"
_FLOW_CLASS = "io.kestra.core.models.flows.FlowWithSource"


def is_valid_label_key(key: str) -> bool:
    """Kestra's ``^[\\p{Ll}][\\p{L}0-9._-]*$`` (approximated for Unicode letters)."""
    return bool(key) and key[0].islower() and all(c.isalpha() or c.isdigit() or c in "._-" for c in key)


@dataclass
class KestraSimTask:
    """One task of a flow, with its child tasks for ``Sequential``, ``Parallel``, ``Dag`` and ``ForEach``;
    ``depends_on`` holds the ``dependsOn`` ids of each child of a ``Dag``."""

    id: str
    type: str
    properties: dict[str, Any]
    children: list[KestraSimTask] = field(default_factory=list)
    depends_on: dict[str, list[str]] = field(default_factory=dict)

    def walk(self) -> list[KestraSimTask]:
        """This task and all its descendants, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass
class KestraSimFlow:
    """A parsed, valid flow."""

    id: str
    namespace: str
    source: str
    document: dict[str, Any]
    tasks: list[KestraSimTask]
    errors: list[KestraSimTask]
    finally_tasks: list[KestraSimTask]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    triggers: list[dict[str, Any]]
    labels: list[dict[str, str]]
    disabled: bool

    def all_tasks(self) -> list[KestraSimTask]:
        """Every task of the flow, including children, errors and finally tasks."""
        out: list[KestraSimTask] = []
        for task in [*self.tasks, *self.errors, *self.finally_tasks]:
            out.extend(task.walk())
        return out

    def find_task(self, task_id: str) -> KestraSimTask | None:
        """The task with that id anywhere in the flow."""
        return next((t for t in self.all_tasks() if t.id == task_id), None)


def split_flow_sources(body: str) -> list[str]:
    """Split a multi-document body the way Kestra does: naively on lines made of ``---``."""
    return [part for part in re.split(r"\n+---\n*?", body) if part.strip()]


def _unrecognized(name: str, cls: str, path: str) -> KestraSimConstraintViolation:
    message = f'Unrecognized field "{name}" (class {cls}), not marked as ignorable'
    return KestraSimConstraintViolation([KestraSimViolation(f'{path}["{name}"]', message)], message)


def _invalid_type(type_name: Any, path: str) -> KestraSimConstraintViolation:
    message = f"Invalid type: {type_name}"
    return KestraSimConstraintViolation(
        [
            KestraSimViolation(path, message),
            KestraSimViolation(
                path,
                f"Could not resolve type id '{type_name}' as a subtype of "
                "`io.kestra.core.models.tasks.Task`: known type ids = " + str(sorted(TASK_PROPERTIES)),
            ),
        ],
        message,
    )


def _parse_task(raw: Any, path: str, violations: list[KestraSimViolation]) -> KestraSimTask:
    if not isinstance(raw, dict):
        raise KestraSimConstraintViolation(
            [KestraSimViolation(path, "Invalid json mapping")], "Invalid json mapping"
        )
    type_name = raw.get("type")
    if type_name not in TASK_PROPERTIES:
        raise _invalid_type(type_name, path)
    known = TASK_PROPERTIES[type_name]
    for name in raw:
        if name not in known and name not in _COMMON_TASK_PROPERTIES:
            raise _unrecognized(str(name), str(type_name), path)
    task_id = raw.get("id")
    if task_id is None:
        violations.append(KestraSimViolation(f"{path}.id", "must not be null"))
    elif not re.match(TASK_ID_PATTERN + "$", str(task_id)):
        violations.append(KestraSimViolation(f"{path}.id", f'must match "{TASK_ID_PATTERN}"'))
    for name, required in known.items():
        if required and raw.get(name) is None:
            violations.append(KestraSimViolation(f"{path}.{name}", "must not be null"))
    check_property_types(raw, str(type_name))
    children: list[KestraSimTask] = []
    depends_on: dict[str, list[str]] = {}
    if type_name in FLOWABLE_TYPES:
        subtasks = raw.get("tasks")
        if isinstance(subtasks, list):
            if not subtasks:
                violations.append(KestraSimViolation(f"{path}.tasks", "must not be empty"))
            if type_name == DAG:
                children, depends_on = _parse_dag_tasks(subtasks, path, violations)
            else:
                children = [_parse_task(t, f"{path}.tasks[{i}]", violations) for i, t in enumerate(subtasks)]
    if type_name == SUBFLOW:
        _check_subflow(raw, path, violations)
    props = {k: v for k, v in raw.items() if k not in ("id", "type")}
    return KestraSimTask(
        id=str(task_id or ""), type=str(type_name), properties=props, children=children, depends_on=depends_on
    )


def _parse_dag_tasks(
    items: list[Any], path: str, violations: list[KestraSimViolation]
) -> tuple[list[KestraSimTask], dict[str, list[str]]]:
    """The ``DagTask`` entries of a ``Dag``, then ``DagTaskValidator``'s checks on the ``Dag`` itself.

    Dag.java @0485db05 and DagTaskValidator.java @23491051: ``No task defined`` when empty, else every
    ``dependsOn`` id missing from the DAG (``Not existing task id in dependency: a, b``), else the tasks on a
    cycle (``Cyclic dependency detected: t1, t2``); one violation on the Dag task's path, as
    ``DagTaskValidatorTest`` asserts (``tasks[0]``).
    """
    children: list[KestraSimTask] = []
    depends_on: dict[str, list[str]] = {}
    order: list[tuple[str, list[str] | None]] = []
    for index, item in enumerate(items):
        item_path = f"{path}.tasks[{index}]"
        if not isinstance(item, dict):
            raise KestraSimConstraintViolation(
                [KestraSimViolation(item_path, "Invalid json mapping")], "Invalid json mapping"
            )
        for name in item:
            if name not in ("task", "dependsOn"):
                raise _unrecognized(str(name), DAG + "$DagTask", item_path)
        deps = item.get("dependsOn")  # a list: check_property_types refused anything else
        if item.get("task") is None:
            violations.append(KestraSimViolation(f"{item_path}.task", "must not be null"))
            continue
        child = _parse_task(item["task"], f"{item_path}.task", violations)
        children.append(child)
        dep_ids = [str(d) for d in deps] if deps is not None else None
        depends_on[child.id] = dep_ids or []
        order.append((child.id, dep_ids))
    if not items:
        violations.append(KestraSimViolation(path, "No task defined"))
        return children, depends_on
    known = [task_id for task_id, _ in order]
    missing = [dep for _, deps in order for dep in deps or [] if dep not in known]
    if missing:
        violations.append(
            KestraSimViolation(path, "Not existing task id in dependency: " + ", ".join(missing))
        )
        return children, depends_on
    graph: dict[str, list[str]] = {}
    for task_id, deps in order:
        graph.setdefault(task_id, deps or [])  # Collectors.toMap keeps the first of duplicate ids
    cyclic = [task_id for task_id, deps in order if deps is not None and _has_cycle(task_id, graph)]
    if cyclic:
        violations.append(KestraSimViolation(path, "Cyclic dependency detected: " + ", ".join(cyclic)))
    return children, depends_on


def _has_cycle(start: str, graph: dict[str, list[str]]) -> bool:
    """``Dag#hasCycle``: a depth-first walk of the dependencies from ``start`` that comes back to it."""
    visited: set[str] = set()
    stack = [start]
    while stack:
        current = stack.pop()
        for dep in graph.get(current, []):
            if dep == start:
                return True
            if dep not in visited:
                visited.add(dep)
                stack.append(dep)
    return False


def _check_subflow(raw: dict[str, Any], path: str, violations: list[KestraSimViolation]) -> None:
    """Bean validation of ``Subflow`` (Subflow.java @048d4844): ``namespace`` @NotEmpty, ``revision``
    @Min(1), labels without the ``system.`` prefix (``NoSystemLabelValidator``)."""
    if raw.get("namespace") == "":
        violations.append(KestraSimViolation(f"{path}.namespace", "must not be empty"))
    revision = raw.get("revision")
    if isinstance(revision, int) and not isinstance(revision, bool) and revision < 1:
        violations.append(KestraSimViolation(f"{path}.revision", "must be greater than or equal to 1"))
    for index, label in enumerate(normalize_labels(raw.get("labels"))):
        if label["key"].startswith("system."):
            violations.append(
                KestraSimViolation(
                    f"{path}.labels[{index}]",
                    "System labels can only be set by Kestra itself, offending label: "
                    f"{label['key']}={label['value']}.",
                )
            )


def _parse_tasks(raw: Any, key: str, violations: list[KestraSimViolation]) -> list[KestraSimTask]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise KestraSimConstraintViolation(
            [KestraSimViolation(key, "Invalid json mapping")], f"Invalid json mapping for {key}"
        )
    return [_parse_task(t, f"{key}[{i}]", violations) for i, t in enumerate(raw)]


def normalize_labels(raw: Any) -> list[dict[str, str]]:
    """Labels given as a list of ``{key, value}`` or as a map (``ListOrMapOfLabelDeserializer``)."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [{"key": str(k), "value": str(v)} for k, v in raw.items()]
    if isinstance(raw, list):
        out = []
        for item in raw:
            if isinstance(item, dict) and "key" in item:
                out.append({"key": str(item["key"]), "value": str(item.get("value", ""))})
        return out
    return []


def _typed_items(
    raw: Any, field_name: str, types: Container[str]
) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(path, item, type)`` for each entry of a flow's ``inputs`` or ``triggers`` list, refusing (as
    Kestra does, at the first bad entry) an entry that is not a mapping or whose ``type`` is unknown."""
    for index, item in enumerate(raw or []):
        path = f"{field_name}[{index}]"
        if not isinstance(item, dict):
            raise KestraSimConstraintViolation([KestraSimViolation(path, "Invalid json mapping")])
        type_name = item.get("type")
        if type_name not in types:
            message = f"Invalid type: {type_name}"
            raise KestraSimConstraintViolation([KestraSimViolation(path, message)], message)
        yield path, item, type_name


def _parse_inputs(raw: Any, violations: list[KestraSimViolation]) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = []
    for path, item, type_name in _typed_items(raw, "inputs", INPUT_TYPES):
        for name in item:
            if name not in _INPUT_PROPERTIES:
                input_class = f"io.kestra.core.models.flows.input.{_INPUT_CLASSES[type_name]}"
                raise _unrecognized(str(name), input_class, path)
        data = dict(item)
        if "id" not in data and "name" in data:
            data["id"] = data.pop("name")
        input_id = data.get("id")
        if input_id is None:
            violations.append(KestraSimViolation(f"{path}.id", "must not be null"))
        elif not re.match(INPUT_ID_PATTERN + "$", str(input_id)):
            violations.append(KestraSimViolation(f"{path}.id", f'must match "{INPUT_ID_PATTERN}"'))
        if type_name == "SELECT" and not data.get("values") and not data.get("expression"):
            violations.append(KestraSimViolation(f"{path}.values", "must not be null"))
        if type_name == "ARRAY" and not data.get("itemType"):
            violations.append(KestraSimViolation(f"{path}.itemType", "must not be null"))
        data.setdefault("required", True)
        inputs.append(data)
    return inputs


def _parse_triggers(raw: Any, violations: list[KestraSimViolation]) -> list[dict[str, Any]]:
    triggers: list[dict[str, Any]] = []
    for path, item, type_name in _typed_items(raw, "triggers", TRIGGER_PROPERTIES):
        for name in item:
            if name not in TRIGGER_PROPERTIES[type_name] and name not in _COMMON_TRIGGER_PROPERTIES:
                raise _unrecognized(str(name), str(type_name), path)
        check_property_types(item, str(type_name))
        if type_name == SCHEDULE:
            violations.extend(schedule_violations(item, path))
        triggers.append(dict(item))
    return triggers


def _duplicates(values: list[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for value in values:
        if value in seen and value not in dups:
            dups.append(value)
        seen.add(value)
    return dups


def parse_flow(source: str) -> KestraSimFlow:
    """Parse and validate one flow source; raise :class:`KestraSimConstraintViolation` like Kestra."""
    try:
        document = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (at line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        message = f"Illegal flow source: YAML parsing error: {problem}{line}"
        raise KestraSimConstraintViolation([KestraSimViolation("yaml", message)], message) from None
    if not isinstance(document, dict):
        message = "Illegal flow source: YAML parsing error: the source is not a YAML mapping"
        raise KestraSimConstraintViolation([KestraSimViolation("yaml", message)], message)
    for name in document:
        if name not in FLOW_PROPERTIES:
            raise _unrecognized(str(name), _FLOW_CLASS, _FLOW_CLASS)
    violations: list[KestraSimViolation] = []
    tasks = _parse_tasks(document.get("tasks"), "tasks", violations)
    errors = _parse_tasks(document.get("errors"), "errors", violations)
    finally_tasks = _parse_tasks(document.get("finally"), "finally", violations)
    inputs = _parse_inputs(document.get("inputs"), violations)
    triggers = _parse_triggers(document.get("triggers"), violations)
    flow_id, namespace = document.get("id"), document.get("namespace")
    for name, value, pattern in (
        ("id", flow_id, FLOW_ID_PATTERN),
        ("namespace", namespace, NAMESPACE_PATTERN),
    ):
        if value is None or str(value) == "":
            violations.append(KestraSimViolation(name, "must not be null"))
        elif not re.match(pattern + "$", str(value)):
            violations.append(KestraSimViolation(name, f'must match "{pattern}"'))
        elif len(str(value)) > (100 if name == "id" else 150):
            violations.append(
                KestraSimViolation(name, f"size must be between 1 and {100 if name == 'id' else 150}")
            )
    if not tasks:
        violations.append(KestraSimViolation("tasks", "must not be empty"))
    flow_problems: list[str] = []
    if flow_id in RESERVED_FLOW_IDS:
        flow_problems.append(
            f"Flow id is a reserved keyword: {flow_id}. "
            f"List of reserved keywords: {', '.join(RESERVED_FLOW_IDS)}"
        )
    all_tasks = [t for task in [*tasks, *errors, *finally_tasks] for t in task.walk()]
    if dups := _duplicates([t.id for t in all_tasks]):
        flow_problems.append(f"Duplicate task id with name [{', '.join(dups)}]")
    if dups := _duplicates([str(t.get("id")) for t in triggers]):
        flow_problems.append(f"Duplicate trigger id with name [{', '.join(dups)}]")
    if dups := _duplicates([str(i.get("id")) for i in inputs]):
        flow_problems.append(f"Duplicate input with name [{', '.join(dups)}]")
    outputs = [dict(o) for o in document.get("outputs") or [] if isinstance(o, dict)]
    if dups := _duplicates([str(o.get("id")) for o in outputs]):
        flow_problems.append(f"Duplicate output with name [{', '.join(dups)}]")
    labels = normalize_labels(document.get("labels"))
    for label in labels:
        if label["key"].startswith("system.") and label["key"] != "system.readOnly":
            flow_problems.append(
                "System labels can only be set by Kestra itself, offending label: "
                f"{label['key']}={label['value']}"
            )
    if flow_problems:
        violations.append(KestraSimViolation("", "Invalid Flow: " + ", ".join(flow_problems)))
    if violations:
        raise KestraSimConstraintViolation(violations)
    return KestraSimFlow(
        id=str(flow_id),
        namespace=str(namespace),
        source=source,
        document=document,
        tasks=tasks,
        errors=errors,
        finally_tasks=finally_tasks,
        inputs=inputs,
        outputs=outputs,
        triggers=triggers,
        labels=labels,
        disabled=bool(document.get("disabled", False)),
    )


def _with_properties_as_strings(item: Any, kind: str) -> Any:
    """``item`` with its ``Property`` fields (for ``kind``) written as ``PropertySerializer`` writes them."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    for name in PROPERTY_FIELDS.get(kind, frozenset()):
        if out.get(name) is not None:
            out[name] = java_text(out[name])
    for key in ("tasks", "errors", "finally"):
        if isinstance(out.get(key), list):
            out[key] = [_child_with_properties_as_strings(t) for t in out[key] if isinstance(t, dict)]
    return out


def _child_with_properties_as_strings(item: dict[str, Any]) -> dict[str, Any]:
    """A child task, or a ``Dag``'s ``{task, dependsOn}`` entry whose ``task`` is converted."""
    if "type" not in item and isinstance(item.get("task"), dict):
        return {**item, "task": _with_properties_as_strings(item["task"], str(item["task"].get("type")))}
    converted: dict[str, Any] = _with_properties_as_strings(item, str(item.get("type")))
    return converted


def property_view(document: dict[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The flow's ``inputs``, ``tasks``, ``errors``, ``finally`` and ``triggers`` as Kestra 1.x+ serializes
    them: every ``Property<T>`` value is its expression string (``defaults: 2`` -> ``"2"``, a list or map
    its compact JSON) (``core/.../models/property/Property.java`` ``PropertySerializer``)."""
    view: dict[str, Any] = {"inputs": [_with_properties_as_strings(i, "input") for i in inputs]}
    for key in ("tasks", "errors", "finally", "triggers"):
        if isinstance(document.get(key), list):
            view[key] = [_with_properties_as_strings(t, str(t.get("type"))) for t in document[key]]
    return view


def flow_sources_equal(left: str, right: str) -> bool:
    """Kestra's ``isSameWithSource``: same source text (ignoring surrounding whitespace)."""
    return left.strip() == right.strip()
