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
target=both
case "${1:-}" in
    --mock) target=mock ;;
    --real) target=real ;;
    "") ;;
    *) echo "usage: $0 [--mock|--real]" >&2; exit 2 ;;
esac
exec "$(dirname "$0")/browser_spec.sh" 300 tests/e2e/dashboard.spec.mjs --target "$target"
