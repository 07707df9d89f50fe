"""Lifecycle: context manager, connection URI, restart keeping state, CLI banner, pytest fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from kestra_sim_client import SimClient, flow_source, return_task, sleep_task, unique

from airflow_provider_kestra.testing.simulator import KestraSimulator


def test_context_manager_serves_and_stops() -> None:
    with KestraSimulator() as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        assert requests.get(sim.url + "/api/v1/configs").status_code == 200
        url = sim.url
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api/v1/configs", timeout=2)


def test_connection_uri_encodes_credentials_and_extras() -> None:
    sim = KestraSimulator(
        username="a@b.io", password="p:ss/w@rd", edition="EE", tokens=["tk"], tenants=["main", "acme"]
    )
    sim.port = 1234
    assert sim.connection_uri() == "kestra://a%40b.io:p%3Ass%2Fw%40rd@127.0.0.1:1234"
    assert sim.connection_uri(tenant="acme", token="tk") == "kestra://127.0.0.1:1234?tenant=acme&token=tk"
    assert (
        sim.connection_uri(api_version="2")
        == "kestra://a%40b.io:p%3Ass%2Fw%40rd@127.0.0.1:1234?api_version=2"
    )


def test_connection_uri_turns_any_other_keyword_into_an_encoded_extra() -> None:
    sim = KestraSimulator()
    sim.port = 1234
    uri = sim.connection_uri(
        api_version="2", timeout=5, ui_url="https://kestra.example.com/ui?x=1&y=a b", verify=False,
        labels={"team": "data"}, skipped=None,
    )  # fmt: skip
    base, _, query = uri.partition("?")
    assert base == "kestra://admin%40kestra.io:Kestra-Sim-Pass1@127.0.0.1:1234"
    assert query == (
        "api_version=2&timeout=5&ui_url=https%3A%2F%2Fkestra.example.com%2Fui%3Fx%3D1%26y%3Da%20b"
        "&verify=false&labels=%7B%22team%22%3A%22data%22%7D"
    )


def test_connection_uri_extras_read_back_by_airflow() -> None:
    connection_module = pytest.importorskip("airflow.models.connection")
    sim = KestraSimulator(edition="EE", tokens=["t0k3n"], tenants=["main", "acme"])
    sim.port = 1234
    uri = sim.connection_uri(tenant="acme", token="t0k3n", timeout=5, ui_url="https://k.example/ui?a=1&b=2")
    conn = connection_module.Connection(conn_id="kestra_default", uri=uri)
    assert conn.conn_type == "kestra"
    assert (conn.host, conn.port, conn.login, conn.password) == ("127.0.0.1", 1234, None, None)
    extras = dict(conn.extra_dejson)
    assert str(extras.pop("timeout")) == "5"  # Airflow 3 reads a number back as a number, 2.11 as text
    assert extras == {"tenant": "acme", "token": "t0k3n", "ui_url": "https://k.example/ui?a=1&b=2"}


def test_restart_keeps_flows_executions_logs_files_and_resumes_running_ones() -> None:
    with KestraSimulator() as sim:
        client = SimClient(sim)
        done_flow, slow_flow = unique(), unique()
        write = "  - id: w\n    type: io.kestra.plugin.core.storage.Write\n    content: kept\n"
        log = "  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: logged\n"
        client.deploy(flow_source(done_flow, write + log))
        client.deploy(flow_source(slow_flow, sleep_task(duration="PT0.5S") + return_task()))
        done = client.wait(client.run("company.team", done_flow)["id"])
        running_id = client.run("company.team", slow_flow)["id"]
        client.wait(running_id, ("RUNNING",))
        port = sim.port
        sim.restart(downtime=0.1)
        assert sim.port == port
        assert client.request("GET", f"/flows/company.team/{done_flow}").status_code == 200
        assert client.get(done["id"])["state"]["current"] == "SUCCESS"
        assert client.request("GET", f"/logs/{done['id']}").json()[0]["message"] == "logged"
        uri = done["taskRunList"][0]["outputs"]["uri"]
        assert (
            client.request("GET", f"/executions/{done['id']}/file", params={"path": uri}).content == b"kept"
        )
        assert client.wait(running_id)["state"]["current"] == "SUCCESS"


def test_restart_over_http_keeps_state() -> None:
    with KestraSimulator() as sim:
        client = SimClient(sim)
        flow_id = unique()
        client.deploy(flow_source(flow_id, return_task()))
        assert requests.post(sim.url + "/_simulator/restart?downtime=0.2").status_code == 202
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.request("GET", f"/flows/company.team/{flow_id}").status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        assert client.request("GET", f"/flows/company.team/{flow_id}").status_code == 200


def test_cli_prints_a_simulator_banner() -> None:
    script = Path(sys.executable).with_name("kestra-sim")
    process = subprocess.Popen(
        [str(script), "--port", "0", "--kestra-version", "2.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "SIMULATOR" in banner and "not a real Kestra" in banner and "http://127.0.0.1:" in banner
    assert banner.count("\n") == 1
    assert process.returncode == 0


def test_cli_refuses_tokens_without_ee() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kestra.testing.cli", "--port", "0", "--token", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Enterprise" in result.stderr


def test_pytest_plugin_provides_a_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_uses_fixture.py").write_text(
        textwrap.dedent(
            """
            import pytest, requests

            def test_default(kestra_simulator):
                assert requests.get(kestra_simulator.url + "/api/v1/configs").json()["version"] == "1.3.25"

            @pytest.mark.parametrize("kestra_simulator", [{"kestra_version": "2.0"}], indirect=True)
            def test_param(kestra_simulator):
                assert kestra_simulator.kestra_version == "2.0"
            """
        )
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "airflow_provider_kestra.testing.pytest_plugin",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert "2 passed" in result.stdout, result.stdout + result.stderr


def test_simulator_package_never_imports_airflow() -> None:
    code = (
        "import sys; from airflow_provider_kestra.testing import KestraSimulator\n"
        "with KestraSimulator() as sim: pass\n"
        "assert not [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')], 'imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
