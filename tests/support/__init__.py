"""Helpers shared by every test suite (on ``sys.path`` through ``pythonpath = ["tests"]`` in pyproject.toml).

* ``kestra_payloads``: Kestra bodies (``execution``, ``task_run``, ``state``, logs, flows) and the one test
  server's ``BASE`` / ``API`` / ``UI`` / ``CONN_URI``.
* ``airflow_doubles``: ``make_ti``, ``pushed``, ``sensor_context``, ``FakeTaskStateStore``, ``hook_double``,
  ``use_hook``.
* ``log_helpers``: ``at_least``, ``new_log_entries``.
* ``fixtures``: the shared pytest fixtures, registered for the whole run by ``tests/conftest.py``.
"""
