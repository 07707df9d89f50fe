# Shared by scripts/*.sh: make sure Debian's Chromium is at /usr/bin/chromium for tests/browser.
#   ensure_chromium   -> 0 when it is there (installed now if missing and running as root), 1 otherwise
# Playwright drives this system browser; no browser build is ever downloaded.

ensure_chromium() {
    local chromium="${KESTRA_BROWSER_CHROMIUM:-/usr/bin/chromium}"
    [ -x "$chromium" ] && return 0
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "   $chromium is missing; install it with: sudo apt-get install chromium" >&2
        return 1
    fi
    echo "   installing Debian's chromium (apt-get)" >&2
    local started=$SECONDS log
    log=$(mktemp)
    if apt-get update -q >"$log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$log" 2>&1; then
        echo "   chromium installed in $((SECONDS - started))s" >&2
    else
        tail -n 20 "$log" >&2
    fi
    rm -f "$log"
    [ -x "$chromium" ]
}
