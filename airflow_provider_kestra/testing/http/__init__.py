"""The simulator's HTTP layer: routes, authentication, error bodies and JSON views over the backend.

``server`` builds the route table of a profile, ``router`` dispatches requests, ``endpoint`` wraps handlers
(auth, tenant, errors) and parses parameters, ``errors`` maps backend exceptions to Kestra's error bodies,
``views`` renders flows and executions. One ``api_*`` module per Kestra controller; a handler parses the
request, calls one backend method and renders the result.
"""
