"""The provider as a person sees it in Airflow 3's web UI, driven in headless Chromium with Playwright.

One module-wide setup (about a minute): a throw-away AIRFLOW_HOME with a migrated SQLite DB, a Kestra
simulator, a one-DAG folder run once with ``airflow dags test`` (so a finished task instance with its
Kestra execution exists), and ``airflow api-server`` on a free loopback port with the simple auth manager
letting everyone in as admin. Then:

- the connection form (Admin > Connections > Add, type Kestra) shows the labels, help texts and
  placeholders the provider declares in ``get_provider_info()``, hides *Schema*, and still shows Airflow
  3's *Extra Fields JSON* box (which a provider cannot hide);
- a connection saved from the form passes the list's *Test* button (the provider's test_connection);
- the finished task instance shows the "Kestra execution" extra link, pointing at the execution's URL;
- the Providers page links the package's ``Documentation`` URL (``[project.urls]`` in pyproject.toml).

Screenshots go to ``$KESTRA_BROWSER_SCREENSHOTS`` or a new temporary folder, printed at the start. The
browser is Debian's ``/usr/bin/chromium`` (``$KESTRA_BROWSER_CHROMIUM`` to use another); nothing is ever
downloaded. ``scripts/run-tests.sh`` installs Chromium when it is missing and it runs as root.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.airflow_stack import AirflowProcessGroup, free_loopback_port

from airflow_provider_kestra.get_provider_info import get_provider_info
from airflow_provider_kestra.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Locator, Page

    from airflow_provider_kestra.testing import KestraSimulator

CHROMIUM = os.environ.get("KESTRA_BROWSER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="drives Airflow 3's React UI (api-server)"),
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium; "
        "scripts/run-tests.sh does it when run as root) or set KESTRA_BROWSER_CHROMIUM",
    ),
]

DAG_ID = "kestra_browser_ui"
NAMESPACE = "airflow.browser"
FLOW_ID = "hello"
DAG_FILE = f'''
from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_kestra.operators.kestra import KestraDeployFlowOperator, KestraTriggerExecutionOperator

FLOW = """
id: {FLOW_ID}
namespace: {NAMESPACE}
tasks:
  - id: say_hello
    type: io.kestra.plugin.core.log.Log
    message: Hello from the browser test
"""

with DAG({DAG_ID!r}, schedule=None, start_date=datetime.datetime(2025, 1, 1), catchup=False):
    deploy = KestraDeployFlowOperator(task_id="deploy", source=FLOW)
    run = KestraTriggerExecutionOperator(
        task_id="run", namespace={NAMESPACE!r}, flow_id={FLOW_ID!r}, poll_interval=0.5
    )
    deploy >> run
'''
# The connection form as the provider declares it: the test follows the declaration, whatever it says.
KESTRA_CONNECTION = get_provider_info()["connection-types"][0]
UI_BEHAVIOUR: dict[str, Any] = KESTRA_CONNECTION.get("ui-field-behaviour", {})
CONN_FIELDS: dict[str, dict[str, Any]] = KESTRA_CONNECTION.get("conn-fields", {})
STANDARD_LABELS = {
    "host": "Host",
    "schema": "Schema",
    "login": "Login",
    "password": "Password",
    "port": "Port",
}


class AirflowUi(AirflowProcessGroup):
    """A migrated AIRFLOW_HOME with one finished DAG run, and its api-server (started by :meth:`start`)."""

    PROCESSES = ("api-server",)

    def __init__(self, home: Path, simulator: KestraSimulator) -> None:
        super().__init__(home)
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = home / "airflow.db"
        (home / "dags").mkdir(parents=True, exist_ok=True)
        (home / "dags" / f"{DAG_ID}.py").write_text(DAG_FILE)
        # The test session's own AIRFLOW_* settings (unit-test mode, its DB) must not leak in.
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW_CONN_KESTRA_DEFAULT": simulator.connection_uri(),
                "PYTHONUNBUFFERED": "1",
            }
        )

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def start(self, timeout: float = 90.0) -> None:
        self._start("api-server", "api-server", "--port", str(self.port))
        self.wait_for_api_server(self.port, timeout)


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(os.environ.get("KESTRA_BROWSER_SCREENSHOTS") or tempfile.mkdtemp(prefix="kestra-browser-"))
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(f"\nbrowser test screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowUi, KestraSimulator]]:
    """Airflow 3's api-server over a DB holding one successful run of the DAG against the simulator."""
    from airflow_provider_kestra.testing import KestraSimulator

    with KestraSimulator() as simulator:
        ui = AirflowUi(tmp_path_factory.mktemp("airflow-ui-home"), simulator)
        ui.airflow("db", "migrate", timeout=180)
        ui.airflow("dags", "test", DAG_ID, timeout=180)
        try:
            ui.start()
            yield ui, simulator
        finally:
            ui.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install '.[browser]' (playwright)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _section(dialog: Locator, name: str) -> None:
    """Open one accordion section of the connection form (opening one closes the others)."""
    dialog.get_by_role("button", name=name, exact=True).click()


def test_kestra_connection_form(airflow_ui: tuple[AirflowUi, KestraSimulator], page: Page, screenshots: Path):
    ui, _ = airflow_ui
    page.goto(f"{ui.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox", name="Connection Type").fill(str(KESTRA_CONNECTION["hook-name"]))
    page.keyboard.press("Enter")

    # Standard fields: relabelled, with placeholders; hidden ones absent.
    dialog.get_by_role("button", name="Standard Fields", exact=True).wait_for()
    relabeling: dict[str, str] = UI_BEHAVIOUR.get("relabeling", {})
    hidden: list[str] = UI_BEHAVIOUR.get("hidden-fields", [])
    placeholders: dict[str, str] = UI_BEHAVIOUR.get("placeholders", {})
    for field, default_label in STANDARD_LABELS.items():
        label = relabeling.get(field, default_label)
        if field in hidden:
            assert dialog.get_by_label(label, exact=True).count() == 0, f"{field} should be hidden"
            continue
        box = dialog.get_by_label(label, exact=True)
        assert box.is_visible(), f"standard field {field} labelled {label!r} not shown"
        if field in placeholders:
            assert box.get_attribute("placeholder") == placeholders[field]
    assert dialog.get_by_label("Kestra URL", exact=True).is_visible()
    page.screenshot(path=str(screenshots / "connection-form-standard.png"), full_page=True)

    # Extra fields: every conn-field with its label and help text.
    _section(dialog, "Extra Fields")
    for name, field in CONN_FIELDS.items():
        label_element = dialog.get_by_text(field["label"], exact=True)
        label_element.wait_for()
        assert label_element.is_visible(), f"extra field {name} labelled {field['label']!r} not shown"
        if field.get("description"):
            assert dialog.get_by_text(field["description"], exact=True).is_visible(), name
    assert dialog.get_by_text("Tenant", exact=True).is_visible()
    assert dialog.get_by_text(re.compile(r"^API token")).first.is_visible()
    page.screenshot(path=str(screenshots / "connection-form-extra-fields.png"), full_page=True)

    # Airflow 3 always shows the raw Extra JSON box; ui-field-behaviour's hidden "extra" does not hide it.
    _section(dialog, "Extra Fields JSON")
    dialog.locator(".monaco-editor").wait_for()
    page.wait_for_timeout(500)  # let the accordion finish opening before the screenshot
    page.screenshot(path=str(screenshots / "connection-form-extra-json.png"), full_page=True)


def test_kestra_execution_extra_link(
    airflow_ui: tuple[AirflowUi, KestraSimulator], page: Page, screenshots: Path
):
    ui, simulator = airflow_ui
    [(run_id,)] = ui.query("SELECT run_id FROM dag_run WHERE dag_id = ?", DAG_ID)
    [(state,)] = ui.query(
        "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'run'", DAG_ID, run_id
    )
    assert state == "success"
    [(url_json,)] = ui.query(
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
        DAG_ID,
        run_id,
        "run",
        "execution_url",
    )
    execution_url = url_json.strip('"')
    assert execution_url.startswith(f"{simulator.url}/ui/main/executions/{NAMESPACE}/{FLOW_ID}/")

    # The extra links are on the task instance's Details tab.
    run_path = urllib.parse.quote(run_id, safe="")
    page.goto(f"{ui.url}/dags/{DAG_ID}/runs/{run_path}/tasks/run/details")
    link = page.get_by_role("link", name="Kestra execution", exact=True)
    link.wait_for()
    page.screenshot(path=str(screenshots / "task-instance-extra-link.png"), full_page=True)
    assert link.get_attribute("href") == execution_url
    assert link.get_attribute("target") == "_blank"


def test_kestra_connection_saved_and_tested(
    airflow_ui: tuple[AirflowUi, KestraSimulator], page: Page, screenshots: Path
):
    """Fill the form, save, and press the list's *Test* button: the provider's test_connection answers.

    *Port* is filled: Airflow 3.3.2 answers "Bad Request" to *Test* for a connection saved without one
    (docs/connection.md, "Testing the connection").
    """
    ui, simulator = airflow_ui
    relabeling: dict[str, str] = UI_BEHAVIOUR.get("relabeling", {})
    page.goto(f"{ui.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill("kestra_ui_test")
    dialog.get_by_role("combobox", name="Connection Type").fill(str(KESTRA_CONNECTION["hook-name"]))
    page.keyboard.press("Enter")
    dialog.get_by_label(relabeling.get("host", "Host"), exact=True).fill(simulator.url)
    dialog.get_by_label(relabeling.get("login", "Login"), exact=True).fill(simulator.username)
    dialog.get_by_label(relabeling.get("password", "Password"), exact=True).fill(simulator.password)
    dialog.get_by_label(relabeling.get("port", "Port"), exact=True).fill(str(simulator.port))
    dialog.get_by_role("button", name="Save").click()

    row = page.get_by_role("row").filter(has_text="kestra_ui_test")
    row.get_by_role("button", name="Test Connection").click()
    message = page.get_by_text(re.compile(r"Connected to Kestra \S+ OSS"))
    message.wait_for()
    page.screenshot(path=str(screenshots / "connection-test.png"), full_page=True)


def test_providers_page_links_the_documentation(
    airflow_ui: tuple[AirflowUi, KestraSimulator], page: Page, screenshots: Path
):
    """Airflow 3.3 takes a provider's documentation link from the package's ``Documentation`` URL."""
    from importlib.metadata import metadata

    urls = dict(entry.split(", ", 1) for entry in metadata("airflow-provider-kestra").get_all("Project-URL"))
    ui, _ = airflow_ui
    page.goto(f"{ui.url}/providers")
    link = page.get_by_role("link", name=get_provider_info()["package-name"], exact=True)
    link.wait_for()
    page.screenshot(path=str(screenshots / "providers.png"), full_page=True)
    assert link.get_attribute("href") == urls["Documentation"]
