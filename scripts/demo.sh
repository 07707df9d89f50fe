#!/usr/bin/env bash
# The main job in one command: run example DAG 1 (deploy a Kestra flow, run it with inputs, use its outputs)
# with `airflow dags test`, against the Kestra API simulator or against your own Kestra.
#
#   bash scripts/demo.sh                                   # starts the simulator (Kestra 1.3 profile)
#   KESTRA_SIM_VERSION=2.0 bash scripts/demo.sh            # simulator profile: 0.22, 1.3 or 2.0
#   KESTRA_URL=https://kestra.example.com KESTRA_USERNAME=me@example.com KESTRA_PASSWORD=... \
#       bash scripts/demo.sh                               # a real Kestra (or KESTRA_TOKEN=..., KESTRA_TENANT=...)
#   AIRFLOW_CONN_KESTRA_DEFAULT='kestra://...' bash scripts/demo.sh
#
# Needs Python 3.10+ (set PYTHON to choose the interpreter) and access to the package registry on the first
# run. Airflow runs in a throw-away AIRFLOW_HOME with SQLite; the simulator it starts is stopped on exit.
# Exits non-zero when anything fails.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/lib/venv.sh

dag_id="example_kestra_quickstart"
trigger_task="greet"
sim_version="${KESTRA_SIM_VERSION:-1.3}"

if [ -t 1 ]; then bold=$'\033[1m'; red=$'\033[31m'; reset=$'\033[0m'; else bold=""; red=""; reset=""; fi
step() { printf '\n%s==> [%ss] %s%s\n' "$bold" "$SECONDS" "$*" "$reset"; }
fail() { printf '%sdemo failed: %s%s\n' "$red" "$*" "$reset" >&2; exit 1; }
# Airflow 3 log line "2026-01-01T00:00:00.0Z [info     ] message [logger] loc=file.py:1" -> "  message".
strip_log_prefix='s/^[0-9][0-9T:.+-]*Z? \[[a-z ]+\] (.*)$/  \1/; s/ \[[A-Za-z0-9_.]+\]( [a-z_]+=[^ ]*)*$//'

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || fail "$python not found; install Python 3.10+ or set PYTHON"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || fail "Python 3.10+ is needed, $python is $("$python" -V 2>&1)"

work="$(mktemp -d "${TMPDIR:-/tmp}/kestra-demo.XXXXXX")"
sim_pid=""
cleanup() {
    local status=$?
    if [ -n "$sim_pid" ]; then
        kill "$sim_pid" 2>/dev/null || true
        wait "$sim_pid" 2>/dev/null || true
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$work"
    else
        printf 'Logs kept in %s\n' "$work" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Environment (.venv/af33: Airflow 3.3 + this provider; created on the first run)"
venv="$repo/$(ensure_venv 3.3 demo)"
echo "Airflow $("$venv/bin/python" -c 'from importlib.metadata import version; print(version("apache-airflow"))') in $venv"

export AIRFLOW_HOME="$work/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$repo/example_dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
mkdir -p "$AIRFLOW_HOME"

if [ -n "${AIRFLOW_CONN_KESTRA_DEFAULT:-}" ]; then
    step "Kestra: using the connection in AIRFLOW_CONN_KESTRA_DEFAULT"
elif [ -n "${KESTRA_URL:-}" ]; then
    step "Kestra: using $KESTRA_URL"
    AIRFLOW_CONN_KESTRA_DEFAULT="$("$venv/bin/python" - <<'EOF'
import json, os
extra = {k: os.environ[v] for k, v in (("token", "KESTRA_TOKEN"), ("tenant", "KESTRA_TENANT")) if os.environ.get(v)}
conn = {"conn_type": "kestra", "host": os.environ["KESTRA_URL"], "extra": extra}
conn.update({k: os.environ[v] for k, v in (("login", "KESTRA_USERNAME"), ("password", "KESTRA_PASSWORD")) if os.environ.get(v)})
print(json.dumps(conn))
EOF
)"
    export AIRFLOW_CONN_KESTRA_DEFAULT
else
    step "Kestra: starting the Kestra API simulator (profile $sim_version; a stand-in, not Kestra)"
    port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$venv/bin/kestra-sim" --port "$port" --kestra-version "$sim_version" >"$work/kestra-sim.log" 2>&1 &
    sim_pid=$!
    # Any HTTP answer, even a 401 (the 2.0 profile protects /api/v1/configs), means it is listening.
    "$venv/bin/python" - "http://127.0.0.1:$port/api/v1/configs" "$sim_pid" <<'EOF' \
        || { cat "$work/kestra-sim.log" >&2; fail "the simulator did not start"; }
import os, sys, time, urllib.error, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(1)
        time.sleep(0.2)
sys.exit(1)
EOF
    head -n 1 "$work/kestra-sim.log"
    # The simulator's own connection URI (its default credentials, this port); nothing is started here.
    AIRFLOW_CONN_KESTRA_DEFAULT="$("$venv/bin/python" -c '
import sys
from airflow_provider_kestra.testing import KestraSimulator
print(KestraSimulator(port=int(sys.argv[1]), kestra_version=sys.argv[2]).connection_uri())
' "$port" "$sim_version")"
    export AIRFLOW_CONN_KESTRA_DEFAULT
fi

step "Airflow: creating the metadata database (SQLite, in $AIRFLOW_HOME)"
"$venv/bin/airflow" db migrate >"$work/db-migrate.log" 2>&1 \
    || { tail -n 40 "$work/db-migrate.log" >&2; fail "airflow db migrate"; }

step "Running: airflow dags test $dag_id (full log: $work/dags-test.log)"
# Show task starts/ends, the flows deployed, the Kestra execution, the Kestra log lines the operator copies
# into the task log, and errors; without Airflow's timestamps and logger names.
progress='\[DAG TEST\] (starting|end) task|Flow [^ ]+: |[Kk]estra execution|\[kestra:|ERROR|Error|Traceback|DagRun Finished'
set +e
"$venv/bin/airflow" dags test "$dag_id" 2>&1 | tee "$work/dags-test.log" \
    | grep --line-buffered -E "$progress" | sed -u -E "$strip_log_prefix" | cut -c1-200
test_status=${PIPESTATUS[0]}
set -e
if [ "$test_status" -ne 0 ]; then
    tail -n 60 "$work/dags-test.log" >&2
    reason="$(grep -E '^[A-Za-z_.]+(Error|Exception|Timeout): ' "$work/dags-test.log" | tail -n 1 || true)"
    fail "airflow dags test $dag_id exited with $test_status${reason:+
  $reason}"
fi

step "Result"
"$venv/bin/python" - "$AIRFLOW_HOME/airflow.db" "$dag_id" "$trigger_task" <<'EOF'
import json, sqlite3, sys
db, dag_id, task_id = sys.argv[1:]
conn = sqlite3.connect(db)
run_id, state = conn.execute(
    "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
).fetchone()
xcoms = {
    key: json.loads(value)
    for key, value in conn.execute(
        "SELECT key, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ?", (dag_id, run_id, task_id)
    )
}
print(f"Airflow DAG run:        {dag_id} / {run_id}: {state}")
print(f"Kestra execution:       {xcoms.get('execution_id')}")
print(f"Kestra execution URL:   {xcoms.get('execution_url')}")
print(f"Kestra final state:     {xcoms.get('execution_state')}")
print(f"Kestra flow outputs:    {json.dumps(xcoms.get('return_value'), sort_keys=True)}")
missing = [k for k in ("execution_id", "execution_url", "execution_state", "return_value") if k not in xcoms]
if state != "success" or missing or xcoms["execution_state"] != "SUCCESS":
    sys.exit(f"unexpected result: run state {state}, missing XComs {missing}")
EOF

if [ -n "$sim_pid" ]; then
    echo "(The simulator has no web UI: on a real Kestra the URL above opens the execution's page.)"
fi
echo "Kestra log lines in the Airflow task log:"
grep -E '\[kestra:' "$work/dags-test.log" | sed -E "$strip_log_prefix" | sed 's/^/  /' \
    || fail "no Kestra log line in the Airflow task log"

step "Done: the example DAG ran to success"
