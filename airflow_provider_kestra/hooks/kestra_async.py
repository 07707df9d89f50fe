"""Asynchronous Kestra hook (httpx) for triggers: get, search, follow, wait, logs, kill, restart, resume.

It sends the same call descriptions as :class:`~airflow_provider_kestra.hooks.kestra.KestraHook` (see
:mod:`airflow_provider_kestra.hooks.kestra_base`) and keeps only httpx I/O. httpx is imported inside the
methods, so importing this module does not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import KestraApiError, KestraError, stream_ended_early
from airflow_provider_kestra.hooks import kestra_base as base
from airflow_provider_kestra.hooks.kestra_base import (
    LOG_CHUNK_BYTES,
    KestraAttemptFailure,
    KestraCall,
    KestraHookBase,
    KestraPlan,
)
from airflow_provider_kestra.hooks.kestra_clients import (
    ASYNC_CLIENTS,
    KEEPALIVE_SECONDS,
    MAX_KEEPALIVE_CONNECTIONS,
    START_PACER,
    client_fingerprint,
)
from airflow_provider_kestra.hooks.kestra_server_info import KestraProcessCache
from airflow_provider_kestra.utils.connection import KestraConnectionSettings, shared_ssl_context
from airflow_provider_kestra.utils.logs import KestraJsonArrayReader, KestraLogSelection
from airflow_provider_kestra.utils.retry import httpx_failure_kind
from airflow_provider_kestra.utils.routes import KestraApiVersion, KestraRoute
from airflow_provider_kestra.utils.sse import KestraExecutionFollowReader, execution_of
from airflow_provider_kestra.utils.wait import STREAM_FALLBACK_ERRORS, KestraMatchWait, KestraWaitTracker

OFF_LOOP_DECODE_BYTES = 1 << 16
"""JSON bodies and event-stream frames from this size on are decoded in a thread, off the event loop."""
CONNECTION_SETTINGS_TTL_SECONDS = 30.0
"""How long a triggerer reuses a connection's resolved settings for new hooks (an edited connection is
seen by triggers started after that); a thousand triggers starting at once look it up once."""
CONNECTION_SETTINGS: KestraProcessCache[KestraConnectionSettings] = KestraProcessCache(
    CONNECTION_SETTINGS_TTL_SECONDS, 64
)
"""The resolved settings of the connections async hooks used lately, by connection id."""
_SSL_CONTEXTS_BUILT: set[bool | str] = set()
"""The ``verify`` settings whose shared TLS context exists (taken at once, not through a thread)."""

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

    import httpx

    from airflow_provider_kestra.hooks.kestra_clients import KestraClientLease
    from airflow_provider_kestra.utils.models import (
        KestraExecution,
        KestraExecutionQuery,
        KestraLogCursor,
        KestraLogEntry,
        KestraServerInfo,
    )


class KestraAsyncHook(KestraHookBase):
    """Asynchronous Kestra client for triggers; never blocks the loop. Its ``httpx.AsyncClient`` is shared
    with every other hook of the same settings on the same event loop (:data:`ASYNC_CLIENTS`).

    Use ``async with KestraAsyncHook(...) as hook:`` or call :meth:`aclose`.
    """

    _lease: KestraClientLease | None = None
    """This hook's use of the shared client: taken on first use by :meth:`client`, ended by :meth:`aclose`."""
    _asleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)
    """How the hook pauses between retries and polls (tests replace it on the instance)."""
    _lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
    """Serialises the first connection read, client build and server detection (per event loop)."""

    async def __aenter__(self) -> KestraAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Give the HTTP client back (the hook can be used again afterwards). The shared client closes
        :data:`~airflow_provider_kestra.hooks.kestra_clients.IDLE_CLOSE_SECONDS` after its last user
        gave it back, unless another hook takes it meanwhile."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            ASYNC_CLIENTS.release(lease)

    # ----------------------------------------------------------------------------------------- plumbing
    def _once(self) -> asyncio.Lock:
        """The lock that makes concurrent coroutines of this hook read the connection (and build the
        client, detect the server) once: two concurrent connection reads through the Task SDK's
        supervisor channel confuse it ("Got response for unknown request frame")."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def settings(self) -> KestraConnectionSettings:
        """The resolved connection settings, without blocking the event loop: looked up once per process
        and connection id every :data:`CONNECTION_SETTINGS_TTL_SECONDS` (one lookup however many hooks
        and coroutines of the loop ask at the same time), then kept by this hook.

        This is every hook's first step, so it is where hooks starting together are paced
        (:data:`~airflow_provider_kestra.hooks.kestra_clients.START_PACER`: a few per turn of the loop)."""
        if self._settings is None:
            await START_PACER.turn()
            async with self._once():
                if self._settings is None:
                    self._settings = await CONNECTION_SETTINGS.afetch(self.kestra_conn_id, self._look_up)
        return self._settings

    async def _look_up(self) -> KestraConnectionSettings:
        """Read the Airflow connection (off the loop on Airflow 2.11) and resolve its settings."""
        aget = getattr(type(self), "aget_connection", None)
        if aget is not None:
            conn = await aget(self.kestra_conn_id)
        else:  # Airflow 2.11
            from asgiref.sync import sync_to_async

            conn = await sync_to_async(self.get_connection)(self.kestra_conn_id)
        return self._settings_from_connection(conn)

    async def client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` of this hook's settings on the running loop, shared with the other
        hooks of the same settings (auth, TLS, timeout, User-Agent; cookies refused). A hook used again
        on another loop (its first one closed) takes that loop's client."""
        loop = asyncio.get_running_loop()
        if self._lease is None or self._lease.loop is not loop:
            settings = await self.settings()
            async with self._once():
                if self._lease is None or self._lease.loop is not loop:
                    if self._lease is not None:
                        ASYNC_CLIENTS.release(self._lease)
                        self._lease = None
                    verify = await self._ssl_context(settings)
                    self._lease = await ASYNC_CLIENTS.acquire(
                        self._client_fingerprint(settings), lambda: self._new_client(verify)
                    )
        return self._lease.client

    def _client_fingerprint(self, settings: KestraConnectionSettings) -> str:
        """What tells shared clients apart: everything :meth:`_new_client` builds one with (the headers
        carry the credentials; the fingerprint is a digest)."""
        return client_fingerprint(
            (settings.base_url, settings.verify, self._timeout, sorted(self._headers().items()))
        )

    @staticmethod
    async def _ssl_context(settings: KestraConnectionSettings) -> bool | ssl.SSLContext:
        """The TLS setting of a client: the process's shared context, built off the loop the first time
        (it loads the whole CA bundle). Also for a plain ``http://`` server: the client follows redirects,
        and a redirect to ``https://`` must have its certificate checked."""
        if not settings.verify:
            return False
        if settings.verify in _SSL_CONTEXTS_BUILT:
            return shared_ssl_context(settings.verify)
        context = await asyncio.to_thread(shared_ssl_context, settings.verify)
        _SSL_CONTEXTS_BUILT.add(settings.verify)
        return context

    def _new_client(self, verify: bool | ssl.SSLContext) -> httpx.AsyncClient:
        from http.cookiejar import CookieJar

        import httpx

        return httpx.AsyncClient(
            headers=self._headers(),
            verify=verify,
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_SECONDS,
            ),
            follow_redirects=True,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )

    async def api_version(self) -> KestraApiVersion:
        """The API generation in use: pinned (``api_version`` argument or extra), else detected once (one
        ``/api/v1/configs`` read however many coroutines ask; in a wait it is retried like the rest)."""
        if self._api_version is None:
            pinned = (await self.settings()).api_version
            if pinned is not None:
                self._api_version = pinned
            else:
                await self.client()
                async with self._once():
                    if self._api_version is None:
                        info = await self.server_info()
                        self._api_version = KestraApiVersion(info["api_version"])
        return self._api_version

    async def execution_ui_url(self, execution: KestraExecution) -> str:
        """The Kestra UI page of an execution, built like ``KestraHook.execution_ui_url`` (no request once
        the API generation is known)."""
        await self.settings()
        return self._ui_url(execution, await self.api_version())

    async def _route_of(self, call: KestraCall) -> KestraRoute:
        await self.settings()
        return self._route(call.route, self._fixed_version(call) or await self.api_version(), **call.path)

    async def _attempt(self, route: KestraRoute, call: KestraCall, **options: Any) -> httpx.Response:
        """Send ``call`` once (``stream``: leave the body unread; the caller closes the response); the
        other ``options`` as for ``KestraHook._attempt``."""
        import httpx

        refused, stream = options.pop("refused", None) or self._status_failure, options.pop("stream", False)
        context, headers = call.context, dict(call.headers) or None
        kwargs = {"params": list(call.params) or None, "content": call.body, "headers": headers, **options}
        kwargs.setdefault("timeout", self._attempt_timeout())
        client = await self.client()
        try:
            request = client.build_request(route.method, self._url(route), **kwargs)
            response = await client.send(request, stream=stream)
            if response.status_code >= 400 and stream:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except httpx.TransportError as err:
            error, kind = self._connection_error(route, err, context), httpx_failure_kind(err)
            raise (error if kind is None else KestraAttemptFailure(kind, error)) from None
        self._reached(call, response.status_code)
        if response.status_code < 400:
            return response
        retry_after = response.headers.get("Retry-After")
        raise self._lagging(call, refused(route, response.status_code, response.text, retry_after, context))

    async def _request(
        self, route: KestraRoute, call: KestraCall, *, read: bool = False, **options: Any
    ) -> Any:
        """Send ``call`` with retries; the response, or with ``read`` its answer read (see ``KestraHook``)."""
        attempt = 0
        while True:
            try:
                response = await self._attempt(route, call, **options)
                return await self._read(call, route, response) if read else response
            except KestraAttemptFailure as failure:
                await self._asleep(self._retry_or_give_up(route, attempt, failure))
                attempt += 1

    async def _read(self, call: KestraCall, route: KestraRoute, response: httpx.Response) -> Any:
        """The answer read; a big JSON body (a 1,500-task-run execution is megabytes) is decoded in a
        thread so the event loop (the triggerer's, shared by every trigger) never stalls on it."""
        if call.answer in ("none", "text") or len(response.content) < OFF_LOOP_DECODE_BYTES:
            return self._answer(call, route, response)
        required = call.answer in ("json", "results")
        data = await asyncio.to_thread(base.decode_json, response, route, required=required)
        return self._answer(call, route, response, data)

    async def _send(self, call: KestraCall) -> Any:
        """Send one call (with retries) and read its answer."""
        return await self._request(await self._route_of(call), call, read=True)

    async def _call(self, call: KestraCall) -> Any:
        """Run an operation's plan (:meth:`KestraHookBase._plan`): send what it asks, hand back answers."""
        plan = KestraPlan(self._plan(call))
        while not plan.done:
            try:
                plan.send(await self._send(plan.step))
            except KestraError as err:
                plan.throw(err)
        return plan.result

    # -------------------------------------------------------------------------------------------- calls
    async def server_info(self) -> KestraServerInfo:
        """Version, edition and API generation of the server (``GET /api/v1/configs``), read once per
        process and server for ten minutes (see :mod:`airflow_provider_kestra.hooks.kestra_server_info`):
        concurrent coroutines of one loop share one request."""
        if self._server_info is None:
            await self.settings()
            patience = base.current_patience()
            facts = await base.SERVER_INFO_CACHE.afetch(
                self._server_key(), self._ask_server, patience.left() if patience is not None else None
            )
            self._server_info = self._server_info_of(facts)
        return self._server_info

    async def _ask_server(self) -> base.KestraServerFacts:
        """Send ``GET /api/v1/configs`` (with retries) and read the server's answer."""
        facts: base.KestraServerFacts = await self._call(base.server_info_call())
        return facts

    async def get_execution(self, execution_id: str) -> KestraExecution:
        """The execution with its task runs (``GET /executions/{id}``)."""
        return await self._call(base.get_execution_call(execution_id))

    async def search_executions(
        self, query: KestraExecutionQuery | None = None, *, size: int = 100, **filters: Any
    ) -> list[KestraExecution]:
        """Executions matching ``query`` (or the filter keywords), newest first (see ``KestraHook``)."""
        return await self._call(base.search_executions_call(base.execution_query(query, filters), size))

    async def wait_for_match(
        self, query: KestraExecutionQuery, deadline: float | None = None, poll_interval: float = 5.0
    ) -> KestraExecution | None:
        """The newest execution matching ``query``, searching until one exists; None past ``deadline``."""
        wait = KestraMatchWait(deadline, poll_interval, clock=self._clock)
        with self.retrying_until(deadline, what=base.match_wait_what(query)):
            while not (found := await self._search_once(wait, query)):
                if (pause := wait.next_pause()) is None:
                    return None
                await self._asleep(pause)
        return found[0]

    async def _search_once(self, wait: KestraMatchWait, query: KestraExecutionQuery) -> list[KestraExecution]:
        """One search of a ``wait_for_match``: nothing once its retries reached the deadline."""
        try:
            return await self.search_executions(query, size=1)
        except KestraError:
            if not wait.expired():
                raise
            return []

    async def kill_execution(self, execution_id: str) -> None:
        """Ask Kestra to kill the execution (asynchronous on Kestra's side too)."""
        await self._call(base.kill_execution_call(execution_id))

    async def restart_execution(self, execution_id: str, *, revision: int | None = None) -> KestraExecution:
        """Restart a failed execution from its failed tasks (same id, state RESTARTED)."""
        return await self._call(base.restart_execution_call(execution_id, revision))

    async def resume_execution(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> None:
        """Resume a PAUSED execution, passing the Pause task's ``onResume`` inputs (multipart)."""
        await self._call(base.resume_execution_call(execution_id, inputs))

    async def delete_execution(self, execution_id: str, **options: bool) -> None:
        """Delete an execution, by default with its logs, metrics and files (options as ``KestraHook``'s)."""
        await self._call(base.delete_execution_call(execution_id, **options))

    async def get_logs(
        self, execution_id: str, *, min_level: str = "INFO", cursor: KestraLogCursor | None = None
    ) -> tuple[list[KestraLogEntry], KestraLogCursor]:
        """Log lines not returned before (pass back the returned cursor), at ``min_level`` or above."""
        selection = KestraLogSelection(min_level, cursor)
        return [entry async for entry in self.iter_logs(execution_id, selection)], selection.cursor

    async def iter_logs(
        self, execution_id: str, selection: KestraLogSelection
    ) -> AsyncGenerator[KestraLogEntry, None]:
        """The log lines ``selection`` accepts, oldest first: only what is new, with ``GET /logs/search``,
        or the whole log decoded entry by entry where the search is not usable (see
        ``KestraHook.iter_logs``); read ``selection.cursor`` afterwards, also after an error."""
        import httpx

        search = self._log_search(await self.api_version(), execution_id, selection)
        if search is not None:
            try:
                while search.step is not None:
                    ready = search.take(await self._call(search.step))
                    for entry in base.accepted_entries(selection, ready):
                        yield entry
            except KestraApiError as err:
                if not self._log_search_refused(err):
                    raise
            else:
                if self._log_search_finished(search):
                    return
        call = base.logs_call(execution_id, selection.min_level)
        route = await self._route_of(call)
        for attempt in itertools.count():
            response = await self._request(route, call, stream=True)
            reader, decoded = KestraJsonArrayReader(f"Kestra's answer to {route.method} {route.path}"), 0
            try:
                async for chunk in response.aiter_bytes(LOG_CHUNK_BYTES):
                    entries = reader.feed(chunk)
                    decoded += len(entries)
                    for entry in base.accepted_entries(selection, entries):
                        yield entry
                for entry in base.accepted_entries(selection, reader.close()):
                    yield entry
                return
            except (httpx.TransportError, httpx.StreamError, KestraError) as err:
                failure = self._log_read_failed(call, err, decoded)
            finally:
                await response.aclose()
            await self._asleep(self._retry_or_give_up(route, attempt, failure))

    async def follow_execution(
        self, execution_id: str, *, read_timeout: float | None = None
    ) -> AsyncGenerator[KestraExecution, None]:
        """Execution updates from the SSE stream, ending with the ``end`` frame's execution; opened once,
        with the same refusal policy as ``KestraHook.follow_execution`` (429/5xx → poll meanwhile)."""

        stream = self._follow(execution_id, read_timeout)
        async with contextlib.aclosing(stream):
            async for execution in stream:
                if execution is not None:
                    yield execution

    async def _follow(
        self, execution_id: str, read_timeout: float | None
    ) -> AsyncGenerator[KestraExecution | None, None]:
        """:meth:`follow_execution` with a None after each read that brought no execution (see
        ``KestraHook._follow``); big frames are decoded in a thread."""
        import httpx

        call = base.follow_execution_call(execution_id)
        route = await self._route_of(call)
        timeout = httpx.Timeout(self._attempt_timeout(), read=read_timeout or self._timeout)
        try:
            response = await self._attempt(
                route, call, stream=True, timeout=timeout, refused=self._stream_refused
            )
        except KestraAttemptFailure as failure:
            raise self._stream_not_opened(execution_id, failure) from None
        reader = KestraExecutionFollowReader()
        try:
            async for chunk in response.aiter_bytes():
                news = False
                for frame in reader.frames(chunk):
                    if len(frame.data) < OFF_LOOP_DECODE_BYTES:
                        execution = execution_of(frame)
                    else:
                        execution = await asyncio.to_thread(execution_of, frame)
                    if execution is not None:
                        news = True
                        yield execution
                if not news:
                    yield None
                if reader.ended:
                    return
        except (httpx.TransportError, httpx.StreamError) as err:
            raise self._stream_cut(execution_id, err, idle=isinstance(err, httpx.ReadTimeout)) from None
        finally:
            await response.aclose()
        raise stream_ended_early(execution_id)

    async def wait_for_execution(
        self,
        execution_id: str,
        *,
        deadline: float | None = None,
        poll_interval: float = 5.0,
        on_update: Callable[[KestraExecution], None] | None = None,
        until: Callable[[KestraExecution], bool] | None = None,
        on_frame: Callable[[KestraExecution], None] | None = None,
    ) -> KestraExecution:
        """Return the execution once terminal, or once ``until(execution)`` is true when given (SSE first,
        polling as fallback); past ``deadline`` (a UNIX time: it survives a move to another triggerer)
        :class:`KestraWaitTimeout` is raised. Until then every failure to reach or read Kestra is retried
        (see ``KestraHook.wait_for_execution``). ``on_update`` gets each new state, ``on_frame`` every
        execution read (stream frame or poll)."""
        await self.settings()
        wait = KestraWaitTracker(
            execution_id, deadline, on_update, clock=self._clock, until=until, on_frame=on_frame
        )
        with self.retrying_until(deadline, what=f"waiting for execution {execution_id}"):
            self._expect(execution_id)
            while True:
                if wait.use_stream:
                    try:
                        stream = self._follow(execution_id, read_timeout=wait.begin_stream())
                        async with contextlib.aclosing(stream):
                            async for execution in stream:
                                step = wait.stream_read(execution, poll_interval)
                                if step == "poll":
                                    step = "end" if wait.polled(await self._poll(wait, execution_id)) else ""
                                if step == "end" and wait.last is not None:
                                    return wait.last
                    except STREAM_FALLBACK_ERRORS as err:
                        wait.stream_failed(err)
                if wait.polled(execution := await self._poll(wait, execution_id)):
                    return execution
                pause = wait.poll_pause(poll_interval)
                if pause > 0:
                    await self._asleep(pause)
                wait.check_deadline()

    async def _poll(self, wait: KestraWaitTracker, execution_id: str) -> KestraExecution:
        """Read the execution for a wait (retried until its deadline, then the wait times out)."""
        try:
            return await self.get_execution(execution_id)
        except KestraError:
            wait.read_failed()
            raise
