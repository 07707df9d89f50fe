# Shared by scripts/*.sh: create (once) and print the path of a virtualenv for one Airflow line.
#   ensure_venv 3.3 test    -> .venv/af33 with the provider, Airflow 3.3, the test tools, Sphinx (docs
#                              extra) and Playwright (browser extra; it drives the system's Chromium)
#   ensure_venv 2.11 test   -> .venv/af211 with the provider, Airflow 2.11 and the test tools
#   ensure_venv 3.3 demo    -> the same venv, simulator extra only
# uv is installed inside the venv (from the package registry) because it resolves Airflow's ~150
# dependencies in seconds where pip takes minutes.

ensure_venv() {
    local line="$1" purpose="$2"
    local name="af${line//./}"
    local venv=".venv/$name"
    local python="${PYTHON:-python3}"
    local spec
    case "$line" in
        3.3) spec="apache-airflow==3.3.*" ;;
        2.11) spec="apache-airflow==2.11.*" ;;
        *) echo "unknown Airflow line: $line" >&2; return 1 ;;
    esac
    local extras="simulator"
    if [ "$purpose" = "test" ]; then
        # The docs build and the browser test run on the Airflow 3.3 line only.
        if [ "$line" = "3.3" ]; then extras="simulator,test,docs,browser"; else extras="simulator,test"; fi
    fi
    local stamp="$venv/.installed-$extras-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ]; then
        echo "== setting up $venv ($spec, extras: $extras)" >&2
        [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >&2
        "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >&2
        "$venv/bin/uv" pip install -q --python "$venv/bin/python" "$spec" -e ".[$extras]" >&2
        touch "$stamp"
    fi
    echo "$venv"
}
