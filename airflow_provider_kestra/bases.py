"""What the Kestra operators and the sensor share: building their hook, and publishing the execution link.

It lives beside ``operators/`` and ``sensors/`` rather than in either, so the sensor does not import the
operators module (and the other way round). Like Databricks' ``utils/mixins.py``, each method states the
attributes it needs from the class it is mixed into as a :class:`~typing.Protocol` on ``self``, instead of
the mixin declaring attributes it never sets.

Importing this module stays light for DAG parsing: the hook (requests, httpx, yaml) loads on first use.
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_kestra.links.kestra import EXECUTION_URL_XCOM_KEY, push_execution_link

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_kestra.hooks.kestra import KestraHook
    from airflow_provider_kestra.utils.models import KestraExecution


class KestraHookFields(Protocol):
    """What building a :class:`KestraHook` needs from a task: the connection id and the hook's options."""

    kestra_conn_id: str
    hook_params: dict[str, Any]


class KestraHookOwner(KestraHookFields, Protocol):
    """A task that builds hooks with :meth:`KestraHookMixin._new_hook` and keeps one as ``hook``."""

    @property
    def hook(self) -> KestraHook: ...

    def _new_hook(self) -> KestraHook: ...


class KestraHookMixin:
    """Gives an operator or sensor a lazily built :class:`KestraHook`, so DAG parsing never imports HTTP
    libraries, and the "Kestra execution" link publishing both of them do."""

    @cached_property
    def hook(self: KestraHookOwner) -> KestraHook:
        """The sync Kestra client of this task (one HTTP session)."""
        return self._new_hook()

    def _new_hook(self: KestraHookFields) -> KestraHook:
        """A new client (own HTTP session): for ``hook``, and for threads that must not share its session."""
        from airflow_provider_kestra.hooks.kestra import KestraHook

        return KestraHook(self.kestra_conn_id, **self.hook_params)

    def _push_execution_link(
        self: KestraHookOwner, context: Context, execution: KestraExecution | str
    ) -> str:
        """Push the execution's id and UI URL to XCom (the "Kestra execution" button); returns the URL."""
        from airflow_provider_kestra.hooks.kestra_base import execution_id_of

        url = self.hook.execution_ui_url(execution)
        push_execution_link(context, execution_id_of(execution), url)
        return url

    def _push_no_execution_link(self, context: Context) -> None:
        """Push an empty ``execution_url`` when a try fails before any execution exists.

        Airflow 3 renders each extra link when a task ends; without this XCom its lookup logs an ERROR
        ("XCom not found key='execution_url'") that would bury the real failure. Best effort.
        """
        with contextlib.suppress(Exception):
            context["ti"].xcom_push(key=EXECUTION_URL_XCOM_KEY, value="")
