#!/usr/bin/env bash
# Set up the test environments and run the whole test suite: ruff, mypy and pytest on Airflow 3.3,
# then the Airflow 2.11 compatibility run. Needs only Python 3.10+ and access to the package registry.
#
#   bash scripts/run-tests.sh                 # both Airflow lines
#   AIRFLOW_LINES=3.3 bash scripts/run-tests.sh
#   bash scripts/run-tests.sh -k deploy       # extra arguments go to pytest (both lines)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh

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
        echo "== pytest (Airflow $line)"
        "$venv/bin/python" -m pytest -p no:cacheprovider "$@" || status=1
    else
        # Airflow 2.11: everything except the Airflow-3-only end-to-end run and the OpenAPI conformance
        # suite (it tests the simulator, which does not depend on the Airflow line).
        echo "== pytest (Airflow $line)"
        "$venv/bin/python" -m pytest -p no:cacheprovider -m "not e2e" --ignore=tests/conformance "$@" || status=1
    fi
done
exit $status
