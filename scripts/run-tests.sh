#!/usr/bin/env bash
# Set up the test environments and run the whole test suite: ruff, mypy, the documentation build and
# pytest (browser test included) on Airflow 3.3, then the Airflow 2.11 compatibility run. Needs Python
# 3.10+ and access to the package registries (PyPI; Debian's for Chromium, installed when missing and
# running as root).
#
#   bash scripts/run-tests.sh                 # both Airflow lines
#   AIRFLOW_LINES=3.3 bash scripts/run-tests.sh
#   bash scripts/run-tests.sh -k deploy       # extra arguments go to pytest (both lines)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
source scripts/lib/chromium.sh

lines="${AIRFLOW_LINES:-3.3 2.11}"
status=0
for line in $lines; do
    venv=$(ensure_venv "$line" test)
    echo "== Airflow $line: $("$venv/bin/python" -c 'import airflow; print(airflow.__version__)')"
    if [ "$line" = "3.3" ]; then
        echo "== ruff"
        "$venv/bin/ruff" check airflow_provider_kestra tests example_dags bench || status=1
        "$venv/bin/ruff" format --check airflow_provider_kestra tests example_dags bench || status=1
        echo "== mypy"
        "$venv/bin/mypy" || status=1
        echo "== docs (sphinx-build -W: warnings are errors)"
        docs_out=$(mktemp -d)
        "$venv/bin/sphinx-build" -W --keep-going -q -b html docs "$docs_out/html" || status=1
        rm -rf "$docs_out"
        echo "== chromium (for tests/browser)"
        ensure_chromium || echo "   no Chromium: the browser test will be skipped"
        echo "== pytest (Airflow $line)"
        "$venv/bin/python" -m pytest -p no:cacheprovider "$@" || status=1
    else
        # Airflow 2.11: everything except the Airflow-3-only end-to-end run, the browser test (Airflow
        # 3's UI) and the OpenAPI conformance suite (it tests the simulator, which does not depend on the
        # Airflow line).
        echo "== pytest (Airflow $line)"
        "$venv/bin/python" -m pytest -p no:cacheprovider -m "not e2e and not browser" --ignore=tests/conformance \
            "$@" || status=1
    fi
done
exit $status
