"""Helpers shared by every test suite (on ``sys.path`` through ``pythonpath = ["tests"]`` in pyproject.toml).

* ``kestra_payloads``: Kestra bodies (``execution``, ``task_run``, ``state``, logs, flows) and the one test
  server's ``BASE`` / ``API`` / ``UI`` / ``CONN_URI``.
* ``airflow_doubles``: ``make_ti``, ``pushed``, ``sensor_context``, ``FakeTaskStateStore``, ``hook_double``,
  ``use_hook``.
* ``dag_runner``: ``build_dag``, ``dag_id_for``, ``run_dag_with_capture`` (``dag.test()`` on Airflow 3.3
  and 2.11) and ``DagTestRun``.
* ``kestra_side``: ``KestraTestSide`` (deploy, start, inspect executions), ``kestra_side_for``, and
  ``labels_of`` / ``state_of`` / ``state_history`` / ``flow_source``.
* ``kestra_flows``: flow bodies of the integration and reliability suites.
* ``log_helpers``: ``at_least``, ``new_log_entries``.
* ``fixtures``: the pytest fixtures above, registered for the whole run by ``tests/conftest.py``.
"""
