"""Airflow's ``[core] hostname_callable`` for the distributed harness: the name of the process role.

Every process of the stack runs on this one machine, so the real host name cannot tell the two Celery
workers or the two triggerers apart. The harness sets ``KESTRA_DIST_PROCESS`` (``worker-1``,
``triggerer-2``...) in each process's environment; Airflow then records it as ``task_instance.hostname``
and ``job.hostname``, which is how a test finds the worker running a task or the triggerer holding a
trigger, and so which process to kill.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The process role set by the harness, else the machine's fully qualified name."""
    return os.environ.get("KESTRA_DIST_PROCESS") or socket.getfqdn()
