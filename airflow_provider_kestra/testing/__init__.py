"""A local simulator of Kestra's REST API for tests and DAG development. It is NOT a Kestra server.

Start it in Python (context manager, or ``start()``/``stop()``/``restart()``)::

    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as sim:          # "0.22", "1.3" or "2.0"
        os.environ["AIRFLOW_CONN_KESTRA_DEFAULT"] = sim.connection_uri()
        dag.test()

from pytest (``pytest_plugins = ["airflow_provider_kestra.testing.pytest_plugin"]`` gives a
``kestra_simulator`` fixture), or from a shell: ``kestra-sim --port 8080 --kestra-version 1.3``.

What it covers: flows (create, update, get with source, delete, list, search, validate, namespace and bulk
deploy with ``delete``, revisions) with Kestra's checks and messages; executions that really run in the
background (Log, Return, OutputValues, Sleep, Pause, Fail, Write, Sequential, Parallel; ``errors`` and
``finally``; typed inputs STRING/INT/FLOAT/BOOLEAN/DATETIME/JSON/ARRAY/SELECT/FILE; flow outputs; labels;
schedule date; webhook triggers), create (``wait`` false/true), get, search with ``filters[...]``, kill,
pause, resume, restart, delete, set labels, follow (SSE framed like Kestra), output file download with
Kestra's prefix rules, logs (list, download, follow); the 2.0 ``/actions/`` and ``/outputs`` endpoints;
basic auth, EE bearer tokens and tenants; 1.x JsonError and 2.0 problem+json error bodies.

What it does not do: other plugins (any other task type is rejected at deploy, like an uninstalled plugin),
Pebble beyond the subset in :mod:`.pebble` (an unsupported expression FAILS the execution with an ERROR log
naming it), schedules (accepted, never fired), task retries/timeouts, subflows, ForEach, KV store,
namespace files, replay, bulk ``by-ids``/``by-query`` actions, and persistence to disk.

Faults for resilience tests: ``sim.faults.fail(503, count=2)``, ``.throttle(retry_after=2)``,
``.latency(0.5)``, ``.drop(after_response=True)``, ``.cut_streams(after_events=2)`` (each with optional
``method=``, ``path=`` regex, ``rate=``, ``count=``; ``KestraSimulator(seed=...)`` makes rates repeatable),
or over HTTP with ``POST/GET/DELETE /_simulator/faults`` and ``POST /_simulator/restart?downtime=1``.

Importing this package never imports Airflow, Starlette or uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.faults import KestraSimFaultRule, KestraSimulatorFaults
    from airflow_provider_kestra.testing.simulator import KestraSimulator

__all__ = ["KestraSimFaultRule", "KestraSimulator", "KestraSimulatorFaults"]


def __getattr__(name: str) -> Any:
    if name == "KestraSimulator":
        from airflow_provider_kestra.testing.simulator import KestraSimulator

        return KestraSimulator
    if name in ("KestraSimulatorFaults", "KestraSimFaultRule"):
        from airflow_provider_kestra.testing import faults

        return getattr(faults, name)
    raise AttributeError(name)
