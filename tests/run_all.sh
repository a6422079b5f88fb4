#!/usr/bin/env bash
# Runs every test program and script, then prints one summary line "N passed, N failed".
# Each program or script prints its own "N passed, N failed" last; their counts are summed.
# A program that crashes or prints no summary counts as one failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
# Every answer the e2e tests get (tests/e2e/harness.py) is recorded here, and validated against
# api/openapi.yaml by tests/e2e/contract_check.sh once they have all run.
mkdir -p "$BUILD"
case $BUILD in
    /*) SEGLOSS_RESPONSE_LOG=$BUILD/e2e-answers.jsonl ;;
    *) SEGLOSS_RESPONSE_LOG=$PWD/$BUILD/e2e-answers.jsonl ;;
esac
export SEGLOSS_RESPONSE_LOG
: >"$SEGLOSS_RESPONSE_LOG"
total_pass=0; total_fail=0; broken=()
run_one() {
    local name=$1; shift
    local out rc line
    echo "== $name"
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^ok ' | tail -n 40
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        total_fail=$((total_fail + 1)); broken+=("$name (exit $rc, no summary)")
        return
    fi
    local p f
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        total_fail=$((total_fail + 1)); broken+=("$name (exit $rc)")
    fi
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
for t in "$BUILD"/tests/replay_*; do
    [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
for t in tests/checks/test_*.py tests/e2e/test_*.sh tests/e2e/test_*.py; do
    [ -f "$t" ] && run_one "$(basename "$t")" "$t"
done
run_one contract_check.sh tests/e2e/contract_check.sh
for b in "${broken[@]+"${broken[@]}"}"; do echo "BROKEN $b"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
