"""Move a DAG to Kestra one task at a time: proxy, shadow, compare and cut over, driven by a state file.

Call :func:`migrate_to_kestra` once at the end of the DAG file::

    from airflow_provider_kestra.migration import migrate_to_kestra

    with DAG("etl", ...) as dag:
        ...

    migrate_to_kestra(dag)   # reads etl.kestra-migration.yml next to this file

It reads the DAG's migration state file (see :mod:`.state`) and, for each task it names:

* ``airflow``: leaves the task alone;
* ``shadow``: keeps the task, and also runs its Kestra flow with the same inputs, compares the two
  results and records the verdict (:class:`~.operators.KestraShadowRunner`);
* ``kestra``: replaces the task by a :class:`~.operators.KestraMigrationProxyOperator` with the same task
  id, dependencies, retries, pool, queue, callbacks... whose XCom is the mapped flow outputs.

It runs at DAG-parse time: it reads one YAML file and rewires tasks in memory, with no HTTP call and no
import of the hook or HTTP libraries. Changing a task's mode means editing the state file only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.migration.state import (
    KestraMigrationState,
    KestraMigrationStateError,
    default_state_path,
    load_state,
)

if TYPE_CHECKING:
    from airflow_provider_kestra.migration.state import KestraMigrationTaskSpec

__all__ = [
    "KestraMigrationPlan",
    "KestraMigrationStateError",
    "check_state_against_dag",
    "migrate_to_kestra",
    "resolve_state_path",
]

#: BaseOperator attributes a proxy task takes over from the task it replaces (same constructor names).
CARRIED_TASK_ARGS = (
    "owner", "email", "email_on_retry", "email_on_failure", "retries", "retry_delay",
    "retry_exponential_backoff", "max_retry_delay", "start_date", "end_date", "depends_on_past",
    "ignore_first_depends_on_past", "wait_for_past_depends_before_skipping", "wait_for_downstream",
    "priority_weight", "queue", "pool", "pool_slots", "execution_timeout", "on_execute_callback",
    "on_failure_callback", "on_success_callback", "on_retry_callback", "on_skipped_callback",
    "trigger_rule", "max_active_tis_per_dag", "max_active_tis_per_dagrun", "executor", "executor_config",
    "do_xcom_push", "multiple_outputs", "inlets", "outlets", "doc_md", "run_as_user", "params",
)  # fmt: skip


@dataclass
class KestraMigrationPlan:
    """What :func:`migrate_to_kestra` did to a DAG: the state file and each task's mode."""

    state: KestraMigrationState
    modes: dict[str, str] = field(default_factory=dict)

    def tasks_in(self, mode: str) -> list[str]:
        """Task ids in ``mode`` (``airflow``, ``shadow`` or ``kestra``)."""
        return sorted(task_id for task_id, task_mode in self.modes.items() if task_mode == mode)


def resolve_state_path(dag: Any, state_file: str | Path | None = None) -> Path:
    """``state_file`` if given, else the DAG's default (see :func:`.state.default_state_path`)."""
    if state_file is not None:
        return Path(state_file)
    return default_state_path(dag.dag_id, getattr(dag, "fileloc", None))


def _is_mapped(task: Any) -> bool:
    # ``is_mapped`` on Airflow 3; on 2.11 the class (DecoratedMappedOperator too) derives MappedOperator.
    if getattr(task, "is_mapped", False) is True:
        return True
    if any(cls.__name__ == "MappedOperator" for cls in type(task).__mro__):
        return True
    closest = getattr(task, "get_closest_mapped_task_group", None)
    return closest is not None and closest() is not None


def check_state_against_dag(state: KestraMigrationState, dag: Any) -> None:
    """The state file fits the DAG: known task ids, parsable templates, no mapped task to migrate."""
    problems: list[str] = []
    if state.dag_id is not None and state.dag_id != dag.dag_id:
        problems.append(f"dag_id is {state.dag_id!r} but the file was applied to DAG {dag.dag_id!r}")
    for task_id in state.cutover.exclude:
        if task_id not in dag.task_dict:
            problems.append(f"cutover.exclude: no task {task_id!r} in DAG {dag.dag_id}")
    env = dag.get_template_env()
    for task_id, spec in state.tasks.items():
        task = dag.task_dict.get(task_id)
        if task is None:
            known = ", ".join(sorted(dag.task_dict)[:20])
            problems.append(f"task {task_id!r}: no such task in DAG {dag.dag_id} (tasks: {known})")
            continue
        if spec.mode == "airflow":
            continue
        if _is_mapped(task):
            problems.append(
                f"task {task_id!r}: mode {spec.mode} is not supported for mapped tasks (.expand); "
                "keep it in airflow mode"
            )
        for name, template in _strings(spec.inputs):
            try:
                env.parse(template)
            except Exception as err:  # jinja2.TemplateSyntaxError, kept out of parse-time imports
                line = getattr(err, "lineno", None)
                problems.append(
                    f"task {task_id!r}: input {name!r}: bad Jinja template {template!r}: {err}"
                    + (f" (line {line})" if line and line > 1 else "")
                )
    if problems:
        raise state.error(problems)


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string inside nested dicts/lists, with its path (``rows[0].name``)."""
    if isinstance(value, str):
        return [(path, value)] if ("{{" in value or "{%" in value or "{#" in value) else []
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _strings(item, f"{path}[{index}]")
    return found


def migrate_to_kestra(dag: Any, *, state_file: str | Path | None = None) -> KestraMigrationPlan:
    """Apply the DAG's migration state file: shadow and proxy tasks as it says. Call once per DAG file.

    :param dag: The DAG, after all its tasks are defined (call it after the ``with DAG(...)`` block).
    :param state_file: The state file; default: ``[kestra] migration_state_folder``/``<dag_id>``
        ``.kestra-migration.yml`` when that option is set, else ``<dag file stem>.kestra-migration.yml``
        next to the DAG file.
    :return: The plan (state file and mode of each task), for logs and tests.
    :raises KestraMigrationStateError: The file is missing or wrong (names the file and each task).
    """
    state = load_state(resolve_state_path(dag, state_file))
    check_state_against_dag(state, dag)
    plan = KestraMigrationPlan(state=state, modes=dict.fromkeys(dag.task_dict, "airflow"))
    for task_id, spec in state.tasks.items():
        plan.modes[task_id] = spec.mode
        if spec.mode == "shadow":
            _attach_shadow(dag.task_dict[task_id], spec, state)
        elif spec.mode == "kestra":
            _replace_with_proxy(dag, dag.task_dict[task_id], spec, state)
    return plan


def _attach_shadow(task: Any, spec: KestraMigrationTaskSpec, state: KestraMigrationState) -> None:
    from airflow_provider_kestra.migration.operators import KestraShadowRunner

    previous_pre = getattr(task, "_pre_execute_hook", None)
    previous_post = getattr(task, "_post_execute_hook", None)
    if isinstance(getattr(previous_pre, "__self__", None), KestraShadowRunner):
        return  # migrate_to_kestra was already applied to this DAG
    runner = KestraShadowRunner(
        task,
        spec,
        kestra_conn_id=state.kestra_conn_id,
        state_file=str(state.path),
        previous_pre=previous_pre,
        previous_post=previous_post,
    )
    # The constructor's pre_execute/post_execute arguments land in these attributes on Airflow 2.11 and 3.x.
    task._pre_execute_hook = runner.pre_execute
    task._post_execute_hook = runner.post_execute
    task.on_failure_callback = [*_callbacks(task.on_failure_callback), runner.on_task_failure]
    task.on_retry_callback = [*_callbacks(task.on_retry_callback), runner.on_task_failure]


def _callbacks(value: Any) -> list[Any]:
    """A task's callbacks as a list (Airflow 2.11 keeps ``None``, one callable or a list as given)."""
    if not value:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _replace_with_proxy(
    dag: Any, old: Any, spec: KestraMigrationTaskSpec, state: KestraMigrationState
) -> None:
    from airflow_provider_kestra.migration.operators import KestraMigrationProxyOperator

    if isinstance(old, KestraMigrationProxyOperator):
        return  # already applied
    task_id = old.task_id
    group = old.task_group
    label = task_id
    group_id = getattr(group, "group_id", None)
    if group_id and getattr(group, "prefix_group_id", True) and task_id.startswith(f"{group_id}."):
        label = task_id[len(group_id) + 1 :]
    carried = {name: getattr(old, name) for name in CARRIED_TASK_ARGS if hasattr(old, name)}
    if not carried.get("email"):
        carried.pop("email_on_retry", None)
        carried.pop("email_on_failure", None)
    upstream, downstream = set(old.upstream_task_ids), set(old.downstream_task_ids)
    # Take the old task out of the DAG and its group, so the proxy can use the same id.
    dag.task_dict.pop(task_id)
    if group is not None:
        group.children.pop(task_id, None)
    dag.task_group.used_group_ids.discard(task_id)
    operator_args = dict(spec.operator_args)
    try:
        proxy = KestraMigrationProxyOperator(
            task_id=label,
            dag=dag,
            task_group=None if group is None or group_id is None else group,
            namespace=str(spec.namespace),
            flow_id=str(spec.flow_id),
            inputs=dict(spec.inputs),
            kestra_conn_id=state.kestra_conn_id,
            output_mapping=spec.outputs,
            state_file=str(state.path),
            doc=f"Runs Kestra flow {spec.flow_ref} instead of the Airflow task (migration state file "
            f"{state.path}, mode kestra).",
            **operator_args,
            **carried,
        )
    except (TypeError, ValueError) as err:
        # Put the old task back: a half-migrated DAG must not be left behind by a failed parse.
        dag.task_dict[task_id] = old
        if group is not None:
            group.children[task_id] = old
        dag.task_group.used_group_ids.add(task_id)
        raise state.error([f"task {task_id!r}: cannot build its Kestra proxy: {err}"]) from None
    proxy.upstream_task_ids.update(upstream)
    proxy.downstream_task_ids.update(downstream)
