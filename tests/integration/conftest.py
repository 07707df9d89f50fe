"""The integration suite: real Airflow (``dag.test()``) against the Kestra simulator.

Its fixtures are the shared ones of ``tests/support/fixtures.py``: ``kestra_sim`` (one simulator per Kestra
profile, "1.3" and "2.0", for the session), ``kestra`` (alias of ``kestra_side``: that simulator as
``kestra_default``), ``make_dag`` and ``run_dag``. The Airflow process stack of the e2e tests is
``tests/support/airflow_stack.py``.
"""
