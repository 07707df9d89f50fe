"""The migration state file: which Kestra flow replaces which Airflow task, and in which mode.

One YAML file per DAG says, for each task id, the Kestra flow that replaces the task (namespace, flow id,
inputs as Jinja templates over the task's context, how the flow outputs become the task's XCom) and the
task's mode: ``airflow`` (unchanged), ``shadow`` (Airflow runs, Kestra runs too, results compared) or
``kestra`` (Kestra runs instead). Changing a mode is an edit of this file; the DAG file stays the same.

Everything here runs at DAG-parse time, so it only reads the file and checks it: no HTTP, no Airflow
import beyond the configuration. Every problem is reported at once, each naming the file and the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_provider_kestra.exceptions import KestraConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

STATE_FILE_SUFFIX = ".kestra-migration.yml"
"""The state file of ``dags/etl.py`` is ``dags/etl.kestra-migration.yml`` (or ``<folder>/<dag_id>...``)."""
CONFIG_SECTION = "kestra"
STATE_FOLDER_OPTION = "migration_state_folder"
"""``[kestra] migration_state_folder`` (env ``AIRFLOW__KESTRA__MIGRATION_STATE_FOLDER``)."""
MODES = ("airflow", "shadow", "kestra")
ON_MISMATCH = ("log", "fail")
DEFAULT_BUDGET_SECONDS = 60.0
"""How long a shadow run may delay the Airflow task's result once the Airflow side is done."""

_FILE_KEYS = {"version", "dag_id", "kestra_conn_id", "defaults", "cutover", "tasks"}
_DEFAULT_KEYS = {"namespace", "compare", "on_mismatch", "budget", "operator"}
_TASK_KEYS = {
    "mode", "namespace", "flow_id", "inputs", "outputs", "compare", "on_mismatch", "budget", "operator",
    "kestra_inputs",
}  # fmt: skip
_COMPARE_KEYS = {"ignore_keys", "tolerance", "relative_tolerance"}
_CUTOVER_KEYS = {"namespace", "flow_id", "description", "exclude"}
#: ``operator:`` keys passed on to ``KestraTriggerExecutionOperator`` in ``kestra`` mode, with their types.
OPERATOR_ARGS: dict[str, tuple[type, ...]] = {
    "deferrable": (bool,),
    "timeout": (int, float),
    "poll_interval": (int, float),
    "success_states": (list,),
    "stream_logs": (bool,),
    "log_level": (str,),
    "restart_on_retry": (bool,),
    "include_task_outputs": (bool,),
    "labels": (dict,),
    "hook_params": (dict,),
}


class KestraMigrationStateError(KestraConfigError):
    """The state file is missing or wrong; the message names the file and lists every problem by task."""


@dataclass(frozen=True)
class KestraOutputMapping:
    """How the flow outputs become the task's XCom ``return_value``.

    ``whole``: the outputs dict as it is; ``key``: the value of one output; ``map``: a dict built from
    several outputs, ``{xcom_key: output_name}`` (what a ``multiple_outputs`` task returned).
    """

    kind: str = "whole"
    key: str | None = None
    mapping: tuple[tuple[str, str], ...] = ()

    def apply(self, outputs: Mapping[str, Any]) -> Any:
        """The task's XCom value from the flow outputs; a missing output raises ``KeyError`` naming it."""
        if self.kind == "whole":
            return dict(outputs)
        names = [self.key] if self.kind == "key" else [name for _, name in self.mapping]
        missing = [name for name in names if name not in outputs]
        if missing:
            raise KeyError(
                f"flow output(s) {missing} not found; the flow returned {sorted(outputs) or 'no outputs'}"
            )
        if self.kind == "key":
            return outputs[str(self.key)]
        return {xcom_key: outputs[name] for xcom_key, name in self.mapping}

    def describe(self) -> str:
        """Short text for logs: ``whole``, ``key: total`` or ``map: {rows: row_count}``."""
        if self.kind == "key":
            return f"key: {self.key}"
        if self.kind == "map":
            return "map: {" + ", ".join(f"{k}: {v}" for k, v in self.mapping) + "}"
        return "whole"


@dataclass(frozen=True)
class KestraComparisonSpec:
    """How a shadow run's result is compared with the Airflow result (exact by default)."""

    ignore_keys: frozenset[str] = frozenset()
    """Dict keys skipped at any depth (timestamps, run-specific URIs)."""
    tolerance: float = 0.0
    """Numbers are equal when they differ by at most this much..."""
    relative_tolerance: float = 0.0
    """...or by at most this fraction of the larger absolute value."""


@dataclass(frozen=True)
class KestraMigrationTaskSpec:
    """One task's line of the state file, with the file's defaults applied."""

    task_id: str
    mode: str
    namespace: str | None = None
    flow_id: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: KestraOutputMapping = KestraOutputMapping()
    compare: KestraComparisonSpec = KestraComparisonSpec()
    on_mismatch: str = "log"
    budget: float = DEFAULT_BUDGET_SECONDS
    operator_args: dict[str, Any] = field(default_factory=dict)
    kestra_inputs: dict[str, Any] = field(default_factory=dict)
    """Cut-over only: Pebble expressions replacing inputs whose Jinja cannot be translated."""

    @property
    def flow_ref(self) -> str:
        """``namespace.flow_id`` for messages."""
        return f"{self.namespace}.{self.flow_id}"


@dataclass(frozen=True)
class KestraCutoverSpec:
    """Where the whole-DAG flow generated at cut-over goes (defaults: the first task's namespace)."""

    namespace: str | None = None
    flow_id: str | None = None
    description: str | None = None
    exclude: tuple[str, ...] = ()
    """Tasks that exist for Airflow's sake only (deploying the flows...): left out of the flow, their
    dependencies bridged."""


@dataclass(frozen=True)
class KestraMigrationState:
    """A parsed, checked state file."""

    path: Path
    dag_id: str | None
    kestra_conn_id: str
    tasks: dict[str, KestraMigrationTaskSpec]
    cutover: KestraCutoverSpec = KestraCutoverSpec()

    def mode_of(self, task_id: str) -> str:
        """The task's mode; ``airflow`` for a task the file does not name."""
        spec = self.tasks.get(task_id)
        return spec.mode if spec is not None else "airflow"

    def error(self, problems: list[str]) -> KestraMigrationStateError:
        """One error listing every problem, naming this file."""
        return state_error(self.path, problems)


def state_error(path: Path | str, problems: list[str]) -> KestraMigrationStateError:
    """``<file>: N problem(s)`` then one line per problem."""
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return KestraMigrationStateError(
        f"Kestra migration state file {path}: {len(problems)} problem(s):\n{lines}"
    )


def default_state_path(dag_id: str, dag_file: str | Path | None) -> Path:
    """Where the state file of a DAG is looked for.

    ``[kestra] migration_state_folder`` set: ``<folder>/<dag_id>.kestra-migration.yml``; otherwise next to
    the DAG file: ``<dag_file_stem>.kestra-migration.yml``.
    """
    from airflow.configuration import conf

    folder = conf.get(CONFIG_SECTION, STATE_FOLDER_OPTION, fallback=None)
    if folder:
        return Path(folder).expanduser() / f"{dag_id}{STATE_FILE_SUFFIX}"
    if not dag_file:
        raise KestraMigrationStateError(
            f"DAG {dag_id}: no DAG file to put the migration state file next to; pass state_file= or set "
            f"[{CONFIG_SECTION}] {STATE_FOLDER_OPTION}"
        )
    dag_path = Path(dag_file)
    return dag_path.with_name(dag_path.stem + STATE_FILE_SUFFIX)


def load_state(path: str | Path) -> KestraMigrationState:
    """Read and check a state file (structure, modes, flows, outputs); raises one error listing all."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise state_error(path, ["the file does not exist"]) from None
    except OSError as err:
        raise state_error(path, [f"cannot be read: {err}"]) from None
    try:
        # libyaml's loader when installed: ~10x faster, and this runs on every parse of the DAG file.
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise state_error(path, [f"is not valid YAML: {err}"]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise state_error(path, ["must be a YAML mapping with a 'tasks' key"])
    return _parse_document(path, document)


def _parse_document(path: Path, document: dict[str, Any]) -> KestraMigrationState:
    problems: list[str] = []
    _unknown_keys(document, _FILE_KEYS, "top level", problems)
    version = document.get("version", 1)
    if version != 1:
        problems.append(f"version: only version 1 is known, got {version!r}")
    dag_id = document.get("dag_id")
    if dag_id is not None and not isinstance(dag_id, str):
        problems.append(f"dag_id: must be text, got {dag_id!r}")
    conn_id = document.get("kestra_conn_id", "kestra_default")
    if not isinstance(conn_id, str) or not conn_id:
        problems.append(f"kestra_conn_id: must be a connection id, got {conn_id!r}")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append("defaults: must be a mapping")
        defaults = {}
    _unknown_keys(defaults, _DEFAULT_KEYS, "defaults", problems)
    raw_tasks = document.get("tasks") or {}
    if not isinstance(raw_tasks, dict):
        problems.append("tasks: must be a mapping of task id -> task settings")
        raw_tasks = {}
    tasks: dict[str, KestraMigrationTaskSpec] = {}
    for task_id, raw in raw_tasks.items():
        spec = _parse_task(str(task_id), raw, defaults, problems)
        if spec is not None:
            tasks[str(task_id)] = spec
    cutover = _parse_cutover(document.get("cutover"), problems)
    if problems:
        raise state_error(path, problems)
    return KestraMigrationState(
        path=path, dag_id=dag_id, kestra_conn_id=str(conn_id), tasks=tasks, cutover=cutover
    )


def _unknown_keys(raw: Mapping[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def _parse_task(
    task_id: str, raw: Any, defaults: Mapping[str, Any], problems: list[str]
) -> KestraMigrationTaskSpec | None:
    where = f"task {task_id!r}"
    if isinstance(raw, str):  # shorthand: `extract: airflow`
        raw = {"mode": raw}
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping (mode, namespace, flow_id, inputs, outputs...)")
        return None
    before = len(problems)
    _unknown_keys(raw, _TASK_KEYS, where, problems)
    mode = raw.get("mode", "airflow")
    if mode not in MODES:
        problems.append(f"{where}: mode must be one of {', '.join(MODES)}; got {mode!r}")
    namespace = raw.get("namespace", defaults.get("namespace"))
    flow_id = raw.get("flow_id")
    if mode in ("shadow", "kestra"):
        missing = [name for name, value in (("namespace", namespace), ("flow_id", flow_id)) if not value]
        if missing:
            problems.append(
                f"{where}: mode {mode} needs the Kestra flow that replaces the task; missing "
                f"{' and '.join(missing)}"
            )
    for name, value in (("namespace", namespace), ("flow_id", flow_id)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}: {name} must be text, got {value!r}")
    inputs = raw.get("inputs") or {}
    if not isinstance(inputs, dict):
        problems.append(f"{where}: inputs must be a mapping of flow input id -> value or Jinja template")
        inputs = {}
    kestra_inputs = raw.get("kestra_inputs") or {}
    if not isinstance(kestra_inputs, dict):
        problems.append(f"{where}: kestra_inputs must be a mapping of flow input id -> Pebble expression")
        kestra_inputs = {}
    outputs = _parse_outputs(raw.get("outputs", "whole"), where, problems)
    compare = _parse_compare(raw.get("compare", defaults.get("compare")), where, problems)
    on_mismatch = raw.get("on_mismatch", defaults.get("on_mismatch", "log"))
    if on_mismatch not in ON_MISMATCH:
        problems.append(f"{where}: on_mismatch must be 'log' or 'fail', got {on_mismatch!r}")
    budget = _number(
        raw.get("budget", defaults.get("budget", DEFAULT_BUDGET_SECONDS)), f"{where}: budget", problems
    )
    operator_args = {**(defaults.get("operator") or {}), **(raw.get("operator") or {})}
    _check_operator_args(operator_args, where, problems)
    if len(problems) > before:
        return None
    return KestraMigrationTaskSpec(
        task_id=task_id,
        mode=str(mode),
        namespace=namespace,
        flow_id=flow_id,
        inputs={str(k): v for k, v in inputs.items()},
        outputs=outputs,
        compare=compare,
        on_mismatch=str(on_mismatch),
        budget=budget,
        operator_args=operator_args,
        kestra_inputs={str(k): v for k, v in kestra_inputs.items()},
    )


def _number(value: Any, where: str, problems: list[str]) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        problems.append(f"{where} must be a non-negative number of seconds, got {value!r}")
        return 0.0
    return float(value)


def _parse_outputs(raw: Any, where: str, problems: list[str]) -> KestraOutputMapping:
    shape = "outputs must be 'whole', {key: <output name>} or {map: {<xcom key>: <output name>}}"
    if raw == "whole" or raw is None:
        return KestraOutputMapping()
    if isinstance(raw, dict) and len(raw) == 1:
        if isinstance(raw.get("key"), str) and raw["key"]:
            return KestraOutputMapping(kind="key", key=raw["key"])
        mapping = raw.get("map")
        if isinstance(mapping, dict) and mapping and all(isinstance(v, str) for v in mapping.values()):
            return KestraOutputMapping(kind="map", mapping=tuple((str(k), v) for k, v in mapping.items()))
    problems.append(f"{where}: {shape}; got {raw!r}")
    return KestraOutputMapping()


def _parse_compare(raw: Any, where: str, problems: list[str]) -> KestraComparisonSpec:
    if raw is None or raw == "exact":
        return KestraComparisonSpec()
    if not isinstance(raw, dict):
        problems.append(f"{where}: compare must be 'exact' or a mapping ({', '.join(sorted(_COMPARE_KEYS))})")
        return KestraComparisonSpec()
    _unknown_keys(raw, _COMPARE_KEYS, f"{where}: compare", problems)
    ignore = raw.get("ignore_keys") or []
    if not isinstance(ignore, list) or not all(isinstance(k, str) for k in ignore):
        problems.append(f"{where}: compare.ignore_keys must be a list of key names")
        ignore = []
    return KestraComparisonSpec(
        ignore_keys=frozenset(ignore),
        tolerance=_number(raw.get("tolerance", 0.0), f"{where}: compare.tolerance", problems),
        relative_tolerance=_number(
            raw.get("relative_tolerance", 0.0), f"{where}: compare.relative_tolerance", problems
        ),
    )


def _check_operator_args(args: dict[str, Any], where: str, problems: list[str]) -> None:
    for name, value in args.items():
        types = OPERATOR_ARGS.get(name)
        if types is None:
            problems.append(f"{where}: operator.{name} is not supported; known: {sorted(OPERATOR_ARGS)}")
        elif (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            problems.append(
                f"{where}: operator.{name} must be {' or '.join(t.__name__ for t in types)}, got {value!r}"
            )


def _parse_cutover(raw: Any, problems: list[str]) -> KestraCutoverSpec:
    if raw is None:
        return KestraCutoverSpec()
    if not isinstance(raw, dict):
        problems.append("cutover: must be a mapping (namespace, flow_id, description, exclude)")
        return KestraCutoverSpec()
    _unknown_keys(raw, _CUTOVER_KEYS, "cutover", problems)
    exclude = raw.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(t, str) for t in exclude):
        problems.append("cutover: exclude must be a list of task ids")
        exclude = []
    return KestraCutoverSpec(
        namespace=raw.get("namespace"),
        flow_id=raw.get("flow_id"),
        description=raw.get("description"),
        exclude=tuple(exclude),
    )
