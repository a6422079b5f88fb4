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
exec "$(dirname "$0")/browser_spec.sh" 330 tests/e2e/dashboard_views.mjs "$@"
