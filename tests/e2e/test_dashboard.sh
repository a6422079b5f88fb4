#!/usr/bin/env bash
# Browser test of the dashboard (GET /, server/dashboard/) in headless Chromium, driven by
# playwright-core: see dashboard.spec.mjs for what it checks.
#
#   tests/e2e/test_dashboard.sh          the real seglossd ($BUILD/seglossd; the mock instead,
#                                        with a SKIP line, while it lacks the runs API), then a
#                                        seeded mock
#   tests/e2e/test_dashboard.sh --mock   only the node mock of the API (dashboard_mock.mjs)
#   tests/e2e/test_dashboard.sh --real   only the real seglossd; fails without the runs API
#
# Needs Debian's chromium, node and npm (scripts/install-deps.sh); installs playwright-core into
# build/npm on first use. Screenshots go to tests/artifacts/. Everything started here stops by
# itself: the spec kills its daemons and browser, a timeout bounds the run, and the trap kills
# whatever the spec recorded if it was killed. Prints "N passed, N failed" last.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
NPM_PREFIX=${NPM_PREFIX:-$PWD/build/npm}
export BUILD NPM_PREFIX
target=both
case "${1:-}" in
    --mock) target=mock ;;
    --real) target=real ;;
    "") ;;
    *) echo "usage: $0 [--mock|--real]" >&2; exit 2 ;;
esac

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

pids=$(mktemp /tmp/segloss_dash_pids.XXXXXX)
export DASH_PIDS=$pids
spec_pid=
stop_all() {
    [ -n "$spec_pid" ] && kill "$spec_pid" 2>/dev/null
    while read -r p; do kill -9 "$p" 2>/dev/null; done < "$pids"
    rm -f "$pids"
}
trap stop_all EXIT
trap 'exit 1' INT TERM

timeout -k 10 300 node tests/e2e/dashboard.spec.mjs --target "$target" --build "$BUILD" &
spec_pid=$!
wait "$spec_pid"
rc=$?
spec_pid=
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL the browser test timed out"
    echo "0 passed, 1 failed"
fi
exit "$rc"
