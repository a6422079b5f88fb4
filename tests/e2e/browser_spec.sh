#!/usr/bin/env bash
# Runs one playwright-core spec in headless Chromium for the dashboard's browser tests
# (test_dashboard.sh, test_dashboard_views.sh), which differ only in the spec and its time limit:
#
#   tests/e2e/browser_spec.sh SECONDS SPEC.mjs [spec arguments...]
#
# Needs Debian's chromium, node and npm (scripts/install-deps.sh); installs playwright-core into
# $NPM_PREFIX (build/npm) on first use. Everything the spec starts stops by itself: the spec
# kills its daemons, mocks and browser and records their pids in $DASH_PIDS, a timeout bounds
# the run, and the trap kills what the spec recorded if it was killed. Prints "N passed,
# N failed" last (the spec's own, or one failure when it could not run or timed out).
set -u
cd "$(dirname "$0")/../.."
limit=$1 spec=$2
shift 2
BUILD=${BUILD:-build}
NPM_PREFIX=${NPM_PREFIX:-$PWD/build/npm}
export BUILD NPM_PREFIX

fail() { echo "FAIL $1"; echo "0 passed, 1 failed"; exit 1; }
command -v node >/dev/null || fail "node missing: run scripts/install-deps.sh"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium missing: run scripts/install-deps.sh"
if [ ! -f "$NPM_PREFIX/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null || fail "npm missing: run scripts/install-deps.sh"
    echo "# installing playwright-core into $NPM_PREFIX"
    mkdir -p "$NPM_PREFIX"
    timeout 300 npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error \
        playwright-core >/dev/null || fail "npm install --prefix $NPM_PREFIX playwright-core failed"
fi

pids=$(mktemp /tmp/segloss_browser_pids.XXXXXX)
export DASH_PIDS=$pids
spec_pid=
stop_all() {
    [ -n "$spec_pid" ] && kill "$spec_pid" 2>/dev/null
    while read -r p; do kill -9 "$p" 2>/dev/null; done < "$pids"
    rm -f "$pids"
}
trap stop_all EXIT
trap 'exit 1' INT TERM

timeout -k 10 "$limit" node "$spec" --build "$BUILD" "$@" &
spec_pid=$!
wait "$spec_pid"
rc=$?
spec_pid=
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL the browser test timed out"
    echo "0 passed, 1 failed"
fi
exit "$rc"
