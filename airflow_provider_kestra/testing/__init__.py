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
background (Log, Return, OutputValues, Sleep, Pause, Fail, Write, Sequential, Parallel, Dag, ForEach,
Subflow; ``errors`` and ``finally``; typed inputs STRING/INT/FLOAT/BOOLEAN/DATETIME/DATE/TIME/DURATION/
JSON/YAML/ARRAY/SELECT/MULTISELECT/EMAIL/URI/SECRET/FILE; flow outputs; labels; schedule date; webhook
triggers), create (``wait`` false/true), get, search with ``filters[...]``, kill, pause, resume, restart
(also on another revision), delete, set labels, follow (SSE framed like Kestra), output file download with
Kestra's prefix rules, logs (list, download, follow); 2.0's ``/actions/`` (or plain, ``action_routes=``)
awaited actions and ``OutputController`` endpoints; basic auth, EE bearer tokens and tenants; 1.x JsonError
and 2.0 problem+json error bodies.

What it does not do: other plugins (any other task type is rejected at deploy, like an uninstalled plugin),
Pebble beyond the subset in :mod:`.pebble` (an unsupported expression FAILS the execution with an ERROR log
naming it), Schedule triggers (validated like Kestra, never fired), task retries/timeouts, KV store,
namespace files, replay, bulk ``by-ids``/``by-query`` actions, and persistence to disk.

Faults for resilience tests: ``sim.faults.fail(503, count=2)``, ``.throttle(retry_after=2)``,
``.latency(0.5)``, ``.drop(after_response=True)``, ``.cut_streams(after_events=2)``, 2.0's
``.action_timeout("kill")``, an eventually consistent store with ``.search_lag(2.0)`` (young executions
missing from the search) and ``.read_after_write_lag(1.0)`` (``GET /executions/{id}`` 404 at first) (each
with optional
``method=``, ``path=`` regex, ``rate=``, ``count=``; ``KestraSimulator(seed=...)`` makes rates repeatable),
or over HTTP with ``POST/GET/DELETE /_simulator/faults`` and ``POST /_simulator/restart?downtime=1``.

Every request answered is in ``sim.requests`` (a journal in the style of respx/responses):
``sim.requests.count(method="GET", path=r"/follow$")``, ``.filter(...)``, ``.clear()``, iteration.

Layout (moto's): ``backend/`` is Kestra's services, repositories and executor with no HTTP in it
(``KestraSimBackend`` holds every operation: kill, restart, resume, delete, set labels...); ``http/`` holds
the routes, one ``api_*`` module per Kestra controller, whose handlers parse a request, call the backend
and render; ``profiles.py`` is the only place Kestra versions differ.

Why the simulator keeps its own route table, state sets and label rules instead of importing the
provider's (``utils/routes.py``, ``utils/state.py``...): it is the oracle the provider is tested against.
An oracle that shares the client's understanding of Kestra agrees with the client's mistakes and cannot
catch them, so every fact here is written again from Kestra's source. ``testing/`` therefore imports
nothing from the runtime package and the runtime nothing from ``testing/``
(``tests/unit/testing/test_simulator_layers.py`` checks both on the source).

Importing this package never imports Airflow, Starlette or uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_kestra.testing.airflow_env import prepare_airflow_env
    from airflow_provider_kestra.testing.faults import KestraSimFaultRule, KestraSimulatorFaults
    from airflow_provider_kestra.testing.journal import KestraSimJournal, KestraSimRequest
    from airflow_provider_kestra.testing.simulator import KestraSimulator

__all__ = [
    "KestraSimFaultRule",
    "KestraSimJournal",
    "KestraSimRequest",
    "KestraSimulator",
    "KestraSimulatorFaults",
    "prepare_airflow_env",
]


def __getattr__(name: str) -> Any:
    """Import the public names lazily (importing the package starts nothing and imports no Airflow)."""
    if name == "prepare_airflow_env":
        from airflow_provider_kestra.testing.airflow_env import prepare_airflow_env

        return prepare_airflow_env
    if name == "KestraSimulator":
        from airflow_provider_kestra.testing.simulator import KestraSimulator

        return KestraSimulator
    if name in ("KestraSimulatorFaults", "KestraSimFaultRule"):
        from airflow_provider_kestra.testing import faults

        return getattr(faults, name)
    if name in ("KestraSimJournal", "KestraSimRequest"):
        from airflow_provider_kestra.testing import journal

        return getattr(journal, name)
    raise AttributeError(name)
