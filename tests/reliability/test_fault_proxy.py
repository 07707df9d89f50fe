"""The fault proxy itself: transparent without rules, and each programmed fault observable by a client.

Clients are plain ``httpx`` and ``requests`` (not the provider), against a real simulator behind the proxy,
so these tests say what a fault looks like on the wire, independently of how the provider copes with it.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
from support.kestra_fault_proxy import KestraFaultProxy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_kestra.testing import KestraSimulator

NAMESPACE = "proxy.tests"
FLOW_ID = "nap"
API = "/api/v1/main"
FLOW = f"""id: {FLOW_ID}
namespace: {NAMESPACE}
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{{{ inputs.name }}}}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
"""
CREATE = f"{API}/executions/{NAMESPACE}/{FLOW_ID}"


@pytest.fixture(scope="module")
def sim() -> Iterator[KestraSimulator]:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version="1.3") as simulator:
        with httpx.Client(base_url=simulator.url, auth=(simulator.username, simulator.password)) as client:
            answer = client.post(f"{API}/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"})
            assert answer.status_code == 200, answer.text
        yield simulator


@pytest.fixture
def proxy(sim: KestraSimulator) -> Iterator[KestraFaultProxy]:
    with KestraFaultProxy(sim.url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def direct(sim: KestraSimulator) -> Iterator[httpx.Client]:
    """A client straight to the simulator (the judge of what really happened)."""
    with httpx.Client(base_url=sim.url, auth=(sim.username, sim.password), timeout=10) as client:
        yield client


@pytest.fixture
def client(sim: KestraSimulator, proxy: KestraFaultProxy) -> Iterator[httpx.Client]:
    """A keep-alive client through the proxy."""
    with httpx.Client(base_url=proxy.url, auth=(sim.username, sim.password), timeout=10) as http:
        yield http


def start(client: httpx.Client, **labels: str) -> str:
    answer = client.post(CREATE, params=[("labels", f"{k}:{v}") for k, v in labels.items()])
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def executions_labelled(direct: httpx.Client, key: str, value: str) -> list[dict[str, Any]]:
    answer = direct.get(f"{API}/executions/search", params={"filters[labels][EQUALS][" + key + "]": value})
    answer.raise_for_status()
    return [e for e in answer.json()["results"] if {"key": key, "value": value} in (e.get("labels") or [])]


def sse_frames(raw: bytes) -> list[dict[str, str]]:
    """Complete SSE frames of a raw body as ``{field: value}`` (comments kept under ``":"``)."""
    frames = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        frame: dict[str, str] = {}
        for line in block.decode().split("\n"):
            name, _, value = line.partition(":")
            frame[name or ":"] = value.removeprefix(" ")
        frames.append(frame)
    return frames


def follow_raw(client: httpx.Client, execution_id: str) -> tuple[httpx.Response, list[bytes]]:
    with client.stream("GET", f"{API}/executions/{execution_id}/follow") as answer:
        return answer, list(answer.iter_raw())


# ----------------------------------------------------------------------------------- no fault set
def test_plain_answers_pass_through_unchanged(direct: httpx.Client, client: httpx.Client) -> None:
    execution_id = start(direct)
    for path in ("/api/v1/configs", f"{API}/flows/{NAMESPACE}/{FLOW_ID}", f"{API}/executions/nope"):
        mine, theirs = client.get(path), direct.get(path)
        assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), path
        assert mine.headers["content-type"] == theirs.headers["content-type"]
        assert mine.headers["content-length"] == theirs.headers["content-length"]
    time.sleep(1.5)  # the execution is over: its GET no longer changes between two reads
    path = f"{API}/executions/{execution_id}"
    assert client.get(path).content == direct.get(path).content


def test_keep_alive_and_request_bodies(
    sim: KestraSimulator, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    """Several requests share one client connection; multipart and chunked request bodies are forwarded."""
    for _ in range(5):
        assert client.get("/api/v1/configs").status_code == 200
    answer = client.post(CREATE, files={"name": (None, "multipart")}, params={"labels": "case:multipart"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["inputs"] == {"name": "multipart"}
    assert proxy.connections_accepted == 1

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\n'
        yield b"chunked\r\n--b--\r\n"

    answer = client.post(
        CREATE, content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["inputs"] == {"name": "chunked"}
    with requests.Session() as session:
        session.auth = (sim.username, sim.password)
        url = client.base_url.join("/api/v1/configs")
        assert [session.get(str(url)).status_code for _ in range(3)] == [200, 200, 200]
    assert proxy.faults_injected == []


def test_event_streams_pass_through_unchanged(direct: httpx.Client, client: httpx.Client) -> None:
    execution_id = start(direct)
    answer, pieces = follow_raw(client, execution_id)
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["transfer-encoding"] == "chunked"
    frames = sse_frames(b"".join(pieces))
    kinds = [f["id"] for f in frames]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"progress"}, kinds
    assert json.loads(frames[-1]["data"]) == direct.get(f"{API}/executions/{execution_id}").json()
    # Frames arrive as the simulator writes them (one read per frame, never merged or split).
    assert all(piece.endswith(b"\n\n") and piece.count(b"\nid: ") == 0 for piece in pieces)


def test_stream_closed_by_the_client_closes_the_upstream_stream(
    direct: httpx.Client, sim: KestraSimulator, proxy: KestraFaultProxy
) -> None:
    """A client leaving a silent stream is noticed: the proxy does not keep Kestra's stream open."""
    execution_id = start(direct)
    credentials = base64.b64encode(f"{sim.username}:{sim.password}".encode()).decode()
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(
            f"GET {API}/logs/{execution_id}/follow HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {credentials}\r\n\r\n".encode()
        )
        assert b"200 OK" in sock.recv(4096)
    deadline = time.monotonic() + 5
    while proxy.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.open_connections == 0


# ---------------------------------------------------------------------------------------- outages
def test_down_refuses_connections_until_up(client: httpx.Client, proxy: KestraFaultProxy) -> None:
    assert client.get("/api/v1/configs").status_code == 200
    outages = proxy.source("outage")
    assert outages.fired == 0
    proxy.down()
    assert outages.fired == 1
    assert proxy.is_down
    with pytest.raises(httpx.ConnectError):
        client.get("/api/v1/configs")
    proxy.up()
    assert client.get("/api/v1/configs").status_code == 200
    assert [f.kind for f in proxy.faults_injected] == ["outage"]


def test_outage_ends_by_itself(client: httpx.Client, proxy: KestraFaultProxy) -> None:
    proxy.outage(0.6)
    started = time.monotonic()
    refused = 0
    while True:
        try:
            answer = client.get("/api/v1/configs")
            break
        except httpx.TransportError:
            refused += 1
            time.sleep(0.05)
    assert answer.status_code == 200
    assert refused >= 3 and 0.5 <= time.monotonic() - started < 3


def test_reset_mode_and_open_streams_cut(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    """An open event stream is reset by the outage; in ``reset`` mode new connections are accepted then
    reset, each counted."""
    execution_id = start(direct)
    errors: list[BaseException] = []
    opened = threading.Event()

    def follow() -> None:
        try:
            with client.stream("GET", f"{API}/logs/{execution_id}/follow") as answer:
                opened.set()
                for _ in answer.iter_raw():
                    pass
        except httpx.HTTPError as err:
            errors.append(err)

    reader = threading.Thread(target=follow)
    reader.start()
    assert opened.wait(5)
    proxy.down(mode="reset")
    reader.join(5)
    assert errors and isinstance(errors[0], httpx.TransportError), errors
    with httpx.Client(base_url=proxy.url) as fresh:
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                fresh.get("/api/v1/configs")
    proxy.up()
    assert client.get("/api/v1/configs").status_code == 200
    assert [f.detail for f in proxy.faults_injected] == ["reset", "connection reset", "connection reset"]


# ------------------------------------------------------------------------------- replaced answers
def test_html_200_on_execution_reads(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    execution_id = start(direct)
    rule = proxy.html_200(r"/executions/[A-Za-z0-9]+$", method="GET", count=2)
    path = f"{API}/executions/{execution_id}"
    answers = [client.get(path) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["content-type"].split(";")[0] for a in answers] == [
        "text/html",
        "text/html",
        "application/json",
    ]
    assert b"login" in answers[0].content
    assert answers[2].json()["id"] == execution_id
    assert rule.fired == 2
    assert [(f.kind, f.method, f.path) for f in proxy.faults_injected] == [("html_200", "GET", path)] * 2
    assert client.get("/api/v1/configs").status_code == 200  # other paths untouched


@pytest.mark.parametrize("kind", ["html_200", "empty_200", "garbage_json"])
def test_create_answer_replaced_after_kestra_got_it(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy, kind: str
) -> None:
    """With ``forward=True`` the execution is created although the client cannot read the answer."""
    getattr(proxy, kind)(CREATE + "$", method="POST", count=1, forward=True)
    answer = client.post(CREATE, params={"labels": f"case:{kind}"})
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert len(executions_labelled(direct, "case", kind)) == 1
    assert proxy.count(kind) == 1


def test_html_200_without_forward_never_reaches_kestra(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    proxy.html_200(CREATE + "$", method="POST", count=1)
    assert (
        client.post(CREATE, params={"labels": "case:login_page"})
        .headers["content-type"]
        .startswith("text/html")
    )
    assert executions_labelled(direct, "case", "login_page") == []


def test_truncate_keeps_content_length(
    sim: KestraSimulator, direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    execution_id = start(direct)
    path = f"{API}/executions/{execution_id}"
    full = int(direct.get(path).headers["content-length"])
    proxy.truncate(r"/executions/[A-Za-z0-9]+$", after_bytes=40, count=1)
    with client.stream("GET", path) as answer:
        assert int(answer.headers["content-length"]) >= full - 5  # same document, state may have moved
        received = b""
        with pytest.raises(httpx.RemoteProtocolError):
            for piece in answer.iter_raw():
                received += piece
    assert len(received) == 40
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        proxy.truncate(r"/executions/[A-Za-z0-9]+$", after_bytes=10, count=1)
        requests.get(proxy.url + path, auth=(sim.username, sim.password), timeout=5)
    assert client.get(path).json()["id"] == execution_id
    assert proxy.count("truncate") == 2


def test_truncated_event_stream(direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy) -> None:
    execution_id = start(direct)
    proxy.truncate(r"/follow$", after_bytes=25)
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("GET", f"{API}/executions/{execution_id}/follow") as answer,
    ):
        for piece in answer.iter_raw():
            received += piece
    assert len(received) == 25 and received.startswith(b"id: start\ndata: {")


def test_status_codes_for_a_count_and_for_a_while(client: httpx.Client, proxy: KestraFaultProxy) -> None:
    proxy.status(r"/configs$", 503, count=2)
    assert [client.get("/api/v1/configs").status_code for _ in range(3)] == [503, 503, 200]
    proxy.status(r"/configs$", 429, count=1, retry_after=2, body=b'{"message":"slow down"}')
    answer = client.get("/api/v1/configs")
    assert (answer.status_code, answer.headers["retry-after"], answer.json()) == (
        429,
        "2",
        {"message": "slow down"},
    )
    proxy.status(r"/configs$", 502, seconds=0.5)
    started = time.monotonic()
    codes = []
    while time.monotonic() - started < 1.0:
        codes.append(client.get("/api/v1/configs").status_code)
        time.sleep(0.05)
    assert codes[0] == 502 and codes[-1] == 200 and set(codes) == {502, 200}
    assert proxy.count("status") == 3 + codes.count(502)


def test_upstream_down_answers_502(sim: KestraSimulator, proxy: KestraFaultProxy) -> None:
    with KestraFaultProxy(f"http://127.0.0.1:{_closed_port()}") as orphan:
        answer = httpx.get(orphan.url + "/api/v1/configs")
        assert answer.status_code == 502
        assert orphan.upstream_errors == 1 and orphan.faults_injected == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------ event streams
def test_sse_inject_adds_ping_frames(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    execution_id = start(direct)
    rule = proxy.sse_inject(r"/follow$", b"data: ping\n\n")
    _, pieces = follow_raw(client, execution_id)
    frames = sse_frames(b"".join(pieces))
    real = [f for f in frames if "id" in f]
    pings = [f for f in frames if f == {"data": "ping"}]
    assert len(pings) == len(real) + 1 and frames[0] == {"data": "ping"}
    assert real[0]["id"] == "start" and real[-1]["id"] == "end"
    assert rule.fired == 1 and proxy.count("sse_inject") == 1
    # Plain JSON on the same path pattern is not an event stream: untouched, not counted.
    assert client.get(f"{API}/executions/{execution_id}").json()["id"] == execution_id


def test_sse_split_into_one_byte_chunks(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    execution_id = start(direct)
    proxy.sse_split(r"/follow$", chunk=1)
    _, pieces = follow_raw(client, execution_id)
    assert max(len(p) for p in pieces) <= 4  # httpx may merge a few one-byte chunks from one read
    assert len(pieces) > 200
    kinds = [f["id"] for f in sse_frames(b"".join(pieces))]
    assert kinds[0] == "start" and kinds[-1] == "end"


def test_sse_split_at_random_sizes(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    execution_id = start(direct)
    proxy.sse_split(r"/follow$", chunk=(1, 40), delay=0.001)
    _, pieces = follow_raw(client, execution_id)
    assert len({len(p) for p in pieces}) > 5
    assert [f["id"] for f in sse_frames(b"".join(pieces))][-1] == "end"


def test_sse_comments_only_never_sends_an_event(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    """The stream stays open (past the execution's end) with a comment every 0.3 s and no event."""
    execution_id = start(direct)
    proxy.sse_comments_only(r"/follow$", every=0.3)
    received = b""
    started = time.monotonic()
    with client.stream("GET", f"{API}/executions/{execution_id}/follow") as answer:
        for piece in answer.iter_raw():
            received += piece
            if time.monotonic() - started > 2.0:
                break
    assert received.count(b": keep-alive\n\n") >= 5
    assert b"data:" not in received and b"id:" not in received
    assert direct.get(f"{API}/executions/{execution_id}").json()["state"]["current"] == "SUCCESS"


# ----------------------------------------------------------------------------------- replica lag
@pytest.mark.parametrize("version", ["1.3", "2.0"])
def test_lag_404_after_create(version: str) -> None:
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator(kestra_version=version) as simulator, KestraFaultProxy(simulator.url) as proxy:
        auth = (simulator.username, simulator.password)
        with httpx.Client(base_url=proxy.url, auth=auth, timeout=10) as http:
            http.post(f"{API}/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"})
            unknown = http.get(f"{API}/executions/doesnotexist")
            proxy.lag_404(seconds=1.0)
            execution_id = start(http)
            path = f"{API}/executions/{execution_id}"
            lagging = http.get(path)
            assert lagging.status_code == 404
            assert lagging.headers["content-type"] == unknown.headers["content-type"]
            expected = json.loads(unknown.content.replace(b"doesnotexist", execution_id.encode()))
            assert lagging.json() == expected
            time.sleep(1.1)
            assert http.get(path).status_code == 200
            assert proxy.count("lag_404") == 1
            assert proxy.faults_injected[0].path == path


def test_search_lag_hides_young_executions(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    proxy.search_lag(seconds=1.0)
    execution_id = start(client, case="search_lag")
    params = {"filters[labels][EQUALS][case]": "search_lag"}
    young = client.get(f"{API}/executions/search", params=params).json()
    assert young == {"results": [], "total": 0}
    assert len(direct.get(f"{API}/executions/search", params=params).json()["results"]) == 1
    time.sleep(1.05)
    later = client.get(f"{API}/executions/search", params=params).json()
    assert [e["id"] for e in later["results"]] == [execution_id] and later["total"] == 1
    assert proxy.count("search_lag") == 1


def test_search_lag_for_executions_created_elsewhere(
    direct: httpx.Client, client: httpx.Client, proxy: KestraFaultProxy
) -> None:
    """Executions the proxy never saw created are aged by their own state history."""
    start(direct, case="elsewhere")
    proxy.search_lag(seconds=30)
    answer = client.get(f"{API}/executions/search", params={"filters[labels][EQUALS][case]": "elsewhere"})
    assert answer.json()["results"] == []


def test_connection_uri(sim: KestraSimulator, proxy: KestraFaultProxy) -> None:
    uri = proxy.connection_uri(sim.connection_uri())
    assert uri == sim.connection_uri().replace(f":{sim.port}", f":{proxy.port}")
    assert (
        proxy.connection_uri("kestra://127.0.0.1:1/?token=x") == f"kestra://127.0.0.1:{proxy.port}/?token=x"
    )
