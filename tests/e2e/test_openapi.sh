#!/usr/bin/env bash
# Keeps api/openapi.yaml true: lints it with Redocly CLI (installed from npm into
# $BUILD/npm on first use), then starts a real seglossd on a free loopback port and checks its
# real answers - a 200 evaluation, /v1/info, the probes, /metrics and problems 400, 404, 405,
# 408, 413, 415 and 422 - against the schemas, headers and content types the spec gives them
# (tests/e2e/openapi_keys.py). Also: the spec's routes are the ones the daemon serves, its query
# parameters the ones the daemon takes, its defaults the ones /v1/info reports.
#
# The daemon runs under `timeout` and is killed on exit, so it always stops by itself.
# Prints one line per check and ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
# Redocly CLI 1.x, pinned: the npm registry reachable here lacks a dependency of 1.34.21.
REDOCLY_VERSION=1.34.20
NPM_DIR=$BUILD/npm
REDOCLY=$NPM_DIR/node_modules/.bin/redocly
DAEMON_LIFETIME_S=180
GOLDEN=tests/golden/voc_palette_weighted
# Debian's python3 (stdlib only here) starts faster than a pyenv shim that may come first in PATH.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
KEYS="$PY tests/e2e/openapi_keys.py"

passed=0
failed=0
daemon_pid=
tmp=$(mktemp -d)
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
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
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
if timeout 120 "$REDOCLY" lint api/openapi.yaml >"$tmp/lint.log" 2>&1; then
    ok "redocly lint api/openapi.yaml ($(grep -Eo '[0-9]+ warnings?' "$tmp/lint.log" || echo 'no warnings'))"
else
    fail "redocly lint api/openapi.yaml" "$(grep -v '^$' "$tmp/lint.log" | tail -n 30)"
fi
spec=$tmp/openapi.json
if ! timeout 120 "$REDOCLY" bundle api/openapi.yaml --ext json -o "$spec" >"$tmp/bundle.log" 2>&1 \
    || [ ! -s "$spec" ]; then
    fail "redocly bundle to JSON" "$(tail -n 5 "$tmp/bundle.log")"
    finish
fi
ok "redocly bundle to JSON"

# ---- a real daemon -------------------------------------------------------------------------
if [ ! -x "$BUILD/seglossd" ]; then
    fail "daemon" "$BUILD/seglossd is not built (make)"
    finish
fi
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
# --max-body-mb 1 for 413, --upload-timeout 1 for 408: the golden request is far within both.
timeout "$DAEMON_LIFETIME_S" "$BUILD/seglossd" serve --bind 127.0.0.1 --port "$port" \
    --threads 2 --workers 1 --max-body-mb 1 --upload-timeout 1 --idle-timeout 5 \
    >"$tmp/daemon.log" 2>&1 &
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
# expect NAME METHOD SPEC_PATH STATUS -- CURL_ARGS...: runs curl, checks the answer against the
# spec's response for SPEC_PATH and STATUS.
expect() {
    local name=$1 method=$2 path=$3 status=$4
    shift 5
    n=$((n + 1))
    local h=$tmp/h$n b=$tmp/b$n
    curl -s -S --max-time 30 -D "$h" -o "$b" -X "$method" "$@" >"$tmp/curl$n.log" 2>&1
    [ -s "$h" ] || { fail "$name" "no answer: $(cat "$tmp/curl$n.log")"; return; }
    local why
    if why=$($KEYS "$spec" "$method" "$path" "$status" "$h" "$b" 2>&1); then
        ok "$name"
    else
        fail "$name" "$why"
    fi
}

parts=(-F "logits=@$GOLDEN/logits.npy" -F "mask=@$GOLDEN/mask_0.png" -F "mask=@$GOLDEN/mask_1.png")
expect "200 evaluate, params part, confusion matrix" POST /v1/evaluate 200 -- \
    "$url/v1/evaluate?confusion_matrix=true" "${parts[@]}" -F "params=@$GOLDEN/params.json"
if $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(len(d["confusion_matrix"]) != 21)' \
    "$tmp/b$n" 2>/dev/null; then
    ok "confusion_matrix is there when asked for"
else
    fail "confusion_matrix is there when asked for" "$(head -c 200 "$tmp/b$n")"
fi
expect "200 evaluate, standard semantics from the query (null ratios allowed)" POST \
    /v1/evaluate 200 -- "$url/v1/evaluate?semantics=standard&alpha=null&main_loss=focal&dice_loss=1" \
    "${parts[@]}"
expect "422 one mask for a batch of two" POST /v1/evaluate 422 -- \
    "$url/v1/evaluate" -F "logits=@$GOLDEN/logits.npy" -F "mask=@$GOLDEN/mask_0.png"
expect "400 a key both in the query and the params part" POST /v1/evaluate 400 -- \
    "$url/v1/evaluate?gamma=2" "${parts[@]}" -F "params=@$GOLDEN/params.json"
expect "400 unknown query parameter" POST /v1/evaluate 400 -- \
    "$url/v1/evaluate?nonsense=1" "${parts[@]}"
unknown_key_body=$tmp/b$n
expect "415 not multipart" POST /v1/evaluate 415 -- \
    "$url/v1/evaluate" -H 'Content-Type: application/json' --data-binary '{}'
expect "415 a JPEG logits part" POST /v1/evaluate 415 -- \
    "$url/v1/evaluate" -F 'logits=@-;filename=x.npy' -F "mask=@$GOLDEN/mask_0.png" \
    < <(printf '\377\330\377\340\000\020JFIF\000')
head -c $((2 << 20)) /dev/zero >"$tmp/big.bin"
expect "413 Content-Length over --max-body-mb" POST /v1/evaluate 413 -- \
    "$url/v1/evaluate" -H 'Content-Type: multipart/form-data; boundary=x' \
    --data-binary "@$tmp/big.bin"
# Larger than MHD's connection buffer (256 KiB): a smaller body may be buffered whole before the
# daemon sees the request, and so before its upload clock starts.
head -c 400000 /dev/zero >"$tmp/slow.bin"
expect "408 upload slower than --upload-timeout" POST /v1/evaluate 408 -- \
    "$url/v1/evaluate" -F "logits=@$tmp/slow.bin" --limit-rate 160k
expect "405 GET /v1/evaluate (Allow)" POST /v1/evaluate 405 -- "$url/v1/evaluate" -X GET
expect "405 DELETE /livez (Allow)" GET /livez 405 -- "$url/livez" -X DELETE
# 404 belongs to no listed path: check it against the NotFound response itself.
n=$((n + 1))
curl -s --max-time 10 -D "$tmp/h$n" -o "$tmp/b$n" "$url/v2/evaluate"
$PY - "$spec" "$tmp/h$n" "$tmp/b$n" >"$tmp/nf.log" 2>&1 <<'EOF'
import json, sys
sys.path.insert(0, "tests/e2e")
import openapi_keys as k
spec = json.load(open(sys.argv[1]))
spec["paths"]["/v2/evaluate"] = {"get": {"responses": {"404": {"$ref": "#/components/responses/NotFound"}}}}
problems = k.check_response(spec, "GET", "/v2/evaluate", 404, sys.argv[2], sys.argv[3])
print("; ".join(problems) or "ok")
sys.exit(1 if problems else 0)
EOF
if [ $? -eq 0 ]; then ok "404 unknown route"; else fail "404 unknown route" "$(cat "$tmp/nf.log")"; fi

expect "200 GET /v1/info" GET /v1/info 200 -- "$url/v1/info"
info=$tmp/b$n
expect "200 GET /livez" GET /livez 200 -- "$url/livez"
expect "200 GET /healthz" GET /healthz 200 -- "$url/healthz"
expect "200 GET /readyz" GET /readyz 200 -- "$url/readyz"
expect "200 GET /metrics" GET /metrics 200 -- "$url/metrics"
if grep -q '^segloss_build_info{' "$tmp/b$n"; then ok "metrics have segloss_build_info"; else
    fail "metrics have segloss_build_info" "$(head -c 200 "$tmp/b$n")"; fi

# ---- the spec against what the daemon says of itself ---------------------------------------
# The runs routes of DESIGN.md §4 (/v1/runs..., /v1/evaluations/..., the dashboard at /) come
# with their own issue: while the spec leaves them out, they are named here, not failed.
routes=()
later=()
while IFS= read -r r; do
    case "$r" in
        "GET /" | *" /v1/runs"* | *" /v1/evaluations"*) later+=("$r") ;;
        *) routes+=("$r") ;;
    esac
done < <($PY -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["routes"]))' "$info")
note=
[ ${#later[@]} -gt 0 ] && note=" (not in the spec yet, DESIGN.md §4: ${later[*]})"
if why=$($KEYS "$spec" --paths "${routes[@]}"); then ok "spec routes = the routes /v1/info lists$note"; else
    fail "spec routes = the routes /v1/info lists" "$why"; fi
# The 400 for an unknown key lists every key the daemon takes.
known=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["detail"].split("known: ")[1].replace(" ", ""))' \
    "$unknown_key_body" 2>/dev/null)
if [ -n "$known" ] && why=$($KEYS "$spec" --query-params /v1/evaluate POST "$known"); then
    ok "spec query parameters = the keys the daemon takes"
else
    fail "spec query parameters = the keys the daemon takes" "${why:-no key list in $(cat "$unknown_key_body")}"
fi
if why=$($KEYS "$spec" --defaults "$info"); then ok "spec defaults = the defaults /v1/info reports"; else
    fail "spec defaults = the defaults /v1/info reports" "$why"; fi

if curl -s -o /dev/null --max-time 5 "$url/livez"; then ok "daemon still answers"; else
    fail "daemon still answers" "$(tail -n 5 "$tmp/daemon.log")"; fi
finish
