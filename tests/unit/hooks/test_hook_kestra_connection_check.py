"""``KestraHook.test_connection`` (issue 10, case 21): one request timeout at most (nothing retried), and
one line naming the root cause: DNS, refused, TLS, timeout, 401, 403, unknown tenant."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator


@pytest.fixture(scope="module")
def sim() -> Iterator[KestraSimulator]:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as simulator:
        yield simulator


def check(monkeypatch: pytest.MonkeyPatch, host: str, **fields: object) -> tuple[bool, str, float]:
    from airflow_provider_kestra.hooks.kestra import KestraHook

    conn = {"conn_type": "kestra", "host": host, "login": "admin@kestra.io", "password": "x", **fields}
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", json.dumps(conn))
    began = time.monotonic()
    with KestraHook(retry_limit=5, retry_delay=1.0) as hook:
        ok, message = hook.test_connection()
    assert "\n" not in message and hook.retry_limit == 5
    return ok, message, time.monotonic() - began


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message, _ = check(monkeypatch, "http://kestra.invalid:8080")
    assert not ok and "DNS" in message


def test_refused_answers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message, took = check(monkeypatch, f"http://127.0.0.1:{free_port()}")
    assert not ok and "connection refused" in message and took < 5  # no backoff of 1, 2, 4... s


def test_timeout_within_one_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        ok, message, took = check(monkeypatch, f"http://127.0.0.1:{port}", extra={"timeout": 1})
    assert not ok and "timed out" in message and took < 1 + 3


def test_tls(monkeypatch: pytest.MonkeyPatch, sim: KestraSimulator) -> None:
    ok, message, _ = check(monkeypatch, sim.url.replace("http://", "https://"))
    assert not ok and "TLS" in message


def test_401(monkeypatch: pytest.MonkeyPatch, sim: KestraSimulator) -> None:
    ok, message, _ = check(monkeypatch, sim.url, password="wrong")
    assert not ok and "401" in message and "admin@kestra.io" in message


def test_unknown_tenant(monkeypatch: pytest.MonkeyPatch, sim: KestraSimulator) -> None:
    ok, message, _ = check(monkeypatch, sim.url, password=sim.password, extra={"tenant": "nope"})
    assert not ok and "'nope'" in message


def test_403(monkeypatch: pytest.MonkeyPatch, sim: KestraSimulator) -> None:
    sim.faults.fail(403, path=r"/flows/search$", count=1)
    ok, message, _ = check(monkeypatch, sim.url, password=sim.password)
    assert not ok and "403" in message


def test_success(monkeypatch: pytest.MonkeyPatch, sim: KestraSimulator) -> None:
    ok, message, _ = check(monkeypatch, sim.url, password=sim.password)
    assert ok and message.startswith("Connected to Kestra"), message
