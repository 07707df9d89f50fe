"""Event-driven scheduling on Kestra executions (Airflow 3): an ``AssetWatcher`` trigger.

:class:`KestraExecutionEventTrigger` fires one :class:`~airflow.triggers.base.TriggerEvent` per Kestra
execution that reaches one of the watched states (``SUCCESS`` by default), so a DAG scheduled on the
watched ``Asset`` runs once per such execution and reads the execution from
``triggering_asset_events``::

    from airflow.sdk import Asset, AssetWatcher
    from airflow_provider_kestra.triggers.kestra_events import KestraExecutionEventTrigger

    nightly = Asset(
        "kestra://company.team/nightly",
        watchers=[
            AssetWatcher(
                name="kestra_nightly_succeeded",
                trigger=KestraExecutionEventTrigger(namespace="company.team", flow_id="nightly"),
            )
        ],
    )

How it stays cheap and exactly-once (details in ``docs/events.md``):

* **One search per poll for many watchers.** Watchers with the same connection and Kestra-side filters
  return the same :meth:`~KestraExecutionEventTrigger.shared_stream_key`; Airflow 3.3's triggerer then
  runs :meth:`~KestraExecutionEventTrigger.open_shared_stream` once for all of them and hands every poll's
  snapshot to each watcher's :meth:`~KestraExecutionEventTrigger.filter_shared_stream`.
* **A snapshot, not a cursor.** Each poll searches the executions that *started* within ``look_back`` and
  are in a watched state, so a watcher that (re)subscribes late, or after a triggerer restart, still sees
  every execution of the window.
* **A ledger in the asset state store.** Which executions a watcher already fired for lives in Airflow
  3.3's asset state store of the watched asset (not in the trigger's kwargs, which are fixed when the
  trigger is created). It is written a few seconds *after* the event left the trigger, once the triggerer
  has stored it, so a crash never loses an event; see ``docs/events.md`` for the exact guarantee.

On Airflow 2 the module imports, but ``KestraExecutionEventTrigger`` does not exist: importing it raises
:class:`KestraAirflowVersionError` (an ``ImportError``) saying that Airflow 3 is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.utils.models import KestraExecutionQuery
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING or AIRFLOW_V_3_0_PLUS:
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
else:  # Airflow 2: the class below is deleted at the end of the module (see __getattr__)
    BaseEventTrigger = object

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable, Iterable, Mapping, Sequence

    from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook
    from airflow_provider_kestra.utils.models import KestraExecution

__all__ = [
    "DEFAULT_LOOK_BACK_SECONDS",
    "DEFAULT_MAX_OUTPUTS_BYTES",
    "KestraAirflowVersionError",
    "KestraExecutionEventLedger",
    "KestraExecutionEventTrigger",
    "build_execution_event",
]

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 30.0
"""Seconds between two searches of one shared stream."""
DEFAULT_LOOK_BACK_SECONDS = 6 * 3600.0
"""How far back (by execution *start* date) each search looks: the longest execution plus the longest
triggerer outage that must not lose an execution."""
DEFAULT_MAX_OUTPUTS_BYTES = 64 * 1024
"""Largest flow-outputs JSON (compact, UTF-8) carried in an event; above it the outputs are left out."""
DEFAULT_MAX_RESULTS = 200
"""Page size of the search; a full page is logged as a warning (older executions may not be seen)."""
SHARED_OUTPUTS_CAP_BYTES = 1024 * 1024
"""Outputs larger than this are not even kept by the shared poll loop (no watcher may carry them)."""
COMMIT_DELAY_SECONDS = 5.0
"""How long after firing an event the ledger records it: long enough for the triggerer to have stored
the event (it syncs with its supervisor every second), so recording never runs ahead of storing."""
LEDGER_FORMAT_VERSION = 1


class KestraAirflowVersionError(ImportError):
    """Raised when a feature that needs Airflow 3 (event-driven scheduling) is imported on Airflow 2."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parse_instant(value: Any) -> datetime | None:
    """A Kestra date-time (ISO-8601, ``Z`` or offset) as an aware datetime; None when absent or invalid."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _labels_of(execution: Mapping[str, Any]) -> dict[str, str]:
    """Kestra labels (a list of ``{key, value}``, or a map on some servers) as a dict."""
    raw = execution.get("labels") or []
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(item.get("key")): str(item.get("value")) for item in raw if isinstance(item, dict)}


def reached_at(execution: Mapping[str, Any]) -> str | None:
    """When the execution entered its current state: the last state-history entry of that state, else its
    end date, else its start date (ISO text as Kestra sent it)."""
    state = execution.get("state") or {}
    current = state.get("current")
    for entry in reversed(state.get("histories") or []):
        if entry.get("state") == current and entry.get("date"):
            return str(entry["date"])
    return state.get("endDate") or state.get("startDate")


def build_execution_event(
    execution: Mapping[str, Any], *, url: str, include_outputs: bool = True, max_outputs_bytes: int
) -> dict[str, Any]:
    """The JSON payload of one execution event (what ``triggering_asset_events`` shows as ``extra``).

    Flow outputs larger than ``max_outputs_bytes`` of compact JSON are left out: ``outputs`` is then None,
    ``outputs_truncated`` True and ``outputs_size`` gives their size, so an asset event (stored in
    Airflow's metadata DB) never carries megabytes. ``outputs_size`` is always set when outputs are read.
    """
    state = execution.get("state") or {}
    payload: dict[str, Any] = {
        "execution_id": execution.get("id"),
        "namespace": execution.get("namespace"),
        "flow_id": execution.get("flowId"),
        "flow_revision": execution.get("flowRevision"),
        "state": str(state.get("current") or "").upper(),
        "start_date": state.get("startDate"),
        "end_date": state.get("endDate"),
        "reached_at": reached_at(execution),
        "labels": _labels_of(execution),
        "url": url,
        "outputs": None,
        "outputs_truncated": False,
    }
    if include_outputs:
        outputs = dict(execution.get("outputs") or {})
        size = len(json.dumps(outputs, separators=(",", ":"), default=str).encode("utf-8"))
        payload["outputs_size"] = size
        if size <= max_outputs_bytes:
            payload["outputs"] = outputs
        else:
            payload["outputs_truncated"] = True
    return payload


def bound_event_outputs(
    event: Mapping[str, Any], *, include_outputs: bool, max_outputs_bytes: int
) -> dict[str, Any]:
    """A copy of a shared-loop event with one watcher's outputs settings applied."""
    bounded = dict(event)
    if not include_outputs:
        bounded["outputs"] = None
        bounded["outputs_truncated"] = False
        bounded.pop("outputs_size", None)
    elif int(event.get("outputs_size") or 0) > max_outputs_bytes:
        bounded["outputs"] = None
        bounded["outputs_truncated"] = True
    return bounded


@dataclass
class KestraExecutionEventLedger:
    """Which executions one watcher already fired for, and since when it watches.

    ``since``: executions that reached their state before it never fire (the watcher's first start).
    ``seen``: id -> start date of the executions fired for that a search can still return (started within
    the look-back window); older ones are pruned, since the search no longer returns them.
    ``pending``: ids fired but not yet recorded in the state store, with the monotonic time they fired.
    """

    since: datetime
    seen: dict[str, str] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_documents(cls, documents: Iterable[Any], now: datetime) -> KestraExecutionEventLedger:
        """Merge the stored documents of every watched asset (none: a new watcher, watching from ``now``)."""
        since: datetime | None = None
        seen: dict[str, str] = {}
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("version") != LEDGER_FORMAT_VERSION:
                continue
            stored_since = _parse_instant(doc.get("since"))
            if stored_since is not None and (since is None or stored_since < since):
                since = stored_since
            seen.update({str(k): str(v) for k, v in (doc.get("seen") or {}).items()})
        return cls(since=since or now, seen=seen)

    def accepts(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` is new: not fired before, and reached its state at or after ``since``."""
        if event.get("execution_id") in self.seen:
            return False
        when = _parse_instant(event.get("reached_at"))
        return when is not None and when >= self.since

    def mark(self, event: Mapping[str, Any]) -> None:
        """Remember that ``event`` fired; it stays pending (not in :meth:`document`) until settled."""
        execution_id = str(event["execution_id"])
        self.seen[execution_id] = str(event.get("start_date") or event.get("reached_at") or "")
        self.pending[execution_id] = time.monotonic()

    def prune(self, now: datetime, look_back: float) -> None:
        """Forget executions that started before the look-back window: no search returns them again."""
        horizon = now - timedelta(seconds=look_back)
        for execution_id, started in list(self.seen.items()):
            when = _parse_instant(started)
            if when is not None and when < horizon and execution_id not in self.pending:
                del self.seen[execution_id]

    def settle(self, before: float) -> None:
        """Count events fired before monotonic time ``before`` as stored by the triggerer."""
        self.pending = {k: v for k, v in self.pending.items() if v > before}

    def document(self) -> dict[str, Any]:
        """The JSON kept in the asset state store: everything fired except what is still pending."""
        return {
            "version": LEDGER_FORMAT_VERSION,
            "since": self.since.isoformat(),
            "seen": {k: v for k, v in self.seen.items() if k not in self.pending},
        }


class KestraExecutionEventTrigger(BaseEventTrigger):
    """Fire one event per Kestra execution that reaches a watched state; for ``AssetWatcher`` (Airflow 3).

    :param namespace: Kestra namespace of the executions.
    :param flow_id: Only executions of this flow (default: every flow of the namespace).
    :param states: States that fire an event (default ``("SUCCESS",)``). An execution fires once, the first
        time a poll sees it in one of them.
    :param labels: Labels the execution must carry (all of them).
    :param include_child_namespaces: Also match executions of child namespaces (``company.team`` matches
        ``company.team.sub``; never ``company.teamx``).
    :param kestra_conn_id: Airflow connection to Kestra; only its id is stored with the trigger.
    :param poll_interval: Seconds between two searches.
    :param look_back: Seconds (or ``timedelta``) back from now, by start date, that each search covers: it
        must exceed the longest execution plus the longest triggerer outage that must not lose events.
    :param include_outputs: Carry the flow outputs in the event.
    :param max_outputs_bytes: Largest outputs JSON carried; above it ``outputs`` is None and
        ``outputs_truncated`` True.
    :param max_results: Page size of the search.
    :param hook_params: Keyword arguments of :class:`~airflow_provider_kestra.hooks.kestra.KestraAsyncHook`.
    """

    def __init__(
        self,
        *,
        namespace: str,
        flow_id: str | None = None,
        states: Sequence[str] = ("SUCCESS",),
        labels: Mapping[str, str] | None = None,
        include_child_namespaces: bool = False,
        kestra_conn_id: str = "kestra_default",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        look_back: float | timedelta = DEFAULT_LOOK_BACK_SECONDS,
        include_outputs: bool = True,
        max_outputs_bytes: int = DEFAULT_MAX_OUTPUTS_BYTES,
        max_results: int = DEFAULT_MAX_RESULTS,
        hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not namespace:
            raise ValueError("KestraExecutionEventTrigger needs a namespace")
        if isinstance(states, str):
            states = [states]
        if not states:
            raise ValueError("KestraExecutionEventTrigger needs at least one state to watch")
        if float(poll_interval) <= 0 or _seconds(look_back) <= 0 or int(max_results) < 1:
            raise ValueError("poll_interval, look_back and max_results must be positive")
        self.namespace = namespace
        self.flow_id = flow_id or None
        self.states = sorted({str(s).upper() for s in states})
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        self.include_child_namespaces = bool(include_child_namespaces)
        self.kestra_conn_id = kestra_conn_id
        self.poll_interval = float(poll_interval)
        self.look_back = _seconds(look_back)
        self.include_outputs = bool(include_outputs)
        self.max_outputs_bytes = int(max_outputs_bytes)
        self.max_results = int(max_results)
        self.hook_params = dict(hook_params or {})
        self._commit_task: asyncio.Task[None] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe arguments; the connection id only, never credentials."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "namespace": self.namespace,
                "flow_id": self.flow_id,
                "states": list(self.states),
                "labels": dict(self.labels),
                "include_child_namespaces": self.include_child_namespaces,
                "kestra_conn_id": self.kestra_conn_id,
                "poll_interval": self.poll_interval,
                "look_back": self.look_back,
                "include_outputs": self.include_outputs,
                "max_outputs_bytes": self.max_outputs_bytes,
                "max_results": self.max_results,
                "hook_params": dict(self.hook_params),
            },
        )

    # ------------------------------------------------------------------------------------ sharing
    def _filter_identity(self) -> tuple[Any, ...]:
        """Everything that decides which executions fire this watcher (the ledger's key derives from it)."""
        return (
            self.namespace,
            self.include_child_namespaces,
            self.flow_id,
            tuple(self.states),
            tuple(sorted(self.labels.items())),
        )

    def shared_stream_key(self) -> Hashable | None:
        """Watchers of one namespace (same connection, states and polling settings) share one search loop.

        The search sends only what the key holds (namespace, states, start-date window); each watcher then
        applies its own flow id, labels and outputs settings in :meth:`filter_shared_stream`. So 100 DAGs
        watching 100 flows of a namespace cost one search per interval. (Watchers whose kwargs are
        identical are a single trigger in Airflow already.)
        """
        return (
            "kestra-execution-events",
            self.kestra_conn_id,
            json.dumps(self.hook_params, sort_keys=True, default=str),
            self.namespace,
            self.include_child_namespaces,
            tuple(self.states),
            self.poll_interval,
            self.look_back,
            self.max_results,
        )

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Search Kestra every ``poll_interval`` and yield each snapshot (run once per shared group).

        A snapshot is ``{"polled_at": ISO, "executions": [event payload, ...]}``, oldest first: every
        execution of the namespace in a watched state that started within the look-back window. Only the
        key's fields of ``kwargs`` are used (they come from one watcher of the group). A failed search is
        logged and retried at the next interval (Kestra being down must not end the watchers).
        """
        poller = cls(**kwargs)
        async for snapshot in poller._poll_forever():
            yield snapshot

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Turn snapshots into this watcher's events: each execution not fired for before, once."""
        ledger = await self._load_ledger()
        try:
            async for snapshot in shared_stream:
                ledger.prune(_utcnow(), self.look_back)
                for shared_event in snapshot.get("executions") or ():
                    if not self._wants(shared_event) or not ledger.accepts(shared_event):
                        continue
                    event = bound_event_outputs(
                        shared_event,
                        include_outputs=self.include_outputs,
                        max_outputs_bytes=self.max_outputs_bytes,
                    )
                    ledger.mark(event)
                    self.log.info(
                        "Kestra execution %s of %s.%s reached %s",
                        event["execution_id"],
                        event["namespace"],
                        event["flow_id"],
                        event["state"],
                    )
                    yield TriggerEvent(event)
                    self._schedule_commit(ledger)
        finally:
            if self._commit_task is not None:
                self._commit_task.cancel()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone path (no shared-stream manager: Airflow 3.0-3.2, tests): one loop for this watcher."""
        async for event in self.filter_shared_stream(type(self).open_shared_stream(self.serialize()[1])):
            yield event

    # ------------------------------------------------------------------------------------ polling
    def _get_hook(self) -> KestraAsyncHook:
        from airflow_provider_kestra.hooks.kestra_async import KestraAsyncHook

        return KestraAsyncHook(self.kestra_conn_id, **self.hook_params)

    async def _poll_forever(self) -> AsyncIterator[dict[str, Any]]:
        hook = self._get_hook()
        cache: dict[str, dict[str, Any]] = {}
        try:
            while True:
                started = time.monotonic()
                try:
                    snapshot = await self._poll_once(hook, cache)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    self.log.warning(
                        "Searching Kestra executions of %s failed (retrying in %ss): %s",
                        self._describe(),
                        self.poll_interval,
                        err,
                    )
                else:
                    yield snapshot
                await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))
        finally:
            await hook.aclose()

    def _describe(self) -> str:
        where = self.namespace + (" (and children)" if self.include_child_namespaces else "")
        return f"{where}, flow {self.flow_id or '*'}, states {','.join(self.states)}"

    def _in_group(self, execution: Mapping[str, Any]) -> bool:
        """The shared loop's filters again on our side: the namespace rule (exact, or itself and its
        children, never ``company.teamx`` for ``company.team``) and the states."""
        namespace = str(execution.get("namespace") or "")
        if namespace != self.namespace and not (
            self.include_child_namespaces and namespace.startswith(self.namespace + ".")
        ):
            return False
        return str((execution.get("state") or {}).get("current") or "").upper() in self.states

    def _wants(self, event: Mapping[str, Any]) -> bool:
        """This watcher's own filters on a shared-loop event: flow id and labels."""
        if self.flow_id is not None and event.get("flow_id") != self.flow_id:
            return False
        labels = event.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())

    async def _poll_once(self, hook: KestraAsyncHook, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
        now = _utcnow()
        query = KestraExecutionQuery.of(
            # Kestra's namespace EQUALS filter is exact; children are matched on our side (_in_group).
            namespace=None if self.include_child_namespaces else self.namespace,
            states=self.states,
            started_after=now - timedelta(seconds=self.look_back),
        )
        found = await hook.search_executions(query, size=self.max_results)
        if len(found) >= self.max_results:
            self.log.warning(
                "The search for %s returned a full page (%d executions): older executions of the look-back "
                "window are not seen. Narrow the filters, shorten look_back or raise max_results.",
                self._describe(),
                len(found),
            )
        events: list[dict[str, Any]] = []
        for execution in found:
            if not self._in_group(execution):
                continue
            execution_id = str(execution.get("id"))
            event = cache.get(execution_id)
            state = str((execution.get("state") or {}).get("current") or "").upper()
            if event is None or event["state"] != state:
                event = await self._event_for(hook, execution)
                cache[execution_id] = event
            events.append(event)
        keep = {e["execution_id"] for e in events}
        for execution_id in [k for k in cache if k not in keep]:
            del cache[execution_id]
        events.sort(key=lambda e: (e.get("reached_at") or "", e["execution_id"]))
        return {"polled_at": now.isoformat(), "executions": events}

    async def _event_for(self, hook: KestraAsyncHook, execution: KestraExecution) -> dict[str, Any]:
        """The event payload of one execution: read in full once when the search result lacks outputs."""
        if "outputs" not in execution:
            execution = await hook.get_execution(str(execution["id"]))
        url = await hook.execution_ui_url(execution)
        return build_execution_event(execution, url=url, max_outputs_bytes=SHARED_OUTPUTS_CAP_BYTES)

    # ------------------------------------------------------------------------------------ ledger
    def state_key(self) -> str:
        """The asset-state-store key of this watcher's ledger (one per filter set)."""
        digest = hashlib.sha256(json.dumps(self._filter_identity(), default=str).encode()).hexdigest()
        return f"kestra_execution_events.{digest[:16]}"

    def _state_accessors(self) -> list[Any]:
        """One accessor per watched asset (a trigger may watch several); none before Airflow 3.3."""
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return []
        per_asset = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
        return per_asset or [store]

    async def _load_ledger(self) -> KestraExecutionEventLedger:
        documents = []
        for accessor in self._state_accessors():
            try:
                documents.append(await accessor.aget(self.state_key()))
            except Exception as err:
                self.log.warning("Could not read the watcher's ledger from %r: %s", accessor, err)
        ledger = KestraExecutionEventLedger.from_documents(documents, _utcnow())
        if not any(documents):
            await self._write_ledger(ledger)  # a restart right after creation keeps the same "since"
        self.log.info(
            "Watching Kestra executions of %s since %s (%d already fired within the look-back window)",
            self._describe(),
            ledger.since.isoformat(),
            len(ledger.seen),
        )
        return ledger

    async def _write_ledger(self, ledger: KestraExecutionEventLedger) -> None:
        document = ledger.document()
        for accessor in self._state_accessors():
            try:
                await accessor.aset(self.state_key(), document)
            except Exception as err:
                self.log.warning("Could not record the watcher's ledger in %r: %s", accessor, err)

    def _schedule_commit(self, ledger: KestraExecutionEventLedger) -> None:
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.ensure_future(self._commit_when_stored(ledger))

    async def _commit_when_stored(self, ledger: KestraExecutionEventLedger) -> None:
        """Record fired events once the triggerer has had time to store them (see COMMIT_DELAY_SECONDS)."""
        while ledger.pending:
            oldest = min(ledger.pending.values())
            await asyncio.sleep(max(0.0, oldest + COMMIT_DELAY_SECONDS - time.monotonic()))
            ledger.settle(time.monotonic() - COMMIT_DELAY_SECONDS)
            await self._write_ledger(ledger)

    async def cleanup(self) -> None:
        """Stop a pending ledger write (its events are then fired again after a restart, never lost)."""
        task, self._commit_task = self._commit_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


if not AIRFLOW_V_3_0_PLUS:
    del KestraExecutionEventTrigger

    def __getattr__(name: str) -> Any:
        if name == "KestraExecutionEventTrigger":
            from airflow import __version__

            raise KestraAirflowVersionError(
                "KestraExecutionEventTrigger needs Airflow 3.0 or later (event-driven scheduling with "
                f"AssetWatcher); this is Airflow {__version__}. On Airflow 2, wait for a Kestra execution "
                "with KestraExecutionSensor instead."
            )
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
