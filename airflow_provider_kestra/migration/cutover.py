"""Cut-over: once every task of a DAG runs in Kestra, generate one Kestra flow for the whole DAG.

Each task becomes a ``Subflow`` task calling its mapped flow, in dependency order: a plain list (Kestra
runs a flow's tasks one after the other, as ``Sequential`` would) when the DAG is a chain, else one
``Dag`` task whose entries carry ``dependsOn``. The DAG's schedule becomes a ``Schedule`` trigger (cron
and time zone), its params become flow inputs, and the tasks' Jinja inputs are translated to Pebble
where the meaning is the same (``params.x``, ``ds``, ``ts``, ``run_id``, ``ti.xcom_pull(...)`` of a
migrated task). Anything that cannot be translated is refused with a message saying what and why,
never guessed.

The trigger is generated ``disabled: true`` unless asked otherwise: deploy the flow, pause the Airflow
DAG, then enable the trigger, so the two schedulers never both run the pipeline.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import yaml

from airflow_provider_kestra.exceptions import KestraConfigError

if TYPE_CHECKING:
    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.migration.state import KestraMigrationState, KestraMigrationTaskSpec

SUBFLOW_TYPE = "io.kestra.plugin.core.flow.Subflow"
DAG_TASK_TYPE = "io.kestra.plugin.core.flow.Dag"
SCHEDULE_TYPE = "io.kestra.plugin.core.trigger.Schedule"
TRIGGER_DATE = "(trigger.date ?? execution.startDate)"
"""The run's date in Kestra: the schedule's fire time, or the start of a manual execution."""
#: Airflow context expressions with a Kestra (Pebble) equivalent.
CONTEXT_EXPRESSIONS = {
    "ds": f"{TRIGGER_DATE} | date('yyyy-MM-dd')",
    "ds_nodash": f"{TRIGGER_DATE} | date('yyyyMMdd')",
    "ts": TRIGGER_DATE,
    "logical_date": TRIGGER_DATE,
    "run_id": "execution.id",
    "dag.dag_id": "flow.id",
}
#: Jinja filters with a Pebble filter of the same meaning.
FILTERS = {"tojson": "toJson", "upper": "upper", "lower": "lower", "trim": "trim", "length": "length"}
PARAM_INPUT_TYPES = {"string": "STRING", "integer": "INT", "number": "FLOAT", "boolean": "BOOLEAN",
                     "object": "JSON", "array": "JSON"}  # fmt: skip

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
_PARAM = re.compile(r"^params(?:\.([A-Za-z_]\w*)|\[\s*['\"]([^'\"]+)['\"]\s*\])$")
_XCOM = re.compile(
    r"^(?:ti|task_instance)\.xcom_pull\(\s*task_ids\s*=\s*['\"]([^'\"]+)['\"]\s*\)"
    r"((?:\s*\[\s*['\"][^'\"]+['\"]\s*\]|\.[A-Za-z_]\w*)*)$"
)
_SUBSCRIPT = re.compile(r"\[\s*['\"]([^'\"]+)['\"]\s*\]|\.([A-Za-z_]\w*)")


class KestraCutoverError(KestraConfigError):
    """The DAG cannot be turned into one flow yet (tasks not in kestra mode, untranslatable parts)."""


@dataclass
class KestraCutoverFlow:
    """The generated flow: its id, YAML source, and notes on what changes in behaviour."""

    namespace: str
    flow_id: str
    source: str
    notes: list[str] = field(default_factory=list)


def kestra_task_id(task_id: str) -> str:
    """A Kestra task id for an Airflow one (Kestra allows letters, digits, ``_`` and ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", task_id)


def build_cutover_flow(
    dag: Any,
    state: KestraMigrationState,
    *,
    without_schedule: bool = False,
    enable_trigger: bool = False,
) -> KestraCutoverFlow:
    """The whole-DAG flow; raises :class:`KestraCutoverError` listing every blocking problem.

    :param without_schedule: Generate the flow without a trigger when the schedule has no Kestra
        equivalent (instead of refusing).
    :param enable_trigger: Generate the ``Schedule`` trigger enabled (default: ``disabled: true``).
    """
    problems: list[str] = []
    upstream = _bridged_upstream(dag, set(state.cutover.exclude))
    order = _topological_order(dag, upstream)
    if not order:
        raise KestraCutoverError(f"DAG {dag.dag_id}: every task is in cutover.exclude; nothing to cut over")
    not_ready = [f"{tid} ({state.mode_of(tid)})" for tid in order if state.mode_of(tid) != "kestra"]
    if not_ready:
        raise KestraCutoverError(
            f"DAG {dag.dag_id}: cut-over needs every task in kestra mode in {state.path}; not yet: "
            + ", ".join(not_ready)
        )
    ids = {tid: kestra_task_id(tid) for tid in order}
    clashes = sorted({k for k in ids.values() if list(ids.values()).count(k) > 1})
    if clashes:
        problems.append(f"task ids {clashes} collide once made Kestra-safe (dots become '_')")
    notes: list[str] = []
    subflows: dict[str, dict[str, Any]] = {}
    for tid in order:
        spec = state.tasks[tid]
        inputs = _translate_inputs(spec, state, ids, problems)
        subflows[tid] = {
            "id": ids[tid],
            "type": SUBFLOW_TYPE,
            "namespace": spec.namespace,
            "flowId": spec.flow_id,
            **({"inputs": inputs} if inputs else {}),
            "wait": True,
            "transmitFailed": True,
        }
        task = dag.task_dict[tid]
        rule = str(getattr(task, "trigger_rule", "all_success"))
        if rule.split(".")[-1].lower() != "all_success":
            problems.append(
                f"task {tid}: trigger rule {rule} has no equivalent in Kestra's Dag task (it runs a task "
                "when all its dependencies succeeded)"
            )
        if int(getattr(task, "retries", 0) or 0) > 0:
            notes.append(
                f"task {tid}: Airflow retried it {task.retries} time(s); add a `retry:` to the Subflow task "
                f"{ids[tid]} (or to flow {spec.flow_ref}) if Kestra should too"
            )
    triggers, schedule_notes = translate_schedule(dag, problems, without_schedule=without_schedule)
    notes += schedule_notes
    for trigger in triggers:
        if not enable_trigger:
            trigger["disabled"] = True
    flow_inputs = translate_params(dag, problems)
    if problems:
        raise KestraCutoverError(
            f"DAG {dag.dag_id} cannot be cut over yet ({len(problems)} problem(s)):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    namespace = state.cutover.namespace or str(state.tasks[order[0]].namespace)
    flow_id = state.cutover.flow_id or kestra_task_id(dag.dag_id)
    document: dict[str, Any] = {
        "id": flow_id,
        "namespace": namespace,
        "description": state.cutover.description
        or f"Airflow DAG {dag.dag_id}, cut over to Kestra: each task runs its migrated flow as a subflow.",
        "labels": {"migrated-from": "airflow", "airflow-dag-id": kestra_task_id(dag.dag_id)},
    }
    if flow_inputs:
        document["inputs"] = flow_inputs
    document["tasks"] = _arrange(order, upstream, subflows, ids)
    if triggers:
        document["triggers"] = triggers
    header = (
        f"# Generated by `python -m airflow_provider_kestra.migration cutover` from DAG {dag.dag_id}\n"
        f"# and its migration state file {state.path.name}. Review before deploying.\n"
    )
    if triggers and not enable_trigger:
        header += (
            "# The Schedule trigger is disabled: pause the Airflow DAG first, then enable it here, so the\n"
            "# pipeline never runs on both schedulers.\n"
        )
    for note in notes:
        header += f"# NOTE: {note}\n"
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
    return KestraCutoverFlow(namespace=namespace, flow_id=flow_id, source=header + body, notes=notes)


def _bridged_upstream(dag: Any, excluded: set[str]) -> dict[str, set[str]]:
    """Each kept task's upstream tasks, an excluded task's own upstream standing in for it."""

    def kept(task_ids: set[str]) -> set[str]:
        out: set[str] = set()
        for tid in task_ids:
            out |= kept(set(dag.task_dict[tid].upstream_task_ids)) if tid in excluded else {tid}
        return out

    return {
        tid: kept(set(task.upstream_task_ids)) for tid, task in dag.task_dict.items() if tid not in excluded
    }


def _topological_order(dag: Any, upstream: dict[str, set[str]]) -> list[str]:
    """Task ids upstream first (ties in the DAG's own task order)."""
    position = {tid: index for index, tid in enumerate(dag.task_dict)}
    pending = {tid: set(ups) for tid, ups in upstream.items()}
    order: list[str] = []
    while pending:
        ready = sorted((tid for tid, ups in pending.items() if not ups), key=position.__getitem__)
        if not ready:
            raise KestraCutoverError(f"DAG {dag.dag_id} has a cycle among {sorted(pending)}")
        for tid in ready:
            order.append(tid)
            del pending[tid]
        for ups in pending.values():
            ups.difference_update(ready)
    return order


def _is_chain(order: list[str], upstream: dict[str, set[str]]) -> bool:
    for before, after in itertools.pairwise(order):
        if upstream[after] != {before}:
            return False
    return not upstream[order[0]]


def _arrange(
    order: list[str], upstream: dict[str, set[str]], subflows: dict[str, dict[str, Any]], ids: dict[str, str]
) -> list[dict[str, Any]]:
    """A chain stays a list (Kestra runs it in order); anything else goes into one ``Dag`` task."""
    if _is_chain(order, upstream):
        return [subflows[tid] for tid in order]
    entries = []
    for tid in order:
        entry: dict[str, Any] = {"task": subflows[tid]}
        depends_on = sorted(ids[u] for u in upstream[tid])
        if depends_on:
            entry["dependsOn"] = depends_on
        entries.append(entry)
    dag_id = "pipeline" if "pipeline" not in ids.values() else "pipeline_dag"
    return [{"id": dag_id, "type": DAG_TASK_TYPE, "tasks": entries}]


# -- inputs -------------------------------------------------------------------------------------------


def _translate_inputs(
    spec: KestraMigrationTaskSpec, state: KestraMigrationState, ids: dict[str, str], problems: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in spec.inputs.items():
        if name in spec.kestra_inputs:
            out[name] = spec.kestra_inputs[name]
            continue
        try:
            out[name] = _translate_value(value, state, ids)
        except ValueError as err:
            problems.append(
                f"task {spec.task_id}: input {name!r}: {err}; give its Pebble equivalent in the state file "
                f"under tasks.{spec.task_id}.kestra_inputs.{name}"
            )
    for name, value in spec.kestra_inputs.items():
        out.setdefault(name, value)
    return out


def _translate_value(value: Any, state: KestraMigrationState, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _translate_value(v, state, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_translate_value(v, state, ids) for v in value]
    if not isinstance(value, str):
        return value
    if "{%" in value or "{#" in value:
        raise ValueError(f"Jinja statements/comments in {value!r} cannot be translated")
    return _EXPRESSION.sub(lambda m: "{{ " + translate_expression(m.group(1), state, ids) + " }}", value)


def translate_expression(expression: str, state: KestraMigrationState, ids: dict[str, str]) -> str:
    """One Jinja expression (inside ``{{ }}``) as Pebble; ``ValueError`` saying why when impossible."""
    base, *filters = [part.strip() for part in expression.split("|")]
    translated = _translate_base(base, state, ids)
    for raw in filters:
        name = raw.split("(")[0].strip()
        if name not in FILTERS or "(" in raw:
            raise ValueError(f"Jinja filter {raw!r} has no known Pebble equivalent")
        translated += f" | {FILTERS[name]}"
    return translated


def _translate_base(base: str, state: KestraMigrationState, ids: dict[str, str]) -> str:
    if base in CONTEXT_EXPRESSIONS:
        return CONTEXT_EXPRESSIONS[base]
    match = _PARAM.match(base)
    if match:
        return f"inputs.{match.group(1) or match.group(2)}"
    match = _XCOM.match(base)
    if not match:
        raise ValueError(f"{{{{ {base} }}}} has no known Kestra equivalent")
    source, tail = match.group(1), match.group(2)
    keys = [a or b for a, b in _SUBSCRIPT.findall(tail or "")]
    spec = state.tasks.get(source)
    if spec is None or source not in ids:
        raise ValueError(f"xcom_pull of task {source!r}, which is not a migrated task of this DAG")
    path = f"outputs.{ids[source]}.outputs"
    mapping = spec.outputs
    if mapping.kind == "key":
        path += f".{mapping.key}"
    elif mapping.kind == "map":
        renamed = dict(mapping.mapping)
        if not keys or keys[0] not in renamed:
            raise ValueError(
                f"xcom_pull of {source!r} (outputs map {sorted(renamed)}) must select one of its keys"
            )
        path += f".{renamed[keys.pop(0)]}"
    return path + "".join(f".{key}" if re.fullmatch(r"[A-Za-z_]\w*", key) else f"['{key}']" for key in keys)


# -- params -------------------------------------------------------------------------------------------


def translate_params(dag: Any, problems: list[str]) -> list[dict[str, Any]]:
    """The DAG params as flow inputs (type from the param's JSON schema, default from its value)."""
    params = getattr(dag, "params", None) or {}
    inputs: list[dict[str, Any]] = []
    for name in params:
        param = params.get_param(name) if hasattr(params, "get_param") else None
        schema = dict(getattr(param, "schema", {}) or {})
        has_value = bool(getattr(param, "has_value", True))
        value = getattr(param, "value", params[name]) if has_value else None
        declared = schema.get("type")
        types = [t for t in (declared if isinstance(declared, list) else [declared]) if t and t != "null"]
        if len(types) > 1:
            problems.append(f"param {name}: several types {types} cannot be one Kestra input type")
            continue
        kind = PARAM_INPUT_TYPES.get(types[0]) if types else _type_of(value)
        if kind is None:
            problems.append(f"param {name}: JSON schema type {types[0]!r} has no Kestra input type")
            continue
        item: dict[str, Any] = {"id": name, "type": kind}
        description = getattr(param, "description", None)
        if description:
            item["description"] = description
        if value is not None:
            item["defaults"] = value
        item["required"] = value is None and "null" not in (declared if isinstance(declared, list) else [])
        inputs.append(item)
    return inputs


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INT"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, (dict, list)):
        return "JSON"
    return "STRING"


# -- schedule -----------------------------------------------------------------------------------------


def translate_schedule(
    dag: Any, problems: list[str], *, without_schedule: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """``Schedule`` triggers equivalent to the DAG's timetable, and notes on behaviour differences.

    What has no equivalent (assets/datasets, ``@once``, continuous, event lists, custom timetables,
    timedeltas that are not a whole divisor of an hour or a day, cron with seconds) is a problem, or a
    note when ``without_schedule`` is set (then no trigger is generated).
    """
    timetable = dag.timetable
    name = type(timetable).__name__
    notes: list[str] = []
    crons: list[tuple[str, str]] = []
    reason: str | None = None
    if name == "NullTimetable":
        return [], [f"DAG {dag.dag_id} has no schedule (schedule=None): the flow has no trigger"]
    if name in ("CronTriggerTimetable", "CronDataIntervalTimetable"):
        crons.append(_cron_of(timetable))
        if name == "CronDataIntervalTimetable":
            notes.append(
                "the DAG used CronDataIntervalTimetable: Airflow ran each interval at its end with "
                "logical_date = interval start; Kestra fires at the cron time and trigger.date is that "
                "time (Airflow's data_interval_end)"
            )
        if _attr(timetable, "interval") not in (None, timedelta(0)):
            notes.append("the timetable's data interval is not carried over (Kestra has none)")
    elif name == "MultipleCronTriggerTimetable":
        crons.extend(_cron_of(t) for t in _attr(timetable, "timetables") or [])
    elif name in ("DeltaTriggerTimetable", "DeltaDataIntervalTimetable"):
        delta = _attr(timetable, "delta")
        cron = delta_to_cron(delta) if isinstance(delta, timedelta) else None
        if cron is None:
            reason = (
                f"schedule every {delta} cannot be written as a cron (only whole divisors of an hour or a "
                "day, one day or one week are)"
            )
        else:
            crons.append((cron, "UTC"))
            notes.append(
                f"schedule every {delta} became cron {cron!r} (UTC): Airflow counted from the start date "
                "or last run, Kestra fires on the clock"
            )
    elif name in ("OnceTimetable",):
        reason = "schedule '@once' has no Kestra trigger: run the flow once by hand instead"
    elif name in ("ContinuousTimetable",):
        reason = "schedule '@continuous' has no Kestra trigger"
    elif "Asset" in name or "Dataset" in name:
        reason = (
            f"asset/dataset schedule ({name}) cannot be translated: in Kestra use a Flow trigger on the "
            "upstream flow's executions, or a Webhook trigger called by the producer"
        )
    else:
        reason = f"custom timetable {name} cannot be translated into a Kestra trigger"
    for cron, _ in crons:
        if cron.startswith("@"):
            continue
        if len(cron.split()) != 5:
            reason = f"cron {cron!r} has {len(cron.split())} fields; only 5-field crons are translated"
    if reason is not None:
        if without_schedule:
            return [], [*notes, f"{reason}; the flow was generated without a trigger"]
        problems.append(f"{reason} (or pass --without-schedule to generate the flow without a trigger)")
        return [], notes
    triggers = []
    for index, (cron, zone) in enumerate(crons):
        trigger_id = "schedule" if len(crons) == 1 else f"schedule_{index + 1}"
        triggers.append({"id": trigger_id, "type": SCHEDULE_TYPE, "cron": cron, "timezone": zone})
    return triggers, notes


def _attr(obj: Any, name: str) -> Any:
    """Timetable attribute: public on Airflow 3's SDK timetables, ``_name`` on Airflow 2's."""
    return getattr(obj, name, getattr(obj, f"_{name}", None))


def _cron_of(timetable: Any) -> tuple[str, str]:
    expression = str(_attr(timetable, "expression"))
    zone = _attr(timetable, "timezone")
    zone_name = getattr(zone, "name", None) or str(zone or "UTC")
    return expression, zone_name


def delta_to_cron(delta: timedelta) -> str | None:
    """A cron firing every ``delta`` on the clock, when one exists (else ``None``)."""
    seconds = delta.total_seconds()
    if seconds <= 0 or seconds % 60:
        return None
    minutes = int(seconds // 60)
    if minutes < 60:
        if 60 % minutes:
            return None
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60:
        return None
    hours = minutes // 60
    if hours < 24:
        if 24 % hours:
            return None
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    return {24: "0 0 * * *", 168: "0 0 * * 0"}.get(hours)


# -- Kestra side --------------------------------------------------------------------------------------


def validate_cutover_flow(hook: KestraHook, flow: KestraCutoverFlow) -> list[str]:
    """Kestra's verdict on the generated flow (``POST /flows/validate``): the problems, empty if valid."""
    problems = hook.validate_flows(flow.source, filenames=[f"{flow.flow_id}.yml"])
    return [str(problem["message"]) for problem in problems]
