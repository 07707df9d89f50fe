"""Status reads per second with Kestra's official Python client, ``kestrapy``, one round per request.

Runs in its own throwaway virtualenv (kestrapy pins its own requests/pydantic and must not be installed
next to Airflow), so it imports nothing from the provider or Airflow. After a warm-up read it prints
``ready``; then each line read from stdin is a round length in seconds, answered with one JSON line
``{"rate": reads/s, "cpu_per_read": CPU s, "version": kestrapy version}``. The parent sends the rounds
interleaved with its own variants, so all of them see the same machine load. Ends at end of input.

Usage: ``python bench_kestrapy_poll.py URL USERNAME PASSWORD EXECUTION_ID``
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version


def main(argv: list[str]) -> int:
    """Poll one execution with ``KestraClient.executions.execution`` for each requested round."""
    from kestrapy import KestraClient

    url, username, password, execution_id = argv
    client = KestraClient(host=url, username=username, password=password, timeout=30)
    client.executions.execution(execution_id, "main")
    print("ready", flush=True)
    for line in sys.stdin:
        calls = 0
        cpu_started, started = time.process_time(), time.perf_counter()
        deadline = started + float(line)
        while time.perf_counter() < deadline:
            client.executions.execution(execution_id, "main")
            calls += 1
        rate = calls / (time.perf_counter() - started)
        cpu_per_read = (time.process_time() - cpu_started) / calls
        print(
            json.dumps({"rate": rate, "cpu_per_read": cpu_per_read, "version": version("kestrapy")}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
