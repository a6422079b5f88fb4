#!/usr/bin/env bash
# Browser test of the dashboard's views (issue 15) in headless Chromium, driven by
# playwright-core, against a real seglossd seeded with several runs, then the first-render
# timing at 10 000 points a run on the node mock: see dashboard_views.mjs for what it checks.
#
#   tests/e2e/test_dashboard_views.sh [--scale-steps N]
#
# Needs Debian's chromium, node and npm (scripts/install-deps.sh); installs playwright-core into
# build/npm on first use, as test_dashboard.sh does. Screenshots go to tests/artifacts/. Every
# process started here stops by itself (the spec kills its daemon, mock and browser; a timeout
# bounds the run; the trap kills what the spec recorded). Prints "N passed, N failed" last.
set -u
cd "$(dirname "$0")/../.."
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

pids=$(mktemp /tmp/segloss_views_pids.XXXXXX)
export DASH_PIDS=$pids
spec_pid=
stop_all() {
    [ -n "$spec_pid" ] && kill "$spec_pid" 2>/dev/null
    while read -r p; do kill -9 "$p" 2>/dev/null; done < "$pids"
    rm -f "$pids"
}
trap stop_all EXIT
trap 'exit 1' INT TERM

timeout -k 10 330 node tests/e2e/dashboard_views.mjs --build "$BUILD" "$@" &
spec_pid=$!
wait "$spec_pid"
rc=$?
spec_pid=
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL the browser test timed out"
    echo "0 passed, 1 failed"
fi
exit "$rc"
