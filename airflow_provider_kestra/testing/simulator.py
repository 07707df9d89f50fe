"""``KestraSimulator``: a local, in-process stand-in for Kestra's REST API serving real HTTP.

    with KestraSimulator(kestra_version="1.3") as sim:
        os.environ["AIRFLOW_CONN_KESTRA_DEFAULT"] = sim.connection_uri()
        ...

uvicorn runs in a background thread with its own event loop; executions run as asyncio tasks in that loop.
The store (flows, executions, logs, files) belongs to the simulator object, so ``restart()`` keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_kestra.testing.backend.backend import KestraSimBackend
from airflow_provider_kestra.testing.backend.engine import KestraSimEngine, KestraSimHub
from airflow_provider_kestra.testing.backend.store import KestraSimStore
from airflow_provider_kestra.testing.context import KestraSimContext
from airflow_provider_kestra.testing.faults import KestraSimDropLogFilter, KestraSimulatorFaults
from airflow_provider_kestra.testing.journal import KestraSimJournal
from airflow_provider_kestra.testing.profiles import kestra_simulator_profile

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType


def _uvicorn_choice(choice: str, faster: str, fallback: str) -> str:
    """``auto``: the ``faster`` implementation when its module is installed, else ``fallback``.

    Used for uvicorn's HTTP parser (httptools, faster: see bench/bench_simulator.py, else h11) and its
    event loop (uvloop, else asyncio).
    """
    if choice != "auto":
        return choice
    try:
        importlib.import_module(faster)
    except ImportError:
        return fallback
    return faster


def _extra_text(value: object) -> str:
    """An extra as the text a URI query carries (JSON for lists and mappings, ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class KestraSimulator:
    """A Kestra API simulator on a loopback port (context manager; ``start``/``stop``/``restart``)."""

    def __init__(
        self,
        *,
        kestra_version: str = "1.3",
        edition: str = "OSS",
        username: str = "admin@kestra.io",
        password: str = "Kestra-Sim-Pass1",
        tokens: Sequence[str] = (),
        tenants: Sequence[str] = ("main",),
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int | None = None,
        follow_missing_timeout: float = 10.0,
        start_delay: float = 0.02,
        task_delay: float = 0.005,
        http: str = "auto",
        loop: str = "auto",
        journal_size: int = 100_000,
        action_routes: str | None = None,
    ) -> None:
        self.profile = kestra_simulator_profile(kestra_version, action_routes)
        #: 2.x execution action layout: ``actions`` (``/executions/{id}/actions/kill``) or ``plain``.
        self.action_routes = "actions" if self.profile.actions_under_actions else "plain"
        self.kestra_version = self.profile.name
        edition = edition.upper()
        if edition not in ("OSS", "EE"):
            raise ValueError(f"edition must be 'OSS' or 'EE', not {edition!r}")
        if edition == "OSS" and tokens:
            raise ValueError(
                "API tokens are an Enterprise feature: use KestraSimulator(edition='EE', tokens=...)"
            )
        if edition == "OSS" and tuple(tenants) != ("main",):
            raise ValueError("Kestra OSS has the single tenant 'main': use edition='EE' for other tenants")
        if not self.profile.tenant_in_path and tuple(tenants) != ("main",):
            raise ValueError("Kestra 0.22 has no tenant segment in its URLs; tenants are not available")
        self.edition = edition
        self.username = username
        self.password = password
        self.tokens = tuple(tokens)
        self.tenants = tuple(tenants)
        self.host = host
        self.port = port
        self.faults = KestraSimulatorFaults(seed=seed)
        #: Every request answered (see :mod:`airflow_provider_kestra.testing.journal`); survives restarts.
        self.requests = KestraSimJournal(journal_size)
        self.store = KestraSimStore()
        self.follow_missing_timeout = follow_missing_timeout
        self.start_delay = start_delay
        self.task_delay = task_delay
        if http not in ("auto", "h11", "httptools") or loop not in ("auto", "asyncio", "uvloop"):
            raise ValueError("http must be auto|h11|httptools and loop auto|asyncio|uvloop")
        self.http = _uvicorn_choice(http, "httptools", "h11")
        self.loop = _uvicorn_choice(loop, "uvloop", "asyncio")
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: KestraSimContext | None = None
        self._lifecycle = threading.Lock()

    # -- public attributes ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is up."""
        return self._thread is not None and self._thread.is_alive()

    def connection_uri(
        self,
        tenant: str = "main",
        token: str | None = None,
        api_version: str | None = None,
        **extras: object,
    ) -> str:
        """An ``AIRFLOW_CONN_...`` value for this simulator: basic auth by default, ``token`` for bearer (EE).

        Every other keyword becomes a connection extra (``timeout=5``, ``ui_url="https://..."``), so a test
        can check what a DAG does with extras without building a ``Connection`` by hand. An Airflow URI
        carries extras as query parameters, which Airflow reads back as strings: values are written as
        text (``True``/``False`` as ``true``/``false``, lists and mappings as JSON) and URL-encoded; ``None``
        leaves the extra out.
        """
        query: dict[str, str] = {}
        if tenant != "main":
            query["tenant"] = tenant
        if api_version is not None:
            query["api_version"] = api_version
        if token is not None:
            query["token"] = token
        for name, value in extras.items():
            if value is not None:
                query[name] = _extra_text(value)
        if token is not None:
            base = f"kestra://{self.host}:{self.port}"
        else:
            credentials = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
            base = f"kestra://{credentials}@{self.host}:{self.port}"
        return base + (f"?{urlencode(query, quote_via=quote)}" if query else "")

    def banner(self) -> str:
        """The one-line banner of ``kestra-sim``."""
        auth = f"basic auth {self.username}" + (f", {len(self.tokens)} API token(s)" if self.tokens else "")
        return (
            f"kestra-sim: Kestra API SIMULATOR (not a real Kestra) emulating Kestra {self.profile.version} "
            f"{self.edition}, listening on {self.url} ({auth}; tenants: {', '.join(self.tenants)}; "
            f"{self.http}/{self.loop})"
        )

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> KestraSimulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> KestraSimulator:
        """Bind the port (kept across restarts) and serve in a background thread."""
        with self._lifecycle:
            if self.running:
                return self
            import uvicorn

            from airflow_provider_kestra.testing.http.server import build_app

            sock = self._bind()
            hub = KestraSimHub()
            engine = KestraSimEngine(
                self.store,
                hub,
                with_tenant=self.profile.tenant_in_path,
                start_delay=self.start_delay,
                task_delay=self.task_delay,
                log_timestamp_digits=self.profile.log_timestamp_digits,
            )
            self._context = KestraSimContext(
                profile=self.profile,
                edition=self.edition,
                username=self.username,
                password=self.password,
                tokens=self.tokens,
                tenants=self.tenants,
                store=self.store,
                backend=KestraSimBackend(self.store, engine, self.profile, self.faults),
                engine=engine,
                hub=hub,
                faults=self.faults,
                journal=self.requests,
                base_url=self.url,
                follow_missing_timeout=self.follow_missing_timeout,
            )
            config = uvicorn.Config(
                build_app(self._context, restart=self.restart),
                http=self.http,
                loop="none",
                lifespan="on",
                log_level="warning",
                access_log=False,
                timeout_keep_alive=60,
                timeout_graceful_shutdown=2,
                backlog=4096,
            )
            uvicorn_errors = logging.getLogger("uvicorn.error")
            if not any(isinstance(f, KestraSimDropLogFilter) for f in uvicorn_errors.filters):
                uvicorn_errors.addFilter(KestraSimDropLogFilter())
            server = uvicorn.Server(config)
            started = threading.Event()
            self._server = server
            self._thread = threading.Thread(
                target=self._serve, args=(server, sock, started), daemon=True, name=f"kestra-sim-{self.port}"
            )
            self._thread.start()
            deadline = time.monotonic() + 15
            while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            if not server.started:
                raise RuntimeError(f"Kestra simulator failed to start on {self.url}")
            return self

    def _bind(self) -> socket.socket:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
        # and without it Nagle + delayed ACKs cap a keep-alive client at ~25 requests/s.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        sock.listen(4096)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    def _serve(self, server: Any, sock: socket.socket, started: threading.Event) -> None:
        loop: asyncio.AbstractEventLoop
        if self.loop == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            sock.close()

    def stop(self) -> None:
        """Stop serving: open streams are closed, running executions pause until the next start."""
        with self._lifecycle:
            thread, server, loop, context = self._thread, self._server, self._loop, self._context
            if thread is None or server is None:
                return
            if loop is not None and context is not None and loop.is_running():
                from airflow_provider_kestra.testing.http.api_streams import close_streams

                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(close_streams(context), loop).result(5)
            server.should_exit = True
            thread.join(timeout=15)
            self._thread = self._server = self._loop = None

    def restart(self, downtime: float = 0.0) -> None:
        """Stop, stay down ``downtime`` seconds, start again on the same port with the same state."""
        self.stop()
        if downtime > 0:
            time.sleep(downtime)
        self.start()

    # -- helpers for tests ----------------------------------------------------------------------------------
    def call(self, func: Any, *args: Any) -> Any:
        """Run ``func(*args)`` inside the server loop and return its result (thread-safe state access)."""
        if self._loop is None:
            return func(*args)

        async def run() -> Any:
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)
