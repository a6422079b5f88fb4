#!/usr/bin/env bash
# The contract check: every answer the e2e tests got, validated against api/openapi.yaml by a
# JSON Schema validator from npm (ajv + ajv-formats, draft 2020-12; yaml reads the spec),
# installed into build/npm on first use like test_openapi.sh's Redocly.
#
# tests/run_all.sh sets SEGLOSS_RESPONSE_LOG before the e2e tests, whose harness.py request()
# appends every answer to it, and runs this script after them. First the validator is tested
# on tests/e2e/contract_fixtures.jsonl (deliberately wrong answers it must refuse, for the
# reason given, and right ones it must accept); then every recorded answer must fit: its path,
# method and status listed, its Content-Type listed, its required headers there, its JSON body
# valid against the schema. Alone: SEGLOSS_RESPONSE_LOG=/tmp/a.jsonl tests/e2e/test_oip.py;
# SEGLOSS_RESPONSE_LOG=/tmp/a.jsonl tests/e2e/contract_check.sh. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
NPM_DIR=${SEGLOSS_NPM_DIR:-build/npm}
# pinned, as the registry reachable here may lack newer versions' dependencies
PACKAGES=(ajv@8.20.0 ajv-formats@3.0.1 yaml@2.9.1)
CHECK=tests/e2e/contract_check.cjs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "FAIL contract check: node and npm are needed (Debian: apt-get install nodejs npm)"
    echo "0 passed, 1 failed"
    exit 1
fi
for p in "${PACKAGES[@]}"; do
    name=${p%@*}
    want=${p##*@}
    have=$(node -p "require('./$NPM_DIR/node_modules/$name/package.json').version" 2>/dev/null)
    if [ "$have" != "$want" ]; then
        mkdir -p "$NPM_DIR"
        if ! timeout 600 npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error \
            "${PACKAGES[@]}" >"$tmp/npm.log" 2>&1; then
            echo "FAIL install ${PACKAGES[*]}: $(tail -n 5 "$tmp/npm.log")"
            echo "0 passed, 1 failed"
            exit 1
        fi
        break
    fi
done

# The validator refuses wrong answers (and accepts right ones).
node "$CHECK" "$NPM_DIR" api/openapi.yaml tests/e2e/contract_fixtures.jsonl --self >"$tmp/self"
self_rc=$?
log=${SEGLOSS_RESPONSE_LOG:-}
if [ -z "$log" ]; then
    cat "$tmp/self"
    echo "skip the recorded answers: SEGLOSS_RESPONSE_LOG is not set (tests/run_all.sh sets it)"
    exit $self_rc
fi
if [ ! -s "$log" ]; then
    grep -v ' passed, ' "$tmp/self"
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$tmp/self")
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$tmp/self")
    echo "FAIL no answers recorded in $log"
    echo "${p:-0} passed, $((${f:-1} + 1)) failed"
    exit 1
fi
node "$CHECK" "$NPM_DIR" api/openapi.yaml "$log" >"$tmp/all"
all_rc=$?
grep -v ' passed, ' "$tmp/self"
grep -v ' passed, ' "$tmp/all"
sum() { sed -n "s/^\([0-9]*\) passed, \([0-9]*\) failed$/\\$1/p" "$2"; }
p=$(( $(sum 1 "$tmp/self") + $(sum 1 "$tmp/all") ))
f=$(( $(sum 2 "$tmp/self") + $(sum 2 "$tmp/all") ))
echo "     $(wc -l <"$log") answers recorded in $log"
echo "$p passed, $f failed"
[ "$self_rc" -eq 0 ] && [ "$all_rc" -eq 0 ]
