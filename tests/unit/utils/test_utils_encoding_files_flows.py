"""Pure helpers: multipart/labels/filters encoding, safe file names, flow YAML splitting, SSE, log cursor."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from support.log_helpers import at_least, new_log_entries

from airflow_provider_kestra.exceptions import (
    KestraAuthenticationError,
    KestraConfigError,
    KestraServerError,
    kestra_api_error,
    parse_error_body,
)
from airflow_provider_kestra.utils.connection import settings_from_fields
from airflow_provider_kestra.utils.encoding import (
    encode_inputs,
    encode_labels,
    multipart_body,
    validate_labels,
)
from airflow_provider_kestra.utils.files import (
    find_kestra_uris,
    safe_file_name,
    safe_local_path,
    unique_file_names,
)
from airflow_provider_kestra.utils.flows import KestraFlowSourceError, flow_identity, parse_flow_documents
from airflow_provider_kestra.utils.logs import LOG_CURSOR_MAX_SEEN, instant_key, normalise_level
from airflow_provider_kestra.utils.sse import KestraSseLineBuffer, KestraSseParser

if TYPE_CHECKING:
    from pathlib import Path


# ---------------------------------------------------------------------------------------------- encoding
def test_encode_inputs(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"hi")
    parts = encode_inputs(
        {
            "s": "x",
            "i": 1,
            "b": False,
            "l": [1, 2],
            "p": path,
            "f": io.BytesIO(b"zz"),
            "none": None,
            "d": datetime(2026, 1, 1),
        }
    )
    assert dict(parts) == {
        "s": (None, "x", None),
        "i": (None, "1", None),
        "b": (None, "false", None),
        "l": (None, "[1, 2]", None),
        "p": ("in.txt", b"hi", "application/octet-stream"),
        "f": ("f", b"zz", "application/octet-stream"),
        "d": (None, "2026-01-01T00:00:00+00:00", None),  # naive datetimes are UTC
    }
    body, content_type = multipart_body(parts)
    assert content_type.startswith("multipart/form-data") and b'filename="in.txt"' in body
    with pytest.raises(ValueError, match="does not exist"):
        encode_inputs({"p": tmp_path / "missing"})
    with pytest.raises(ValueError, match="binary mode"):
        encode_inputs({"f": io.StringIO("text")})
    with pytest.raises(ValueError, match="not supported"):
        encode_inputs({"o": object()})


def test_labels() -> None:
    assert encode_labels({"team": "data", "n": 1, "système": "ok"}) == [
        ("labels", "team:data"),
        ("labels", "n:1"),
        ("labels", "système:ok"),
    ]
    assert validate_labels({"system.correlationId": "x"}) == {"system.correlationId": "x"}
    for bad in ({"Team": "x"}, {"1a": "x"}, {"a b": "x"}, {"system.restarted": "true"}, {"a": ""}):
        with pytest.raises(ValueError):
            validate_labels(bad)
    assert validate_labels({"system.restarted": "true"}, allow_system=True)


# ----------------------------------------------------------------------------------------------- files
def test_find_kestra_uris() -> None:
    outputs = {
        "a": "kestra:///x/1.csv",
        "b": [{"c": "kestra:///x/2.csv"}, "kestra:///x/1.csv"],
        "d": "s3://no",
    }
    assert find_kestra_uris(outputs) == ["kestra:///x/1.csv", "kestra:///x/2.csv"]


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("kestra:///a/b/report.csv", "report.csv"),
        ("kestra:///a/..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("kestra:///a/b/..", "output"),
        ("kestra:///a/b/C:%5Cwin%5Cevil.bat", "evil.bat"),
        ("kestra:///a/b/we ird$name.txt", "we_ird_name.txt"),
        ("kestra:///a/.hidden", "hidden"),
        ("kestra:///a/\x00x", "x"),
    ],
)
def test_safe_file_name(uri: str, name: str) -> None:
    assert safe_file_name(uri) == name


def test_unique_names_and_safe_path(tmp_path: Path) -> None:
    names = unique_file_names(
        ["kestra:///a/x.csv", "kestra:///b/x.csv", "kestra:///c/X.csv", "kestra:///d/x.csv"],
        [None, None, None, "t/1"],
    )
    assert names == ["x.csv", "x-1.csv", "X-2.csv", "t_1__x.csv"]
    assert safe_local_path(tmp_path, "x.csv") == tmp_path.resolve() / "x.csv"
    with pytest.raises(ValueError, match="outside"):
        safe_local_path(tmp_path, "../x")
    assert len(safe_file_name("kestra:///" + "a" * 400 + ".csv")) <= 150


# ----------------------------------------------------------------------------------------------- flows
def test_split_multi_document_keeps_text() -> None:
    text = (
        '# header\nid: a\nnamespace: n\nmessage: "{{ inputs.x }}"\n---\n'
        "id: b\nnamespace: n\n--- # c\nid: c\nnamespace: m\n"
    )
    docs = parse_flow_documents(text, filename="f.yml")
    assert [(d.namespace, d.flow_id, d.index) for d in docs] == [("n", "a", 0), ("n", "b", 1), ("m", "c", 2)]
    assert docs[0].source == '# header\nid: a\nnamespace: n\nmessage: "{{ inputs.x }}"\n'
    assert docs[1].label == "f.yml#1 (n.b)"


def test_single_document_is_untouched() -> None:
    text = "---\nid: a\nnamespace: n\ndescription: a --- b\n\n"
    (doc,) = parse_flow_documents(text)
    assert doc.source == text and doc.has_separator_text
    assert flow_identity(text) == ("n", "a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: a\n", "no namespace"),
        ("- a\n", "must be a YAML mapping"),
        ("id: [\n", "invalid YAML"),
        ("", "no flow found"),
        ('id: a\nnamespace: n\ntext: "x\n---\ny"\n', "invalid YAML"),
        ("--- {id: a, namespace: n}\n--- {id: b, namespace: n}\n", "cannot split"),
    ],
)
def test_flow_source_errors(text: str, message: str) -> None:
    with pytest.raises(KestraFlowSourceError, match=message):
        parse_flow_documents(text)


def test_flow_identity_refuses_several() -> None:
    with pytest.raises(KestraFlowSourceError, match="expected one flow"):
        flow_identity("id: a\nnamespace: n\n---\nid: b\nnamespace: n\n")


# ------------------------------------------------------------------------------------------------- SSE
def test_sse_parser_and_line_buffer() -> None:
    lines = KestraSseLineBuffer()
    parser = KestraSseParser()
    events = []
    for chunk in (
        b"id: start\r",
        b'\ndata: {"a"',
        b": 1}\n\n:ping\nevent: x\nid: end\ndata: 1\ndata: 2\n\n",
        b"id: tail",
    ):
        for line in lines.feed(chunk):
            event = parser.feed(line)
            if event:
                events.append(event)
    for line in lines.flush():
        parser.feed(line)
    tail = parser.flush()
    assert [(e.kind, e.data) for e in events] == [("start", '{"a": 1}'), ("x", "1\n2")]
    assert events[0].json() == {"a": 1}
    assert tail is not None and tail.id == "tail" and tail.json() is None
    assert parser.feed(b"") is None


# ------------------------------------------------------------------------------------------------- logs
def entry(ts: str, message: str) -> dict[str, str]:
    return {"timestamp": ts, "message": message, "level": "INFO", "taskRunId": "r"}


def test_log_cursor_equal_timestamps_and_late_lines() -> None:
    t1, t2 = "2026-11-22T10:00:01.5Z", "2026-11-22T10:00:02.123456789Z"
    batch = [entry(t1, "a"), entry(t2, "b")]
    fresh, cursor = new_log_entries(batch, None)
    assert [e["message"] for e in fresh] == ["a", "b"]
    assert json.loads(json.dumps(cursor)) == cursor
    batch2 = [*batch, entry(t2, "c"), entry(t2, "b"), entry("2026-11-22T10:00:01.9Z", "late")]
    fresh, cursor = new_log_entries(batch2, cursor)
    assert [e["message"] for e in fresh] == ["c", "b", "late"], "a repeated identical line is a new line"
    fresh, cursor = new_log_entries(batch2, cursor)
    assert fresh == []


def test_log_cursor_stays_bounded() -> None:
    many = [entry(f"2026-11-22T10:00:00.{i:09d}Z", f"m{i}") for i in range(LOG_CURSOR_MAX_SEEN * 3)]
    fresh, cursor = new_log_entries(many, None)
    assert len(fresh) == len(many)
    assert len(cursor["seen"]) <= LOG_CURSOR_MAX_SEEN
    assert new_log_entries(many, cursor)[0] == []
    assert len(json.dumps(cursor)) < 20000


def test_level_filter() -> None:
    entries = [
        {"level": level, "message": level} for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "NEW")
    ]
    assert [e["message"] for e in at_least(entries, "warning")] == ["WARN", "ERROR", "NEW"]
    assert len(at_least(entries, "TRACE")) == 6


def test_instants_and_levels() -> None:
    assert instant_key("2026-11-22T10:00:01Z") < instant_key("2026-11-22T10:00:01.000000001Z")
    assert instant_key("2026-11-22T11:00:01+01:00") == instant_key("2026-11-22T10:00:01Z")
    assert instant_key("garbage") == (0, 0)
    assert normalise_level("warning") == "WARN"
    with pytest.raises(ValueError, match="unknown log level"):
        normalise_level("LOUD")


# ------------------------------------------------------------------------------------- errors + connection
def test_error_bodies() -> None:
    assert parse_error_body("") == ("", [])
    assert parse_error_body("The execution is not terminated") == ("The execution is not terminated", [])
    assert (
        parse_error_body('{"message":"invalid bulk kill","invalids":[{"message":"x","path":"id"}]}')[1][
            0
        ].path
        == "id"
    )
    err = kestra_api_error(status=401, method="GET", path="/p", body="")
    assert isinstance(err, KestraAuthenticationError) and "credentials" in str(err)
    assert isinstance(kestra_api_error(status=502, method="GET", path="/p", body="<html>"), KestraServerError)
    import pickle

    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err) and str(copy) == str(err)


def test_connection_settings() -> None:
    s = settings_from_fields(
        host="kestra",
        port=8080,
        login="a",
        password="p",
        extras={"extra__kestra__tenant": "t", "verify": "false", "timeout": "5"},
    )
    assert (s.base_url, s.tenant, s.verify, s.timeout) == ("http://kestra:8080", "t", False, 5.0)
    assert (
        settings_from_fields(host="https://k.example.com/base/", extras={"verify": "/ca.pem"}).verify
        == "/ca.pem"
    )
    assert (
        settings_from_fields(host="https://k.example.com", port=9443).base_url == "https://k.example.com:9443"
    )
    for kwargs, message in [
        ({"host": ""}, "no host"),
        ({"host": "h", "schema": "ftp"}, "schema must be"),
        ({"host": "ftp://h"}, "not an http"),
        ({"host": "h", "password": "p"}, "no login"),
        ({"host": "h", "extras": {"timeout": "x"}}, "timeout"),
        ({"host": "h", "extras": {"tenant": "a/b"}}, "tenant"),
    ]:
        with pytest.raises(KestraConfigError, match=message):
            settings_from_fields(**kwargs)  # type: ignore[arg-type]


def test_every_error_pickles() -> None:
    import pickle

    from airflow_provider_kestra.exceptions import (
        KestraExecutionError,
        KestraFieldError,
        KestraFlowDeployError,
        KestraFlowValidationError,
        KestraValidationError,
        KestraWaitTimeout,
    )

    errors = [
        KestraWaitTimeout("late", execution_id="e1", state="RUNNING"),
        KestraExecutionError("failed", execution_id="e1", state="FAILED"),
        KestraFlowValidationError("bad", [{"filename": "a.yml", "message": "x"}]),
        KestraFlowDeployError("stopped", deployed=[{"flow_id": "a"}], not_deployed=["ns.b"]),
        KestraValidationError(
            status=422,
            method="POST",
            path="/p",
            kestra_message="m",
            field_errors=[KestraFieldError("a", "b")],
        ),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
