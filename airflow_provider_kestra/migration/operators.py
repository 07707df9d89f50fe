"""The two ways a migrated task runs: the proxy (``kestra`` mode) and the shadow runner (``shadow`` mode).

* :class:`KestraMigrationProxyOperator` takes the place of the Airflow task: it is a
  :class:`KestraTriggerExecutionOperator` (reattach on retry, kill on timeout, Kestra logs in the task log,
  deferrable) whose return value is the flow outputs mapped to what the task used to return, so
  downstream tasks read the same XCom as before.
* :class:`KestraShadowRunner` rides along the unchanged Airflow task through its pre/post-execute hooks:
  it starts the flow with the same inputs before the task runs, and after it waits (at most the budget)
  for the Kestra result, compares, records and logs. Downstream tasks see the Airflow result.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import KestraError
from airflow_provider_kestra.migration.compare import compare_results, format_differences, to_json_form
from airflow_provider_kestra.migration.report import SHADOW_XCOM_KEY, KestraParityLedger
from airflow_provider_kestra.operators.kestra import KestraTriggerExecutionOperator

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from airflow_provider_kestra.hooks.kestra import KestraExecution, KestraHook
    from airflow_provider_kestra.migration.state import KestraMigrationTaskSpec, KestraOutputMapping

SHADOW_LABEL = "airflow.migration"
"""Label carried by every shadow execution (value ``shadow``)."""


class KestraShadowMismatchError(KestraError):
    """A shadow run disagreed with Airflow and the state file says ``on_mismatch: fail``."""


class KestraMigrationProxyOperator(KestraTriggerExecutionOperator):
    """A task in ``kestra`` mode: runs its Kestra flow and returns the outputs the task used to return.

    Everything else is :class:`KestraTriggerExecutionOperator`: the flow inputs are Jinja templates over
    the task's context, a retry reattaches to the running execution, a timeout kills it, the Kestra logs
    appear in the task log and ``deferrable`` waits in the triggerer. Only the return value changes: the
    flow outputs go through the state file's ``outputs`` mapping (whole dict, one key, or a renamed dict).

    :param output_mapping: How the flow outputs become the XCom ``return_value``.
    :param state_file: The migration state file this task came from (shown in errors).
    """

    ui_color = "#d5c2f7"

    def __init__(self, *, output_mapping: KestraOutputMapping, state_file: str, **kwargs: Any) -> None:
        kwargs["wait_for_completion"] = True
        super().__init__(**kwargs)
        self.output_mapping = output_mapping
        self.state_file = state_file

    def execute(self, context: Context) -> Any:
        """Run (or reattach to) the flow and return the mapped outputs."""
        return self._mapped(super().execute(context))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """After a deferred wait: the mapped outputs."""
        return self._mapped(super().execute_complete(context, event))

    def _mapped(self, outputs: Any) -> Any:
        try:
            return self.output_mapping.apply(outputs or {})
        except KeyError as err:
            raise KestraError(
                f"{self.task_id}: outputs mapping '{self.output_mapping.describe()}' of {self.state_file} "
                f"does not fit flow {self.namespace}.{self.flow_id}: {err.args[0]}"
            ) from None


class KestraShadowRunner:
    """Runs a task's Kestra flow next to the Airflow task and records how the two results compare.

    Installed as the task's pre/post-execute hooks (earlier hooks still run, first). Nothing here can
    fail the Airflow task except a mismatch with ``on_mismatch: fail``: Kestra being unreachable, the flow
    failing or running late is recorded (``error``, ``kestra_failed``, ``no_verdict``) and logged. A late
    execution is never killed: the record says where it is (id and URL).
    """

    def __init__(
        self,
        task: Any,
        spec: KestraMigrationTaskSpec,
        *,
        kestra_conn_id: str,
        state_file: str,
        previous_pre: Callable[..., Any] | None = None,
        previous_post: Callable[..., Any] | None = None,
    ) -> None:
        self.task = task
        self.spec = spec
        self.kestra_conn_id = kestra_conn_id
        self.state_file = state_file
        self.previous_pre = previous_pre
        self.previous_post = previous_post
        self._execution_id: str | None = None
        self._started_at: float | None = None
        self._start_error: str | None = None

    # -- hooks --------------------------------------------------------------------------------------

    def pre_execute(self, context: Context) -> None:
        """Start the shadow execution (or find the one an earlier part of this try started)."""
        if self.previous_pre is not None:
            self.previous_pre(context)
        self._started_at = time.monotonic()
        self._execution_id, self._start_error = None, None
        hook: KestraHook | None = None
        try:
            hook = self._hook()
            self._execution_id = self._start(hook, context)
        except Exception as err:
            self._start_error = f"could not start the shadow run: {err}"
            self.task.log.warning("Kestra shadow of %s: %s", self.spec.task_id, self._start_error)
        finally:
            if hook is not None:
                hook.close()

    def post_execute(self, context: Context, result: Any = None) -> None:
        """Wait (within the budget) for the Kestra result, compare, record, log; fail only if told to."""
        if self.previous_post is not None:
            self.previous_post(context, result)
        airflow_seconds = time.monotonic() - (self._started_at or time.monotonic())
        record = self._base_record(context, airflow_seconds)
        if self._execution_id is None:
            record.update(verdict="error", message=self._start_error or "the shadow run was not started")
        else:
            hook: KestraHook | None = None
            try:
                hook = self._hook()
                record.update(self._verdict(hook, result))
            except Exception as err:  # _verdict handles Kestra's errors; this is the hook's own setup
                record.update(
                    verdict="error",
                    execution_id=self._execution_id,
                    message=f"could not read the shadow run: {err}",
                )
            finally:
                if hook is not None:
                    hook.close()
        self._publish(context, record)
        self._execution_id = None  # recorded: the failure callback (after a `fail` below) has nothing to add
        if record["verdict"] in ("mismatch", "kestra_failed") and self.spec.on_mismatch == "fail":
            raise KestraShadowMismatchError(
                f"{self.spec.task_id}: Kestra shadow run {record['verdict']} "
                f"(on_mismatch: fail in {self.state_file}); see the diff above"
            )

    def on_task_failure(self, context: Context) -> None:
        """The Airflow task failed (or will be retried): nothing to compare; record where the shadow run is.

        Installed as a failure and retry callback. It never raises: a callback error must not hide the
        task's own failure. The shadow execution is left as it is.
        """
        execution_id, self._execution_id = self._execution_id, None
        if execution_id is None:
            return  # not started in this process (e.g. a callback run by the dag processor)
        try:
            airflow_seconds = time.monotonic() - (self._started_at or time.monotonic())
            record = self._base_record(context, airflow_seconds)
            record.update(verdict="airflow_failed", execution_id=execution_id)
            hook = self._hook()
            try:
                record["execution_url"] = hook.execution_ui_url(execution_id)
                record["kestra_state"] = hook.get_execution(execution_id).get("state", {}).get("current")
            except Exception as err:
                record["message"] = f"could not read the shadow run: {err}"
            finally:
                hook.close()
            record.setdefault(
                "message",
                f"the Airflow task failed, nothing to compare; the shadow execution is "
                f"{record.get('kestra_state')} and was left as it is",
            )
            self._publish(context, record, push_xcom=False)
        except Exception as err:
            self.task.log.warning(
                "Could not record the Kestra shadow of failed task %s: %s", self.spec.task_id, err
            )

    # -- steps --------------------------------------------------------------------------------------

    def _hook(self) -> KestraHook:
        from airflow_provider_kestra.hooks.kestra import KestraHook

        return KestraHook(self.kestra_conn_id)

    def _labels(self, context: Context) -> dict[str, str]:
        # No airflow.first_try_number label: the trigger operator's reattach search (which requires it)
        # can then never mistake a shadow run for the execution of a task in kestra mode.
        ti = context["ti"]
        return {
            SHADOW_LABEL: "shadow",
            "airflow.dag_id": ti.dag_id,
            "airflow.run_id": ti.run_id,
            "airflow.task_id": ti.task_id,
            "airflow.try_number": str(ti.try_number),
        }

    def _start(self, hook: KestraHook, context: Context) -> str:
        labels = self._labels(context)
        namespace, flow_id = str(self.spec.namespace), str(self.spec.flow_id)
        # A deferred task runs its pre-execute hooks again when it resumes: keep the run already started.
        found = hook.search_executions(namespace=namespace, flow_id=flow_id, labels=labels, size=1)
        if found:
            execution_id = str(found[0]["id"])
            self.task.log.info("Kestra shadow run of %s already started: %s", self.spec.task_id, execution_id)
            return execution_id
        inputs = self.task.render_template(self.spec.inputs, context)
        execution = hook.create_execution(namespace, flow_id, inputs=inputs, labels=labels)
        self.task.log.info(
            "Started Kestra shadow run %s of flow %s for %s (mode: shadow; the Airflow result is used)",
            execution["id"],
            self.spec.flow_ref,
            self.spec.task_id,
        )
        return str(execution["id"])

    def _verdict(self, hook: KestraHook, result: Any) -> dict[str, Any]:
        from airflow_provider_kestra.exceptions import KestraWaitTimeout
        from airflow_provider_kestra.utils.state import state_of

        execution_id = str(self._execution_id)
        out: dict[str, Any] = {"execution_id": execution_id}
        try:
            out["execution_url"] = hook.execution_ui_url(execution_id)
            if self.spec.budget > 0:
                final = hook.wait_for_execution(
                    execution_id, timeout=self.spec.budget, poll_interval=min(2.0, self.spec.budget)
                )
            else:
                raise KestraWaitTimeout("no budget", execution_id=execution_id, state=None)
        except KestraWaitTimeout as err:
            out.update(
                verdict="no_verdict",
                kestra_state=err.state,
                message=(
                    f"the Kestra execution did not finish within the {self.spec.budget:g}s budget; it was "
                    f"left running: {execution_id} {out.get('execution_url', '')}".rstrip()
                ),
            )
            return out
        except Exception as err:
            out.update(verdict="error", message=f"could not read the shadow run: {err}")
            return out
        state = state_of(final)
        out["kestra_state"] = state
        out["kestra_seconds"] = _execution_seconds(final)
        if state != "SUCCESS":
            out.update(verdict="kestra_failed", message=f"the Kestra execution ended in {state}")
            return out
        try:
            kestra_result = self.spec.outputs.apply(hook.get_outputs(final)["outputs"])
        except KeyError as err:
            out.update(
                verdict="mismatch", message=f"outputs mapping '{self.spec.outputs.describe()}': {err.args[0]}"
            )
            return out
        except Exception as err:
            out.update(verdict="error", message=f"could not read the shadow run's outputs: {err}")
            return out
        differences = compare_results(result, kestra_result, self.spec.compare)
        out["verdict"] = "match" if not differences else "mismatch"
        out["differences"] = [d.as_dict() for d in differences]
        if differences and len(str(to_json_form(kestra_result))) <= 2000:
            out["kestra_result"] = to_json_form(kestra_result)
        return out

    def _base_record(self, context: Context, airflow_seconds: float) -> dict[str, Any]:
        ti = context["ti"]
        return {
            "recorded_at": datetime.now(timezone.utc).isoformat(),
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": getattr(ti, "map_index", -1),
            "try_number": ti.try_number,
            "namespace": self.spec.namespace,
            "flow_id": self.spec.flow_id,
            "state_file": self.state_file,
            "airflow_seconds": round(airflow_seconds, 3),
        }

    def _publish(self, context: Context, record: dict[str, Any], *, push_xcom: bool = True) -> None:
        log = self.task.log
        verdict = record["verdict"]
        where = f"execution {record.get('execution_id')} {record.get('execution_url') or ''}".rstrip()
        summary = (
            f"Kestra shadow of {self.spec.task_id} (flow {self.spec.flow_ref}, {where}): {verdict.upper()}; "
            f"Airflow {record['airflow_seconds']:.2f}s, Kestra "
            + (f"{record['kestra_seconds']:.2f}s" if record.get("kestra_seconds") is not None else "-")
        )
        if verdict == "match":
            log.info("%s", summary)
        else:
            details = record.get("message") or ""
            if record.get("differences"):
                details = f"{len(record['differences'])} difference(s):\n" + format_differences(
                    record["differences"]
                )
            log.warning("%s\n%s", summary, details)
        try:
            path = KestraParityLedger().append(record)
            log.info("Shadow record appended to %s", path)
        except OSError as err:
            log.warning("Could not write the shadow record to the ledger: %s", err)
        if push_xcom:
            context["ti"].xcom_push(key=SHADOW_XCOM_KEY, value=record)


def _execution_seconds(execution: KestraExecution) -> float | None:
    """The execution's duration from its state (``duration`` or start/end dates)."""
    state = execution.get("state") or {}
    duration = state.get("duration")
    if isinstance(duration, str):
        seconds = _iso_duration_seconds(duration)
        if seconds is not None:
            return round(seconds, 3)
    start, end = state.get("startDate"), state.get("endDate")
    if isinstance(start, str) and isinstance(end, str):
        try:
            began = datetime.fromisoformat(start.replace("Z", "+00:00"))
            ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
        except ValueError:
            return None
        return round((ended - began).total_seconds(), 3)
    return None


def _iso_duration_seconds(text: str) -> float | None:
    """``PT1M2.5S`` -> 62.5 (days, hours, minutes, seconds); ``None`` when unreadable."""
    import re

    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", text)
    if not match:
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds
