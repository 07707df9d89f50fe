"""The simulator's backend: Kestra's services, repositories and executor, with no HTTP in sight.

``backend.KestraSimBackend`` holds the operations (create, kill, restart, resume, labels, deploy...),
``store`` the in-memory repositories, ``engine`` the executor that runs executions in the event loop,
``tasks`` what each task type does, ``flows``/``inputs``/``pebble`` parsing and typing, ``search`` filters
and paging, ``clock`` Kestra's time and id formats, ``exceptions`` the Java exceptions the services throw.
Nothing here imports Starlette, uvicorn or the HTTP layer (``tests/unit/testing/test_simulator_layers.py``).
"""
