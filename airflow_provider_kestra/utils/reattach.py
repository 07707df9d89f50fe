"""The memory of earlier tries: which Kestra execution an earlier try of a task started, and what it is worth.

A retry, or a new try after a worker crash, must reattach to the execution of its task instead of starting
a duplicate. Two memories hold the execution:

- its labels (``airflow.dag_id``, ``run_id``, ``task_id``, ``map_index``, the first try number and
  ``airflow.run_key``), set atomically with the execution, so there is no gap between starting it and
  remembering it; they are the only memory on Airflow < 3.3;
- on Airflow 3.3+, ``task_state_store`` (a direct lookup instead of a search).

``airflow.run_key`` makes the memory unique to one DAG run and one clear of it: a run id that comes back
(a deleted DAG run created again, a fixed ``--run-id``, a second Airflow against the same Kestra) never
adopts an older execution. ``airflow.run_lineage`` is the same DAG run across its clears: clearing a task
starts anew, and the first try after the clear kills what the cleared tries left running (a person asked
for a new run), so two executions of one task never run at once. Nothing here imports Airflow; the
operator hands in its context, hook and logger.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.utils.state import KILL_STATES, is_terminal, state_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.utils.models import KestraExecution
    from airflow_provider_kestra.utils.state import KestraOutcome

LABEL_PREFIX = "airflow."
TRY_ID_LABEL = "airflow.try_id"
"""Unique per try: the hook's idempotency key when the outcome of the create POST is unknown."""
TRY_NUMBER_LABEL = "airflow.try_number"
FIRST_TRY_LABEL = "airflow.first_try_number"
"""First try number since the task was last cleared: tells a retry (reattach) from a clear (start anew)."""
RUN_KEY_LABEL = "airflow.run_key"
"""Unique to one DAG run (its run id, ``run_after`` or logical date, database id when Airflow gives it,
start date and clear number): tries of one run and clear share it, nothing else does."""
RUN_LINEAGE_LABEL = "airflow.run_lineage"
"""The same DAG run across its clears (run id, ``run_after`` or logical date, database id when known)."""
LASTING_HTTP_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 410, 422})
"""Kestra answers that waiting will not change: bad request, credentials refused, execution gone."""
STATE_STORE_KEY = "kestra_execution"
"""``task_state_store`` key (Airflow 3.3+) remembering the execution of this task instance.

The store is used directly rather than through ``ResumableJobMixin``: the mixin has no deferrable path,
resubmits failed jobs (no restart), and leaves open the gap between submitting and persisting the id,
which the execution labels close (they are set atomically with the execution). The labels are also the
only memory on Airflow < 3.3."""
REDEFERRALS_XCOM_KEY = "kestra_redeferrals"
MAX_REDEFERRALS = 10
"""How many times in a row a task deferred again after its trigger stopped on a fault before the try gives
up (leaving the execution running for the next try, never killing it)."""


def is_lasting_error(err: BaseException) -> bool:
    """Whether ``err`` means this try cannot go on watching its execution: a credential refused or revoked
    (401/403), the execution gone (404), a request Kestra will always refuse, a connection that is not
    usable or does not exist, or a programming error. The faults to wait out until the deadline are the
    others: Kestra or a proxy unreachable, 5xx, 429, a cut stream, an answer that is not Kestra's JSON (even
    one that escapes the hook as a bare ``ValueError`` or transport error).

    Neither kind is a reason to kill the execution: after a lasting error the try stops and leaves the
    execution running for the next try, which reattaches to it.
    """
    from airflow_provider_kestra.exceptions import KestraApiError, KestraConfigError, KestraError

    if isinstance(err, KestraConfigError):
        return True
    if isinstance(err, KestraApiError):
        return err.status in LASTING_HTTP_STATUSES
    if isinstance(err, (KestraError, OSError, ValueError)):  # ValueError: JSON or UTF-8 that did not decode
        return False
    # A transport error that escaped the hook unwrapped is a fault too; anything else (a bug, a missing
    # connection) will not get better by waiting.
    return not type(err).__module__.startswith(("httpx", "httpcore", "requests", "urllib3"))


def _digest(*parts: object) -> str:
    return hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).hexdigest()


def _instant(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def dag_run_keys(context: Mapping[str, Any]) -> tuple[str, str]:
    """``(lineage, run key)`` of the context's DAG run: see :data:`RUN_LINEAGE_LABEL` and
    :data:`RUN_KEY_LABEL`. Airflow 3 gives ``run_after``, Airflow 2.11 the run's database ``id`` and
    ``execution_date``; both give ``start_date`` (reset when a finished run is cleared) and
    ``clear_number``."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    anchor = (
        getattr(dag_run, "run_after", None)
        or getattr(dag_run, "execution_date", None)
        or getattr(dag_run, "logical_date", None)
    )
    lineage = _digest(ti.dag_id, ti.run_id, _instant(anchor), getattr(dag_run, "id", None) or "")
    run_key = _digest(
        lineage, _instant(getattr(dag_run, "start_date", None)), getattr(dag_run, "clear_number", None) or 0
    )
    return lineage, run_key


class KestraTryMemory:
    """What earlier tries of one task instance left behind in Kestra, for the try that runs now.

    :param context: The Airflow context of the running try (its ``ti``, and ``task_state_store`` if any).
    :param hook: The client that searches, reads and restarts executions.
    :param logger: The task log, which says what became of the earlier execution.
    :param namespace: Namespace of the flow the task runs.
    :param flow_id: Id of that flow.
    :param retries: The task's ``retries`` (with ``max_tries`` it tells a retry from a cleared task).
    """

    def __init__(
        self,
        context: Mapping[str, Any],
        *,
        hook: KestraHook,
        logger: Any,
        namespace: str,
        flow_id: str,
        retries: int | None,
    ) -> None:
        self._ti = context["ti"]
        self._store = context.get("task_state_store")
        self._hook = hook
        self._log = logger
        self._namespace = namespace
        self._flow_id = flow_id
        first = int(getattr(self._ti, "max_tries", 0) or 0) - int(retries or 0) + 1
        self.first_try = max(1, min(first, int(self._ti.try_number)))
        """The try that opened the current run of this task: tries since then may share an execution."""
        self.lineage, self.run_key = dag_run_keys(context)

    def task_instance_labels(self) -> dict[str, str]:
        """The labels that find the executions of this run of the task (also after a worker crash)."""
        ti = self._ti
        map_index = getattr(ti, "map_index", None)
        return {
            "airflow.dag_id": ti.dag_id,
            "airflow.run_id": ti.run_id,
            "airflow.task_id": ti.task_id,
            "airflow.map_index": str(-1 if map_index is None else map_index),
            RUN_LINEAGE_LABEL: self.lineage,
            RUN_KEY_LABEL: self.run_key,
            FIRST_TRY_LABEL: str(self.first_try),
        }

    def execution_labels(self, user_labels: Mapping[str, str]) -> dict[str, str]:
        """The labels of a new execution: the user's (already validated), this task's, and a fresh try id.

        :raises ValueError: a user label uses the reserved ``airflow.`` prefix.
        """
        reserved = sorted(key for key in user_labels if key.startswith(LABEL_PREFIX))
        if reserved:
            raise ValueError(
                f"{self._ti.task_id}: label keys {reserved} are reserved (the operator sets airflow.*)"
            )
        return {
            **user_labels,
            **self.task_instance_labels(),
            TRY_NUMBER_LABEL: str(self._ti.try_number),
            TRY_ID_LABEL: uuid.uuid4().hex,
        }

    def remember(self, execution_id: str) -> None:
        """Keep the execution in ``task_state_store`` (Airflow 3.3+; the labels already hold it elsewhere)."""
        if self._store is not None:
            self._store.set(
                STATE_STORE_KEY,
                {"execution_id": execution_id, FIRST_TRY_LABEL: self.first_try, RUN_KEY_LABEL: self.run_key},
            )

    def earlier_execution(self, outcome: KestraOutcome, *, restart: bool) -> KestraExecution | None:
        """The execution of an earlier try that this try should follow, or None to start a new one.

        A running one is reattached to, a successful one is taken as it is, a failed one is restarted
        (``restart``, when Kestra agrees) or replaced; a killed one is always replaced.
        """
        execution = self._find()
        return self._reuse(execution, outcome, restart=restart) if execution is not None else None

    def kill_cleared(self) -> list[str]:
        """On the first try after a clear: kill what the cleared tries of this DAG run left running.

        A person cleared the task, asking for a new run of it: the execution an earlier try left behind
        (a deferred task cleared on Airflow 2.11, whose trigger has no kill hook; a try that stopped
        without its deadline) must not run on beside the new one. Returns the ids it asked Kestra to kill.
        """
        if int(self._ti.try_number) <= 1 or int(self._ti.try_number) > self.first_try:
            return []
        labels = {
            k: v for k, v in self.task_instance_labels().items() if k not in (RUN_KEY_LABEL, FIRST_TRY_LABEL)
        }
        found = self._hook.search_executions(
            namespace=self._namespace, flow_id=self._flow_id, labels=labels, size=100
        )
        killed = []
        for execution in found:
            state = state_of(execution)
            mine = _label(execution, RUN_KEY_LABEL) == self.run_key and _label(
                execution, FIRST_TRY_LABEL
            ) == str(self.first_try)
            if is_terminal(state) or state in KILL_STATES or mine:
                continue
            self._log.warning(
                "The task was cleared: killing Kestra execution %s (%s) of an earlier try before starting a "
                "new one",
                execution["id"],
                state,
            )
            self._hook.kill_execution(execution["id"])
            killed.append(execution["id"])
        return killed

    def _find(self) -> KestraExecution | None:
        if int(self._ti.try_number) <= self.first_try:
            return None
        saved = self._saved()
        if (
            saved is not None
            and saved.get(FIRST_TRY_LABEL) == self.first_try
            and saved.get(RUN_KEY_LABEL) in (self.run_key, None)  # None: saved by an earlier release
        ):
            from airflow_provider_kestra.exceptions import KestraNotFoundError

            try:
                return self._hook.get_execution(str(saved["execution_id"]))
            except KestraNotFoundError:
                self._log.warning("Remembered Kestra execution %s no longer exists", saved["execution_id"])
        found = self._hook.search_executions(
            namespace=self._namespace, flow_id=self._flow_id, labels=self.task_instance_labels(), size=1
        )
        # Checked again here: a Kestra that ignored a label filter must not hand over another run's execution.
        if found and _label(found[0], RUN_KEY_LABEL) in (self.run_key, None):
            return found[0]
        return None

    def _saved(self) -> dict[str, Any] | None:
        saved = self._store.get(STATE_STORE_KEY) if self._store is not None else None
        return saved if isinstance(saved, dict) and saved.get("execution_id") else None

    def _reuse(
        self, execution: KestraExecution, outcome: KestraOutcome, *, restart: bool
    ) -> KestraExecution | None:
        execution_id, state = execution["id"], state_of(execution)
        if outcome.classify(state) == "success":
            self._log.info(
                "Kestra execution %s of an earlier try already ended in %s; using it", execution_id, state
            )
            return execution
        if not is_terminal(state) and state not in KILL_STATES:
            self._log.info("Reattaching to Kestra execution %s of an earlier try (%s)", execution_id, state)
            return execution
        if restart and state not in KILL_STATES:
            from airflow_provider_kestra.exceptions import KestraApiError

            try:
                restarted = self._hook.restart_execution(execution_id)
            except KestraApiError as err:
                self._log.warning(
                    "Kestra refused to restart execution %s (%s); starting a new one", execution_id, err
                )
                return None
            self._log.info("Restarted Kestra execution %s of an earlier try (it was %s)", execution_id, state)
            return restarted
        self._log.info(
            "Kestra execution %s of an earlier try ended in %s; starting a new one", execution_id, state
        )
        return None


def redeferrals(context: Mapping[str, Any]) -> int:
    """How many times this try deferred again after an ``error`` event (XCom of the try)."""
    ti = context["ti"]
    try:
        count = ti.xcom_pull(task_ids=ti.task_id, key=REDEFERRALS_XCOM_KEY)
    except Exception:
        return 0
    return count if isinstance(count, int) else 0


def log_left_running(log: Any, hook: KestraHook, execution_id: str, err: BaseException) -> None:
    """Say in the task log that this try stops watching without killing, and where the execution is."""
    try:
        url = hook.execution_ui_url(execution_id)
    except Exception:
        url = "(URL unavailable: Kestra did not answer)"
    log.error(
        "Stopped watching Kestra execution %s (%s). It is left running, not killed: %s. The next try of "
        "this task reattaches to it; kill it in Kestra if it must stop.",
        execution_id,
        err,
        url,
    )


def _label(execution: KestraExecution, key: str) -> str | None:
    """The value of one label of an execution (Kestra sends a list of key/value pairs), None if absent."""
    labels: Any = execution.get("labels") or []
    if isinstance(labels, dict):
        value = labels.get(key)
        return None if value is None else str(value)
    for label in labels:
        if isinstance(label, dict) and label.get("key") == key:
            return str(label.get("value"))
    return None
