"""Counts the HTTP requests the simulator answered, from its request journal (``GET /_simulator/requests``).

The simulator records every request it answers (``airflow_provider_kestra.testing.journal``); this reads
that journal over HTTP, since the benchmarks run the simulator in its own process. Counting at the server
replaces wrapping ``httpx.AsyncClient.send`` in the measured process: nothing is patched in the client,
and retries, SSE streams and fault-injected answers are counted as the server saw them. A count covers
every client of the simulator, so read it only around phases where the measured code is the one talking.
"""

from __future__ import annotations

from typing import Any

import requests

EXECUTION_PATHS = r"/executions/"
FOLLOW_PATHS = r"/follow$"


class HttpRequestCounter:
    """Requests the simulator answered since :meth:`start`: all of them, execution reads, SSE follows."""

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/") + "/_simulator/requests"
        self.session = session or requests.Session()
        self._since = 0
        self._dropped = 0

    def _journal(self, path: str | None = None) -> dict[str, Any]:
        params = {"since": self._since, "limit": 0, **({"path": path} if path else {})}
        response = self.session.get(self.url, params=params, timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if answer["dropped"] > self._dropped:
            raise RuntimeError(
                "the simulator's request journal forgot requests during the measure: "
                "start kestra-sim with a larger --journal-size"
            )
        return answer

    def start(self) -> HttpRequestCounter:
        """Count from now on; returns self."""
        answer = self._journal()
        self._since, self._dropped = int(answer["total"]), int(answer["dropped"])
        return self

    def _count(self, path: str | None = None) -> int:
        return int(self._journal(path)["count"])

    @property
    def total(self) -> int:
        """Every request answered since :meth:`start`."""
        return self._count()

    @property
    def execution_reads(self) -> int:
        """Requests on ``/executions/...`` paths since :meth:`start` (reads, follows, actions)."""
        return self._count(EXECUTION_PATHS)

    @property
    def follows(self) -> int:
        """SSE follow requests since :meth:`start`."""
        return self._count(FOLLOW_PATHS)
