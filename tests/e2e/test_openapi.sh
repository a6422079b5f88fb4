#!/usr/bin/env bash
# Keeps api/openapi.yaml true: lints it with Redocly CLI (installed from npm into build/npm on
# first use), then starts a real seglossd on a free loopback port and checks its real answers -
# 200 evaluations, /v1/info, the probes, /metrics and the problems 400, 404, 405, 408, 413, 415
# and 422 - against the schemas, headers and content types the spec gives them
# (tests/e2e/openapi_keys.py). Also: the spec's routes are the ones the daemon serves, its query
# parameters the keys the daemon takes, its defaults the ones /v1/info reports.
#
# Needs node and npm (Debian: nodejs npm) and the npm registry. The daemon runs under `timeout`
# and is killed on exit, so it always stops by itself. Prints one line per check and ends with
# "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
# Redocly CLI 1.x, pinned: the npm registry reachable here lacks a dependency of 1.34.21.
REDOCLY_VERSION=1.34.20
# One npm cache for every build flavour (make check-asan sets BUILD=build-asan).
NPM_DIR=${SEGLOSS_NPM_DIR:-build/npm}
REDOCLY=$NPM_DIR/node_modules/.bin/redocly
DAEMON_LIFETIME_S=180
GOLDEN=tests/golden/voc_palette_weighted
# Debian's python3 (only its standard library is used) starts faster than a pyenv shim.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
KEYS=(timeout 60 "$PY" tests/e2e/openapi_keys.py)
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

passed=0
failed=0
daemon_pid=
tmp=$(mktemp -d)
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
# verdict NAME COMMAND...: ok when COMMAND succeeds; its output is the reason when not.
verdict() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name${out#ok}"; else fail "$name" "$out"; fi
}

# ---- the lint ------------------------------------------------------------------------------
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    fail "redocly lint" "node and npm are needed (Debian: apt-get install nodejs npm)"
    finish
fi
if [ ! -x "$REDOCLY" ]; then
    mkdir -p "$NPM_DIR"
    if ! timeout 600 npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION" >"$tmp/npm.log" 2>&1; then
        fail "install @redocly/cli@$REDOCLY_VERSION" "$(tail -n 5 "$tmp/npm.log")"
        finish
    fi
fi
# NotFound is referenced by no operation (no listed path answers 404): one warning, on purpose.
if timeout 120 "$REDOCLY" lint api/openapi.yaml >"$tmp/lint.log" 2>&1; then
    warnings=$(grep -Eo '[0-9]+ warnings?' "$tmp/lint.log" || echo 'no warnings')
    ok "redocly lint api/openapi.yaml ($warnings)"
else
    fail "redocly lint api/openapi.yaml" "$(grep -v '^$' "$tmp/lint.log" | tail -n 30)"
fi
spec=$tmp/openapi.json
timeout 120 "$REDOCLY" bundle api/openapi.yaml --ext json -o "$spec" >"$tmp/bundle.log" 2>&1
if [ ! -s "$spec" ]; then
    fail "redocly bundle to JSON" "$(tail -n 5 "$tmp/bundle.log")"
    finish
fi
ok "redocly bundle to JSON"

# ---- a real daemon -------------------------------------------------------------------------
if [ ! -x "$BUILD/seglossd" ]; then
    fail "daemon" "$BUILD/seglossd is not built (make)"
    finish
fi
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
url=http://127.0.0.1:$port
# --max-body-mb 1 for the 413, --upload-timeout 1 for the 408: the golden request fits both.
timeout "$DAEMON_LIFETIME_S" "$BUILD/seglossd" serve --bind 127.0.0.1 --port "$port" \
    --threads 2 --workers 1 --max-body-mb 1 --upload-timeout 1 --idle-timeout 5 \
    --data-dir "$tmp/data" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$url/livez" && break
    sleep 0.1
done
if ! curl -s -o /dev/null --max-time 2 "$url/livez"; then
    fail "daemon starts" "$(tail -n 5 "$tmp/daemon.log")"
    finish
fi
ok "daemon answers on $url"

n=0
# expect NAME METHOD SPEC_PATH STATUS -- CURL_ARGS...: runs curl (with -X METHOD; a later -X
# wins) and checks the answer against the spec's response for METHOD SPEC_PATH STATUS. The
# body is left in $body.
expect() {
    local name=$1 method=$2 path=$3 status=$4
    shift 5
    n=$((n + 1))
    local headers=$tmp/h$n
    body=$tmp/b$n
    if ! curl -s -S --max-time 30 -D "$headers" -o "$body" -X "$method" "$@" \
        >"$tmp/curl$n.log" 2>&1 && [ ! -s "$headers" ]; then
        fail "$name" "no answer: $(cat "$tmp/curl$n.log")"
        return
    fi
    verdict "$name" "${KEYS[@]}" response "$spec" "$method" "$path" "$status" "$headers" "$body"
}

ev=$url/v1/evaluate
logits=(-F "logits=@$GOLDEN/logits.npy")
masks=(-F "mask=@$GOLDEN/mask_0.png" -F "mask=@$GOLDEN/mask_1.png")
params=(-F "params=@$GOLDEN/params.json;type=application/json")

expect "200 evaluate, params part, confusion matrix" POST /v1/evaluate 200 -- \
    "$ev?confusion_matrix=true" "${logits[@]}" "${masks[@]}" "${params[@]}"
verdict "the confusion matrix is there when asked for" "$PY" -c '
import json, sys
cm = json.load(open(sys.argv[1])).get("confusion_matrix")
sys.exit(0 if cm and len(cm) == 21 else f"confusion_matrix: {cm!r}")' "$body"
expect "200 evaluate, standard semantics from the query (null ratios allowed)" \
    POST /v1/evaluate 200 -- "$ev?semantics=standard&alpha=null&main_loss=focal&dice_loss=1" \
    "${logits[@]}" "${masks[@]}"
expect "422 one mask for a batch of two" POST /v1/evaluate 422 -- \
    "$ev" "${logits[@]}" -F "mask=@$GOLDEN/mask_0.png"
expect "400 a key both in the query and the params part" POST /v1/evaluate 400 -- \
    "$ev?gamma=2" "${logits[@]}" "${masks[@]}" "${params[@]}"
expect "400 unknown query parameter" POST /v1/evaluate 400 -- \
    "$ev?nonsense=1" "${logits[@]}" "${masks[@]}"
unknown_key_problem=$body
expect "415 not multipart" POST /v1/evaluate 415 -- \
    "$ev" -H 'Content-Type: application/json' --data-binary '{}'
printf '\377\330\377\340\000\020JFIF\000' >"$tmp/fake.jpg"
expect "415 a JPEG logits part" POST /v1/evaluate 415 -- \
    "$ev" -F "logits=@$tmp/fake.jpg" -F "mask=@$GOLDEN/mask_0.png"
head -c $((2 << 20)) /dev/zero >"$tmp/big.bin"
expect "413 Content-Length over --max-body-mb" POST /v1/evaluate 413 -- \
    "$ev" -H 'Content-Type: multipart/form-data; boundary=x' --data-binary "@$tmp/big.bin"
# Larger than MHD's connection buffer (256 KiB): a smaller body may be buffered whole before
# the daemon sees the request, and so before its upload clock starts.
head -c 400000 /dev/zero >"$tmp/slow.bin"
expect "408 upload slower than --upload-timeout" POST /v1/evaluate 408 -- \
    "$ev" -F "logits=@$tmp/slow.bin" --limit-rate 160k
expect "405 GET /v1/evaluate, with Allow" POST /v1/evaluate 405 -- "$ev" -X GET
expect "405 DELETE /livez, with Allow" GET /livez 405 -- "$url/livez" -X DELETE
n=$((n + 1))
curl -s --max-time 10 -D "$tmp/h$n" -o "$tmp/b$n" "$url/v2/evaluate"
verdict "404 a path the spec does not list" "${KEYS[@]}" unlisted "$spec" "$tmp/h$n" "$tmp/b$n"

expect "200 GET /v1/info" GET /v1/info 200 -- "$url/v1/info"
info=$body
expect "200 GET /livez" GET /livez 200 -- "$url/livez"
expect "200 GET /healthz" GET /healthz 200 -- "$url/healthz"
expect "200 GET /readyz" GET /readyz 200 -- "$url/readyz"
expect "200 GET /metrics" GET /metrics 200 -- "$url/metrics"
verdict "/metrics has segloss_build_info" grep -q '^segloss_build_info{' "$body"

# ---- the spec against what the daemon says of itself ---------------------------------------
verdict "spec routes = the routes /v1/info lists" "${KEYS[@]}" routes "$spec" "$info"
verdict "spec query parameters = the keys the daemon takes" \
    "${KEYS[@]}" query-params "$spec" "$unknown_key_problem"
verdict "spec defaults = the defaults /v1/info reports" "${KEYS[@]}" defaults "$spec" "$info"

verdict "the daemon still answers" curl -s -o /dev/null --max-time 5 "$url/livez"
finish
