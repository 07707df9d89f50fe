"""Asynchronous Kestra hook (httpx) for triggers: get, follow, wait, logs, kill.

httpx is imported inside the methods, so importing this module (or the sync hook) does not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import KestraConnectionError, KestraStreamError
from airflow_provider_kestra.hooks.kestra_base import (
    LOG_CHUNK_BYTES,
    STREAM_FALLBACK_ERRORS,
    KestraAttemptFailure,
    KestraHookBase,
    KestraWaitTracker,
    decode_json,
    stream_ended_early,
)
from airflow_provider_kestra.utils.encoding import execution_search_params
from airflow_provider_kestra.utils.logs import KestraJsonArrayReader, KestraLogSelection
from airflow_provider_kestra.utils.retry import KestraFailureKind
from airflow_provider_kestra.utils.routes import KestraApiVersion, KestraRoute
from airflow_provider_kestra.utils.sse import KestraExecutionFollowReader

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
    from datetime import datetime

    import httpx

    from airflow_provider_kestra.utils.connection import KestraConnectionSettings
    from airflow_provider_kestra.utils.logs import KestraLogCursor
    from airflow_provider_kestra.utils.models import KestraExecution, KestraLogEntry, KestraServerInfo


@functools.lru_cache(maxsize=16)
def _shared_ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One TLS context per CA setting, shared by every client in the process.

    Building a context loads the whole CA bundle (about 30 ms of CPU and 800 KB each); a triggerer that
    runs 1,000 Kestra triggers must not repeat that per trigger, nor block its event loop doing it.
    """
    import ssl

    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    import httpx

    return httpx.create_ssl_context()


class KestraAsyncHook(KestraHookBase):
    """Asynchronous Kestra client for triggers: one ``httpx.AsyncClient`` per instance, never blocks the loop.

    httpx is imported only when the client is first built, so the synchronous path does not load it.
    Use ``async with KestraAsyncHook(...) as hook:`` or call :meth:`aclose`.
    """

    _client: httpx.AsyncClient | None = None
    """Built on first use by :meth:`client`, dropped by :meth:`aclose`."""
    _asleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)
    """How the hook pauses between retries and polls (tests replace it on the instance)."""

    async def __aenter__(self) -> KestraAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (the hook can be used again afterwards: a new client is built)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # ----------------------------------------------------------------------------------------- plumbing
    async def settings(self) -> KestraConnectionSettings:
        """The resolved connection settings, read once without blocking the event loop."""
        if self._settings is None:
            aget = getattr(type(self), "aget_connection", None)
            if aget is not None:
                conn = await aget(self.kestra_conn_id)
            else:  # Airflow 2.11
                from asgiref.sync import sync_to_async

                conn = await sync_to_async(self.get_connection)(self.kestra_conn_id)
            self._settings = self._settings_from_connection(conn)
        return self._settings

    async def client(self) -> httpx.AsyncClient:
        """The shared ``httpx.AsyncClient`` (auth, TLS, timeout, User-Agent; cookies refused)."""
        if self._client is None:
            from http.cookiejar import CookieJar

            import httpx

            settings = await self.settings()
            verify: bool | ssl.SSLContext = _shared_ssl_context(settings.verify) if settings.verify else False
            self._client = httpx.AsyncClient(
                headers=self._headers(),
                verify=verify,
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=True,
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            )
        return self._client

    async def api_version(self) -> KestraApiVersion:
        """The API generation in use: pinned by the ``api_version`` extra, else detected once."""
        if self._api_version is None:
            settings = await self.settings()
            pinned = settings.api_version
            self._api_version = pinned or KestraApiVersion((await self.server_info())["api_version"])
        return self._api_version

    async def route(self, name: str, **params: str) -> KestraRoute:
        """A route of the table resolved for this server."""
        await self.settings()
        return self._route(name, await self.api_version(), **params)

    def _classify(self, route: KestraRoute, err: Exception, context: str | None) -> KestraAttemptFailure:
        import httpx

        error = self._connection_error(route, err, context)
        if isinstance(err, httpx.ConnectError) and "ssl" in str(err).lower():
            raise error from None
        if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return KestraAttemptFailure(KestraFailureKind.NOT_SENT, error)
        return KestraAttemptFailure(KestraFailureKind.LOST, error)

    async def _attempt(
        self, route: KestraRoute, *, context: str | None, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send once (``stream``: leave the body unread; the caller closes the response)."""
        import httpx

        client = await self.client()
        try:
            if stream:
                request = client.build_request(route.method, self._url(route), **kwargs)
                response = await client.send(request, stream=True)
                if response.status_code >= 400:
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
            else:
                response = await client.request(route.method, self._url(route), **kwargs)
        except httpx.TransportError as err:
            raise self._classify(route, err, context) from None
        if response.status_code < 400:
            return response
        raise self._status_failure(
            route, response.status_code, response.text, response.headers.get("Retry-After"), context
        )

    async def _request(
        self, route: KestraRoute, *, context: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                return await self._attempt(route, context=context, **kwargs)
            except KestraAttemptFailure as failure:
                await self._asleep(self._retry_or_give_up(route, attempt, failure))
                attempt += 1

    async def _json(self, route: KestraRoute, *, context: str | None = None, **kwargs: Any) -> Any:
        return decode_json(await self._request(route, context=context, **kwargs), route)

    # -------------------------------------------------------------------------------------------- calls
    async def server_info(self) -> KestraServerInfo:
        """Version, edition and API generation of the server (``GET /api/v1/configs``, read once)."""
        if self._server_info is None:
            settings = await self.settings()
            route = self._route("configs", settings.api_version or KestraApiVersion.V1)
            response = await self._request(route, context="Reading the Kestra server version")
            self._server_info = self._server_info_from_configs(decode_json(response, route), response.headers)
        return self._server_info

    async def get_execution(self, execution_id: str) -> KestraExecution:
        """The execution with its task runs (``GET /executions/{id}``)."""
        route = await self.route("execution_get", execution_id=execution_id)
        return await self._json(route, context=f"Reading execution {execution_id}")

    async def search_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Sequence[str] | None = None,
        labels: Mapping[str, Any] | None = None,
        started_after: datetime | str | None = None,
        size: int = 100,
    ) -> list[KestraExecution]:
        """Executions matching every given filter, newest first; refuses to search with no filter.

        Same parameters and results as :meth:`KestraHook.search_executions` (light executions on 2.x).
        """
        params = execution_search_params(
            namespace=namespace,
            flow_id=flow_id,
            states=states,
            labels=labels,
            started_after=started_after,
            size=size,
        )
        route = await self.route("execution_search")
        data = await self._json(route, params=params, context="Searching executions")
        return list((data or {}).get("results") or [])

    async def kill_execution(self, execution_id: str) -> None:
        """Ask Kestra to kill the execution (asynchronous on Kestra's side too)."""
        route = await self.route("execution_kill", execution_id=execution_id)
        await self._request(route, context=f"Killing execution {execution_id}")

    async def get_logs(
        self, execution_id: str, *, min_level: str = "INFO", cursor: KestraLogCursor | None = None
    ) -> tuple[list[KestraLogEntry], KestraLogCursor]:
        """Log lines not returned before (pass back the returned cursor), at ``min_level`` or above.

        Holds every new line at once; :meth:`iter_logs` hands them over one by one instead.
        """
        selection = KestraLogSelection(min_level, cursor)
        entries = [entry async for entry in self.iter_logs(execution_id, selection)]
        return entries, selection.cursor

    async def iter_logs(
        self, execution_id: str, selection: KestraLogSelection
    ) -> AsyncGenerator[KestraLogEntry, None]:
        """The log lines ``selection`` accepts, decoded entry by entry as Kestra sends them (see
        ``KestraHook.iter_logs``); read ``selection.cursor`` afterwards, also after an error."""
        import httpx

        route = await self.route("logs_get", execution_id=execution_id)
        context = f"Reading logs of execution {execution_id}"
        params = {"minLevel": selection.min_level}
        response = await self._request(route, params=params, stream=True, context=context)
        reader = KestraJsonArrayReader(f"Kestra's answer to {route.method} {route.path}")
        try:
            async for chunk in response.aiter_bytes(LOG_CHUNK_BYTES):
                for entry in reader.feed(chunk):
                    if isinstance(entry, dict) and selection.accepts(entry):
                        yield entry  # type: ignore[misc]
            for entry in reader.close():
                if isinstance(entry, dict) and selection.accepts(entry):
                    yield entry  # type: ignore[misc]
        except (httpx.TransportError, httpx.StreamError) as err:
            raise KestraConnectionError(f"{context} failed: {self._error_detail(err)}") from None
        finally:
            await response.aclose()

    async def follow_execution(
        self, execution_id: str, *, read_timeout: float | None = None
    ) -> AsyncGenerator[KestraExecution, None]:
        """Execution updates from the SSE stream, ending with the ``end`` frame's execution.

        Skips ``start``; raises :class:`KestraStreamError` when the stream stops before ``end`` or Kestra
        answers with a passing failure (429, 502-504), so a wait polls meanwhile.
        """
        import httpx

        route = await self.route("execution_follow", execution_id=execution_id)
        client = await self.client()
        context = f"Following execution {execution_id}"
        timeout = httpx.Timeout(self._timeout, read=read_timeout or self._timeout)
        reader = KestraExecutionFollowReader()
        try:
            async with client.stream(
                route.method, self._url(route), headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", errors="replace")
                    retry_after = response.headers.get("Retry-After")
                    failure = self._status_failure(route, response.status_code, body, retry_after, context)
                    if isinstance(failure, KestraAttemptFailure):  # 429, 502-504: poll meanwhile
                        raise KestraStreamError(str(failure.error))
                    raise failure
                async for line in response.aiter_lines():
                    execution = reader.feed(line)
                    if execution is not None:
                        yield execution
                    if reader.ended:
                        return
        except httpx.TransportError as err:
            failure = self._classify(route, err, context)
            if failure.kind is KestraFailureKind.NOT_SENT:
                raise failure.error from None
            raise self._stream_cut(execution_id, err, idle=isinstance(err, httpx.ReadTimeout)) from None
        raise stream_ended_early(execution_id)

    async def wait_for_execution(
        self,
        execution_id: str,
        *,
        deadline: float | None = None,
        poll_interval: float = 5.0,
        on_update: Callable[[KestraExecution], None] | None = None,
        until: Callable[[KestraExecution], bool] | None = None,
    ) -> KestraExecution:
        """Return the execution once terminal, or once ``until(execution)`` is true when given (SSE first,
        polling as fallback).

        ``deadline`` is a UNIX time (``time.time()``), so it survives a trigger moving between triggerer
        processes; past it :class:`KestraWaitTimeout` is raised.
        """
        await self.settings()
        wait = KestraWaitTracker(execution_id, deadline, on_update, clock=time.time, until=until)
        while True:
            if wait.use_stream:
                try:
                    stream = self.follow_execution(execution_id, read_timeout=wait.begin_stream())
                    async with contextlib.aclosing(stream):
                        async for execution in stream:
                            if wait.streamed(execution):
                                return execution
                except STREAM_FALLBACK_ERRORS as err:
                    wait.stream_failed(err)
            execution = await self.get_execution(execution_id)
            if wait.polled(execution):
                return execution
            pause = wait.poll_pause(poll_interval)
            if pause > 0:
                await self._asleep(pause)
            wait.check_deadline()
