"""The distributed end-to-end suite: Airflow with CeleryExecutor, Redis and PostgreSQL (see
``kestra_distributed_stack.py``). Skipped unless ``KESTRA_DISTRIBUTED=1``; ``bash scripts/run-distributed.sh``
prepares the machine and the ``.venv/af33-celery`` virtualenv, then runs it.
"""
