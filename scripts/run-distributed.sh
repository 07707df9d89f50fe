#!/usr/bin/env bash
# The distributed end-to-end run (tests/distributed): Airflow 3.3 with CeleryExecutor, Redis, PostgreSQL,
# two Celery workers, two triggerers, a scheduler, a dag-processor and an api-server, driving a fan-out of
# ~50 deferrable Kestra tasks plus 3 sync ones against the Kestra simulator; then the same run with a
# triggerer and a worker SIGKILLed mid-run. Too slow for CI (minutes of CPU): a documented command.
#
#   bash scripts/run-distributed.sh                 # set up what is missing, run, print timings
#   bash scripts/run-distributed.sh -k killed       # extra arguments go to pytest
#   KESTRA_DISTRIBUTED_FAN_OUT=20 bash scripts/run-distributed.sh   # a smaller fan-out
#
# Needs Python 3.10+, access to the package registry, and PostgreSQL and Redis binaries: when missing
# they are installed with apt-get (Debian/Ubuntu, as root). No service is started system-wide: the
# harness runs a private PostgreSQL cluster and redis-server on free loopback ports and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

began=$(date +%s)
step() { echo "==> [$(( $(date +%s) - began ))s] $*"; }

# -- system packages -------------------------------------------------------------------------------------
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} (apt-get)"
    if [ "$(id -u)" != 0 ]; then
        echo "run as root, or install them first: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# -- the Celery virtualenv -------------------------------------------------------------------------------
venv=.venv/af33-celery
stamp="$venv/.installed-$(cksum < pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
    step "setting up $venv (apache-airflow[celery,postgres]==3.3.*, this provider with simulator,test)"
    [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check uv
    "$venv/bin/uv" pip install -q --python "$venv/bin/python" \
        "apache-airflow[celery,postgres]==3.3.*" -e ".[simulator,test]"
    touch "$stamp"
fi
step "Airflow $("$venv/bin/python" -c 'import airflow; print(airflow.__version__)'), celery provider $(
    "$venv/bin/python" -c 'from importlib.metadata import version; print(version("apache-airflow-providers-celery"))')"

# -- the run ---------------------------------------------------------------------------------------------
step "pytest tests/distributed (stack start-up, run 1: fan-out, run 2: kills)"
status=0
KESTRA_DISTRIBUTED=1 "$venv/bin/python" -m pytest -p no:cacheprovider tests/distributed -m distributed \
    -s -v --durations=0 "$@" || status=$?
step "done (exit $status)"
exit $status
