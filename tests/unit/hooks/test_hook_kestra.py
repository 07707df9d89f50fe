"""KestraHook: connection, version detection, routes, errors, retries and executions (1.x and 2.x shapes)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
from support.kestra_payloads import BASE, PASSWORD, TOKEN, execution, paged

from airflow_provider_kestra.exceptions import (
    KestraAuthenticationError,
    KestraConfigError,
    KestraConflictError,
    KestraConnectionError,
    KestraNotFoundError,
    KestraServerError,
    KestraValidationError,
)
from airflow_provider_kestra.hooks.kestra import KestraHook
from airflow_provider_kestra.utils.routes import KestraApiVersion

EXEC_ID = "4wjtkzwVGBM9yKnjm3yv8r"


# ------------------------------------------------------------------------------------ connection + version
def test_server_info_detects_version_and_sends_credentials(
    hook: KestraHook, http: Any, server_version: str
) -> None:
    info = hook.server_info()
    assert info == {
        "version": server_version,
        "edition": "OSS",
        "api_version": "2" if server_version.startswith("2") else "1",
        "is_simulator": False,
    }
    assert http.last_request.headers["Authorization"].startswith("Basic ")
    assert http.last_request.headers["User-Agent"].startswith("airflow-provider-kestra/")
    hook.server_info()
    hook.get_execution  # noqa: B018
    assert http.call_count == 1, "configs must be read once per hook"


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.22.3", "0.22"), ("0.23.0", "1"), ("1.3.25", "1"), ("2.0.0-SNAPSHOT", "2")],
)
def test_version_detection_builds_tenant_and_action_paths(
    kestra_conn: str, http: Any, version: str, expected: str
) -> None:
    http.get(f"{BASE}/api/v1/configs", json={"version": version})
    prefix = f"{BASE}/api/v1" if expected == "0.22" else f"{BASE}/api/v1/main"
    kill = (
        f"{prefix}/executions/{EXEC_ID}/actions/kill"
        if expected == "2"
        else f"{prefix}/executions/{EXEC_ID}/kill"
    )
    http.delete(kill, status_code=202)
    hook = KestraHook()
    hook.kill_execution(EXEC_ID)
    assert hook.api_version.value == expected
    assert http.last_request.url.split("?")[0] == kill


def test_pinned_api_version_skips_detection(monkeypatch: pytest.MonkeyPatch, http: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_KESTRA_DEFAULT", "kestra://kestra.test:8080?api_version=2&tenant=acme&token=tkn"
    )
    http.get(f"{BASE}/api/v1/acme/executions/{EXEC_ID}", json=execution("RUNNING"))
    hook = KestraHook()
    assert hook.get_execution(EXEC_ID)["state"]["current"] == "RUNNING"
    assert http.call_count == 1
    assert http.last_request.headers["Authorization"] == "Bearer tkn"


def test_missing_version_assumes_generation_1(
    kestra_conn: str, http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    http.get(f"{BASE}/api/v1/configs", json={"uuid": "x"})
    with caplog.at_level(logging.WARNING):
        assert KestraHook().api_version is KestraApiVersion.V1
    assert "did not report its version" in caplog.text


@pytest.mark.parametrize(
    ("uri", "base"),
    [
        ("kestra://u:p@h:8080", "http://h:8080"),
        ("kestra://u:p@h:8443/https", "https://h:8443"),
        ("kestra://u:p@https%3A%2F%2Fkestra.example.com%2Fbase", "https://kestra.example.com/base"),
    ],
)
def test_base_url_forms(monkeypatch: pytest.MonkeyPatch, uri: str, base: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", uri)
    assert KestraHook().settings.base_url == base


def test_basic_auth_and_token_together_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", f"kestra://u:{PASSWORD}@h:8080?token={TOKEN}")
    with pytest.raises(KestraConfigError, match="both login/password") as info:
        KestraHook().settings  # noqa: B018
    assert PASSWORD not in str(info.value) and TOKEN not in str(info.value)


def test_secrets_never_in_repr_or_errors(
    kestra_conn: str, http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    http.get(f"{BASE}/api/v1/configs", json={"version": "1.3.25"})

    # A (misbehaving) server echoing the Authorization header back in its error body.
    def echo(request: Any, context: Any) -> str:
        context.status_code = 500
        return json.dumps(
            {"message": f"Internal server error: bad header {request.headers['Authorization']}"}
        )

    http.get(f"{BASE}/api/v1/main/executions/{EXEC_ID}", text=echo)
    hook = KestraHook(retry_limit=1, retry_delay=0)
    hook._sleep = lambda _s: None
    with caplog.at_level(logging.DEBUG), pytest.raises(KestraServerError) as info:
        hook.get_execution(EXEC_ID)
    basic = hook.settings.auth_header
    assert basic is not None
    for secret in (PASSWORD, basic, basic.split()[1]):
        assert secret not in str(info.value)
        assert secret not in repr(hook) + repr(hook.settings)
        assert secret not in caplog.text
    assert "***" in str(info.value)


# ---------------------------------------------------------------------------------------------- errors
def test_json_error_1x_is_parsed(hook: KestraHook, http: Any, api: str) -> None:
    http.post(
        f"{api}/executions/company.team/hello",
        status_code=422,
        json={
            "message": "Invalid entity: Invalid value for input `n`. Cause: not an int",
            "_links": {"self": {"href": "/api/v1/main/executions/company.team/hello"}},
            "_embedded": {"errors": [{"message": "not an int", "path": "inputs.n"}]},
        },
    )
    with pytest.raises(KestraValidationError) as info:
        hook.create_execution("company.team", "hello", inputs={"n": "x"})
    err = info.value
    assert (err.status, err.method, err.path) == (422, "POST", "/api/v1/main/executions/company.team/hello")
    assert err.kestra_message.startswith("Invalid entity: Invalid value for input `n`")
    assert [(e.path, e.message) for e in err.field_errors] == [("inputs.n", "not an int")]
    assert "Starting an execution of flow company.team.hello" in str(err)
    assert hook.sleeps == []  # type: ignore[attr-defined]


def test_problem_json_2x_is_parsed(hook: KestraHook, http: Any, api: str) -> None:
    http.get(
        f"{api}/executions/{EXEC_ID}",
        status_code=404,
        headers={"Content-Type": "application/problem+json"},
        json={
            "type": "https://kestra.io/docs/api-reference/problems/not-found",
            "title": "Not Found",
            "status": 404,
            "detail": f"Execution '{EXEC_ID}' not found",
            "instance": f"/api/v1/main/executions/{EXEC_ID}",
            "errors": [{"path": "executionId", "message": "unknown"}],
        },
    )
    with pytest.raises(KestraNotFoundError) as info:
        hook.get_execution(EXEC_ID)
    assert info.value.kestra_message == f"Not Found: Execution '{EXEC_ID}' not found"
    assert info.value.field_errors[0].path == "executionId"


def test_401_empty_body(hook: KestraHook, http: Any, api: str) -> None:
    http.get(f"{api}/executions/{EXEC_ID}", status_code=401, headers={"WWW-Authenticate": "Basic"}, text="")
    with pytest.raises(KestraAuthenticationError, match="HTTP 401"):
        hook.get_execution(EXEC_ID)
    assert hook.sleeps == []  # type: ignore[attr-defined]


def test_429_honours_retry_after_seconds(hook: KestraHook, http: Any, api: str) -> None:
    http.get(
        f"{api}/executions/{EXEC_ID}",
        [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": execution()}],
    )
    hook.get_execution(EXEC_ID)
    assert hook.sleeps == [7.0]  # type: ignore[attr-defined]


def test_resume_is_not_repeated_after_read_timeout(hook: KestraHook, http: Any, api: str, v2: bool) -> None:
    path = f"{api}/executions/{EXEC_ID}/actions/resume" if v2 else f"{api}/executions/{EXEC_ID}/resume"
    http.post(path, exc=requests.exceptions.ReadTimeout("read timed out"))
    read = http.get(f"{api}/executions/{EXEC_ID}", json=execution("PAUSED"))
    with pytest.raises(KestraConnectionError, match="still PAUSED"):
        hook.resume_execution(EXEC_ID)
    assert http.call_count == 3  # configs + one resume + one read of the state to decide
    assert hook.sleeps == []  # type: ignore[attr-defined]
    # The answer was lost but the execution runs again: the resume happened.
    read.reset()
    http.get(f"{api}/executions/{EXEC_ID}", json=execution("RUNNING"))
    hook.resume_execution(EXEC_ID)


# ------------------------------------------------------------------------------------------ executions
def test_create_execution_multipart_labels_revision_schedule(
    hook: KestraHook, http: Any, api: str, tmp_path: Any
) -> None:
    created = execution("CREATED") | {"url": f"{BASE}/ui/main/executions/company.team/hello/{EXEC_ID}"}
    http.post(f"{api}/executions/company.team/hello", json=created)
    data_file = tmp_path / "data.csv"
    data_file.write_bytes(b"a,b\n1,2\n")
    result = hook.create_execution(
        "company.team",
        "hello",
        inputs={
            "name": "World",
            "n": 3,
            "flag": True,
            "cfg": {"x": [1]},
            "file": data_file,
            "raw": b"\x00\x01",
        },
        labels={"team": "data", "airflow.try_number": 1},
        revision=2,
        schedule_date="2026-11-22T10:00:00+01:00",
    )
    assert result["id"] == EXEC_ID
    request = http.last_request
    assert request.qs["labels"] == ["team:data", "airflow.try_number:1"]
    assert request.qs["revision"] == ["2"]
    assert request.qs["scheduleDate"] == ["2026-11-22T10:00:00+01:00"]
    assert "%2B01%3A00" in request.url, "the + of the offset must be URL-encoded"
    body = request.body
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="name"\r\n\r\nWorld\r\n' in body
    assert b'name="n"\r\n\r\n3\r\n' in body
    assert b'name="flag"\r\n\r\ntrue\r\n' in body
    assert b'name="cfg"\r\n\r\n{"x": [1]}\r\n' in body
    assert b'name="file"; filename="data.csv"' in body and b"a,b\n1,2\n" in body
    assert b'name="raw"; filename="raw"' in body


def test_create_execution_without_inputs_sends_no_body(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/executions/company.team/hello", json=execution("CREATED"))
    hook.create_execution("company.team", "hello")
    assert http.last_request.body is None


def test_create_execution_refuses_bad_labels_before_sending(hook: KestraHook, http: Any) -> None:
    with pytest.raises(ValueError, match="reserved"):
        hook.create_execution("company.team", "hello", labels={"system.x": "1"})
    with pytest.raises(ValueError, match="invalid"):
        hook.create_execution("company.team", "hello", labels={"Team": "1"})
    assert http.call_count == 0


def test_create_execution_not_repeated_when_outcome_unknown(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/executions/company.team/hello", status_code=503, text="")
    with pytest.raises(KestraServerError, match="may or may not have been created"):
        hook.create_execution("company.team", "hello")
    posts = [r for r in http.request_history if r.method == "POST"]
    assert len(posts) == 1


def test_create_execution_retried_when_never_sent(hook: KestraHook, http: Any, api: str) -> None:
    http.post(
        f"{api}/executions/company.team/hello",
        [
            {"exc": requests.exceptions.ConnectTimeout("x")},
            {"status_code": 429},
            {"json": execution("CREATED")},
        ],
    )
    assert hook.create_execution("company.team", "hello")["id"] == EXEC_ID
    assert len([r for r in http.request_history if r.method == "POST"]) == 3


def test_create_execution_ambiguity_resolved_by_label(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/executions/company.team/hello", exc=requests.exceptions.ReadTimeout("lost"))
    found = execution("RUNNING", labels={"airflow.key": "run-1"})
    http.get(f"{api}/executions/search", json=paged([found]))
    http.get(f"{api}/executions/{EXEC_ID}", json=found)
    result = hook.create_execution(
        "company.team", "hello", labels={"airflow.key": "run-1"}, idempotency_label_key="airflow.key"
    )
    assert result["id"] == EXEC_ID
    assert len([r for r in http.request_history if r.method == "POST"]) == 1
    search = next(r for r in http.request_history if r.path.endswith("/executions/search"))
    assert search.qs["filters[labels][EQUALS][airflow.key]"] == ["run-1"]
    assert search.qs["filters[flowId][EQUALS]"] == ["hello"]


def test_create_execution_ambiguity_not_found_sends_again(hook: KestraHook, http: Any, api: str) -> None:
    http.post(
        f"{api}/executions/company.team/hello",
        [{"status_code": 502}, {"json": execution("CREATED")}],
    )
    http.get(f"{api}/executions/search", json=paged([]))
    result = hook.create_execution("company.team", "hello", labels={"k": "u1"}, idempotency_label_key="k")
    assert result["id"] == EXEC_ID
    assert len([r for r in http.request_history if r.method == "POST"]) == 2


def test_idempotency_key_must_be_a_label(hook: KestraHook) -> None:
    with pytest.raises(KestraConfigError, match="idempotency_label_key"):
        hook.create_execution("company.team", "hello", labels={"a": "b"}, idempotency_label_key="k")


def test_restart_409_is_conflict(hook: KestraHook, http: Any, api: str, v2: bool) -> None:
    actions = f"{api}/executions/{EXEC_ID}/actions" if v2 else f"{api}/executions/{EXEC_ID}"
    http.post(
        f"{actions}/restart",
        status_code=409,
        json={
            "message": "Illegal state: Execution must be terminated or paused and not killed to be restarted"
        },
    )
    with pytest.raises(KestraConflictError, match=r"Restarting execution .*must be terminated"):
        hook.restart_execution(EXEC_ID)


def test_resume_sends_multipart_inputs(hook: KestraHook, http: Any, api: str, v2: bool) -> None:
    path = f"{api}/executions/{EXEC_ID}/actions/resume" if v2 else f"{api}/executions/{EXEC_ID}/resume"
    http.post(path, status_code=200 if v2 else 204, **({"json": execution("RUNNING")} if v2 else {}))
    hook.resume_execution(EXEC_ID, inputs={"approved": True, "reason": "ok"})
    assert b'name="approved"\r\n\r\ntrue' in http.last_request.body
    assert http.last_request.headers["Content-Type"].startswith("multipart/form-data")


def test_execution_ui_url(monkeypatch: pytest.MonkeyPatch, http: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_KESTRA_DEFAULT",
        "kestra://u:p@kestra.test:8080?api_version=1&ui_url=https%3A%2F%2Fkestra.example.com%2Fui%2F",
    )
    hook = KestraHook()
    assert (
        hook.execution_ui_url(execution())
        == f"https://kestra.example.com/ui/main/executions/company.team/hello/{EXEC_ID}"
    )
    http.get(f"{BASE}/api/v1/main/executions/{EXEC_ID}", json=execution())
    assert hook.execution_ui_url(EXEC_ID).endswith(f"/company.team/hello/{EXEC_ID}")


def test_test_connection_reports_version(hook: KestraHook, http: Any, api: str, server_version: str) -> None:
    http.get(f"{api}/flows/search", json=paged([]))
    ok, message = hook.test_connection()
    assert ok
    assert f"Kestra {server_version} OSS" in message and "tenant 'main'" in message


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, "", "refused login 'admin@kestra.io' and its password (HTTP 401)"),
        (403, "Forbidden", "may not read flows of tenant 'main' (HTTP 403)"),
        (
            400,
            json.dumps({"message": "Bad Request: Tenant must be 'main' for OSS version"}),
            "tenant 'main' was refused",
        ),
    ],
)
def test_test_connection_failures(
    hook: KestraHook, http: Any, api: str, status: int, body: str, expected: str
) -> None:
    http.get(f"{api}/flows/search", status_code=status, text=body)
    ok, message = hook.test_connection()
    assert not ok
    assert expected in message
    assert PASSWORD not in message


def test_test_connection_unreachable(kestra_conn: str, http: Any) -> None:
    http.get(f"{BASE}/api/v1/configs", exc=requests.exceptions.ConnectionError("Connection refused"))
    hook = KestraHook(retry_limit=0)
    ok, message = hook.test_connection()
    assert not ok and "could not reach Kestra at http://kestra.test:8080" in message


def test_test_connection_tls(kestra_conn: str, http: Any) -> None:
    http.get(f"{BASE}/api/v1/configs", exc=requests.exceptions.SSLError("certificate verify failed"))
    ok, message = KestraHook().test_connection()
    assert not ok and "TLS handshake" in message and "certificate verify failed" in message


def test_test_connection_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KESTRA_DEFAULT", "kestra://u:p@h:1?api_version=banana")
    ok, message = KestraHook().test_connection()
    assert not ok and "api_version" in message


# ---------------------------------------------------------------------------------------- connection form
def test_connection_form_is_the_same_on_airflow_2_and_3() -> None:
    from airflow_provider_kestra.get_provider_info import get_provider_info

    (conn_type,) = get_provider_info()["connection-types"]
    behaviour = KestraHook.get_ui_field_behaviour()
    assert conn_type["ui-field-behaviour"]["hidden-fields"] == behaviour["hidden_fields"]
    assert conn_type["ui-field-behaviour"]["relabeling"] == behaviour["relabeling"]
    assert conn_type["conn-fields"]["token"]["schema"]["format"] == "password"
    pytest.importorskip("flask_appbuilder")
    widgets = KestraHook.get_connection_form_widgets()
    assert set(widgets) == set(conn_type["conn-fields"])
    assert set(behaviour["placeholders"]) >= {"host", "login", "token"}


def test_extras_from_the_form_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "extra__kestra__tenant": "acme",
        "extra__kestra__timeout": "12",
        "ui_url": "https://ui.example.com",
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_KESTRA_DEFAULT",
        json.dumps(
            {
                "conn_type": "kestra",
                "host": "https://k.example.com",
                "login": "a",
                "password": "b",
                "extra": extra,
            }
        ),
    )
    settings = KestraHook(request_timeout=None).settings
    assert (settings.tenant, settings.timeout, settings.ui_url) == ("acme", 12.0, "https://ui.example.com")


def test_create_execution_last_attempt_ambiguous_still_looks(kestra_conn: str, http: Any) -> None:
    http.get(f"{BASE}/api/v1/configs", json={"version": "1.3.25"})
    http.post(f"{BASE}/api/v1/main/executions/company.team/hello", status_code=504)
    found = execution("RUNNING", labels={"k": "u1"})
    http.get(f"{BASE}/api/v1/main/executions/search", [{"json": paged([])}, {"json": paged([found])}])
    http.get(f"{BASE}/api/v1/main/executions/{EXEC_ID}", json=found)
    hook = KestraHook(retry_limit=0)
    hook._sleep = lambda _s: None
    assert (
        hook.create_execution("company.team", "hello", labels={"k": "u1"}, idempotency_label_key="k") == found
    )


def test_create_execution_search_failure_keeps_the_ambiguity_visible(
    hook: KestraHook, http: Any, api: str
) -> None:
    http.post(f"{api}/executions/company.team/hello", exc=requests.exceptions.ReadTimeout("lost"))
    http.get(f"{api}/executions/search", status_code=403, text="Forbidden")
    with pytest.raises(
        KestraConnectionError, match="may or may not have been created; looking for it by label"
    ):
        hook.create_execution("company.team", "hello", labels={"k": "u1"}, idempotency_label_key="k")
    assert len([r for r in http.request_history if r.method == "POST"]) == 1


def test_create_execution_gives_up_after_retry_limit(hook: KestraHook, http: Any, api: str) -> None:
    http.post(f"{api}/executions/company.team/hello", status_code=502)
    http.get(f"{api}/executions/search", json=paged([]))
    with pytest.raises(KestraServerError):
        hook.create_execution("company.team", "hello", labels={"k": "u1"}, idempotency_label_key="k")
    assert len([r for r in http.request_history if r.method == "POST"]) == 4  # 1 + retry_limit


def test_negative_retry_limit_is_refused() -> None:
    with pytest.raises(KestraConfigError, match="retry_limit"):
        KestraHook(retry_limit=-1)


def test_hook_context_manager_closes_session(hook: KestraHook, http: Any, api: str) -> None:
    http.get(f"{api}/executions/{EXEC_ID}", json=execution())
    with hook as h:
        h.get_execution(EXEC_ID)
        assert "session" in h.__dict__
    assert "session" not in hook.__dict__


def test_token_never_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch, http: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_KESTRA_DEFAULT", f"kestra://kestra.test:8080?token={TOKEN}&api_version=1"
    )
    http.get(
        f"{BASE}/api/v1/main/executions/{EXEC_ID}",
        status_code=403,
        text=f"Forbidden for Bearer {TOKEN}",
    )
    hook = KestraHook()
    assert hook.get_conn().headers["Authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(Exception) as info:
        hook.get_execution(EXEC_ID)
    assert TOKEN not in str(info.value) and TOKEN not in repr(hook.settings)
    http.get(f"{BASE}/api/v1/configs", json={"version": "1.3.25", "edition": "EE"})
    http.get(f"{BASE}/api/v1/main/flows/search", status_code=401, text="")
    ok, message = hook.test_connection()
    assert not ok and "refused the API token (HTTP 401)" in message
    assert TOKEN not in message


def test_real_socket_errors_are_classified() -> None:
    import socket
    import threading

    from airflow_provider_kestra.utils.retry import never_sent as _never_sent

    with pytest.raises(requests.exceptions.ConnectionError) as refused:
        requests.get("http://127.0.0.1:1/x", timeout=5)
    assert _never_sent(refused.value)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drop() -> None:
        conn, _ = server.accept()
        conn.recv(1000)
        conn.close()

    threading.Thread(target=drop, daemon=True).start()
    with pytest.raises(requests.exceptions.ConnectionError) as dropped:
        requests.post(f"http://127.0.0.1:{server.getsockname()[1]}/x", data=b"a", timeout=5)
    server.close()
    assert not _never_sent(dropped.value)
