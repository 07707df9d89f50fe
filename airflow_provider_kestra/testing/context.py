"""The state shared by every route of one simulator: profile, settings, backend, engine, faults."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.backend.backend import KestraSimBackend
    from airflow_provider_kestra.testing.backend.engine import KestraSimEngine, KestraSimHub
    from airflow_provider_kestra.testing.backend.store import KestraSimStore
    from airflow_provider_kestra.testing.faults import KestraSimulatorFaults
    from airflow_provider_kestra.testing.journal import KestraSimJournal
    from airflow_provider_kestra.testing.profiles import KestraSimulatorProfile


@dataclass
class KestraSimContext:
    """Everything a request handler needs; one per running server (the store outlives restarts)."""

    profile: KestraSimulatorProfile
    edition: str
    username: str
    password: str
    tokens: tuple[str, ...]
    tenants: tuple[str, ...]
    store: KestraSimStore
    backend: KestraSimBackend
    engine: KestraSimEngine
    hub: KestraSimHub
    faults: KestraSimulatorFaults
    journal: KestraSimJournal
    #: ``kestra.url`` used for the ``url`` field of created executions (the simulator's own URL).
    base_url: str = ""
    #: How long a follow request waits for an unknown execution before dropping (Kestra: 10 s).
    follow_missing_timeout: float = 10.0
    #: Set when the server is stopping: open streams end so the server can shut down.
    closing: bool = False
    #: Serialized execution bodies by (id, light), valid while ``engine.versions[id]`` is unchanged.
    json_cache: dict[tuple[str, bool, bool], tuple[int, bytes]] = field(default_factory=dict)

    @functools.cached_property
    def basic_header(self) -> str:
        """The exact ``Authorization`` value of the configured credentials (fast path of the auth check)."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    @property
    def with_tenant(self) -> bool:
        """Whether bodies carry ``tenantId`` (0.23+)."""
        return self.profile.tenant_in_path
