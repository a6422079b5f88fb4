#!/usr/bin/env bash
# End-to-end HTTP figures of seglossd, each against its reference measured in the same run:
#
#  1. latency of one 1x21x512x512 float32 .npy + 512x512 palette PNG request, median of
#     REQUESTS curl runs (after WARMUP), against uploading the same parts with the same curl
#     command to tests/bench/floor_server.c, a libmicrohttpd server that only counts the bytes
#     (target: <= 1.5x the floor);
#  2. peak RSS (VmHWM) of a freshly started daemon that answers one 8x21x512x512 request,
#     against the body size (target: <= 1.3 x body + 64 MiB);
#  3. requests per second with 1 and 4 concurrent curl clients, RPS_REQUESTS requests each,
#     for seglossd and the floor.
#
# Ends with a markdown table. Run standalone as `BUILD=build tests/bench/bench_http.sh` (it runs
# `make` for the daemon and compiles the floor server itself). Every server runs under
# `timeout` and is stopped on exit; every curl has --max-time.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
REQUESTS=${REQUESTS:-11}
WARMUP=${WARMUP:-2}
RPS_REQUESTS=${RPS_REQUESTS:-40}
SERVER_LIFETIME_S=600
CURL_MAX_S=120
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

make --no-print-directory BUILD="$BUILD" "$BUILD/seglossd" >/dev/null
mkdir -p "$BUILD/tests"
cc -O2 tests/bench/floor_server.c -lmicrohttpd -o "$BUILD/tests/floor_server"

tmp=$(mktemp -d)
servers=()
cleanup() {
    for p in "${servers[@]+"${servers[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${servers[@]+"${servers[@]}"}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_up() { # URL: until it answers, at most 10 s
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "bench_http: nothing answers at $1" >&2
    return 1
}
# start_daemon: starts seglossd under timeout on a free port; sets port and pid (timeout's).
start_daemon() {
    port=$(free_port)
    timeout "$SERVER_LIFETIME_S" "$BUILD/seglossd" serve --bind 127.0.0.1 --port "$port" \
        --log-format text >>"$tmp/daemon.log" 2>&1 &
    pid=$!
    servers+=("$pid")
    wait_up "http://127.0.0.1:$port/livez"
}
stop_server() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- the inputs: fixed seed; masks of blocky regions like real label maps, 255 border ------
$PY - "$tmp" <<'EOF'
import sys
import numpy as np
sys.path.insert(0, "api/examples")
from evaluate import npy_bytes, palette_png
out = sys.argv[1]
rng = np.random.default_rng(20261129)
C, H, W = 21, 512, 512
for n in (1, 8):
    logits = rng.standard_normal((n, C, H, W), dtype=np.float32)
    with open(f"{out}/logits_{n}.npy", "wb") as f:
        f.write(npy_bytes(logits))
for i in range(8):
    blocks = rng.integers(0, C, size=(H // 32, W // 32), dtype=np.uint8)
    labels = np.kron(blocks, np.ones((32, 32), dtype=np.uint8))
    labels[:4, :] = labels[-4:, :] = labels[:, :4] = labels[:, -4:] = 255
    with open(f"{out}/mask_{i}.png", "wb") as f:
        f.write(palette_png(labels))
EOF
one=(-F "logits=@$tmp/logits_1.npy" -F "mask=@$tmp/mask_0.png")
eight=(-F "logits=@$tmp/logits_8.npy")
for i in 0 1 2 3 4 5 6 7; do eight+=(-F "mask=@$tmp/mask_$i.png"); done

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# ---- 1. latency against the floor -----------------------------------------------------------
start_daemon
seg_url=http://127.0.0.1:$port/v1/evaluate
seg_pid=$pid
floor_port=$(free_port)
timeout "$SERVER_LIFETIME_S" "$BUILD/tests/floor_server" "$floor_port" 0 "$SERVER_LIFETIME_S" \
    >>"$tmp/floor.log" 2>&1 &
floor_pid=$!
servers+=("$floor_pid")
floor_url=http://127.0.0.1:$floor_port/upload
wait_up "$floor_url"

# post URL OUT: one request with the 1x21x512x512 parts; prints seconds; fails on non-200.
post() {
    local code
    code=$(curl -s --max-time "$CURL_MAX_S" -o "$2" -w '%{http_code} %{time_total} %{size_upload}' \
        "$1" "${one[@]}")
    [ "${code%% *}" = 200 ] || { echo "bench_http: $1 answered ${code%% *}: $(head -c 300 "$2")" >&2; return 1; }
    echo "${code#* }"
}
for _ in $(seq "$WARMUP"); do post "$seg_url" "$tmp/seg.json" >/dev/null; post "$floor_url" "$tmp/floor.json" >/dev/null; done
: >"$tmp/seg.times"; : >"$tmp/floor.times"
for _ in $(seq "$REQUESTS"); do  # interleaved, so drift hits both alike
    post "$seg_url" "$tmp/seg.json" >>"$tmp/seg.times"
    post "$floor_url" "$tmp/floor.json" >>"$tmp/floor.times"
done
body_one=$(awk 'NR == 1 { print $2 }' "$tmp/seg.times")
seg_ms=$(awk '{ print $1 * 1000 }' "$tmp/seg.times" | median)
floor_ms=$(awk '{ print $1 * 1000 }' "$tmp/floor.times" | median)
floor_bytes=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$tmp/floor.json")
server_ms=$($PY -c 'import json,sys; t = json.load(open(sys.argv[1]))["timing"]; print(t["decode_ms"], t["compute_ms"], t["total_ms"])' "$tmp/seg.json")

# ---- 3. requests per second, 1 and 4 clients --------------------------------------------------
# rps URL CLIENTS: RPS_REQUESTS requests over CLIENTS concurrent curl processes, each sending
# its share one after another on one kept-alive connection, as a training job's client would.
# Prints requests per second; fails unless every answer is 200.
rps() {
    local start end c i args clients=() codes=$tmp/rps.codes
    : >"$codes"
    start=$(date +%s.%N)
    for c in $(seq "$2"); do
        args=()
        for i in $(seq "$c" "$2" "$RPS_REQUESTS"); do args+=(-o /dev/null "$1"); done
        curl -s --max-time "$CURL_MAX_S" -w '%{http_code}\n' "${one[@]}" "${args[@]}" >>"$codes" &
        clients+=($!)
    done
    wait "${clients[@]}" || true
    end=$(date +%s.%N)
    if [ "$(grep -c '^200$' "$codes")" -ne "$RPS_REQUESTS" ]; then
        echo "bench_http: $1: not every answer was 200: $(sort "$codes" | uniq -c | xargs)" >&2
        return 1
    fi
    awk -v n="$RPS_REQUESTS" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }'
}
seg_rps1=$(rps "$seg_url" 1); floor_rps1=$(rps "$floor_url" 1)
seg_rps4=$(rps "$seg_url" 4); floor_rps4=$(rps "$floor_url" 4)
stop_server "$floor_pid"
stop_server "$seg_pid"

# ---- 2. peak RSS of a fresh daemon over one 8x21x512x512 request ------------------------------
start_daemon
daemon_pid=$(cat "/proc/$pid/task/$pid/children" | awk '{ print $1 }')
rss_before=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon_pid/status")
code=$(curl -s --max-time "$CURL_MAX_S" -o "$tmp/eight.json" -w '%{http_code} %{size_upload}' \
    "http://127.0.0.1:$port/v1/evaluate" "${eight[@]}")
[ "${code%% *}" = 200 ] || { echo "bench_http: the 8-batch request answered ${code%% *}: $(head -c 300 "$tmp/eight.json")" >&2; exit 1; }
body_eight=${code#* }
peak_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon_pid/status")
stop_server "$pid"

# ---- the table --------------------------------------------------------------------------------
awk -v seg="$seg_ms" -v floor="$floor_ms" -v body1="$body_one" -v fbytes="$floor_bytes" \
    -v srv="$server_ms" -v n="$REQUESTS" \
    -v peak="$peak_kib" -v before="$rss_before" -v body8="$body_eight" \
    -v r1="$seg_rps1" -v f1="$floor_rps1" -v r4="$seg_rps4" -v f4="$floor_rps4" -v nr="$RPS_REQUESTS" '
function mib(b) { return b / 1048576 }
BEGIN {
    split(srv, t, " ")
    ratio = seg / floor
    limit = 1.3 * body8 + 64 * 1048576
    peak_b = peak * 1024
    printf "\n| measure | seglossd | reference | ratio | target |\n"
    printf "| --- | --- | --- | --- | --- |\n"
    printf "| 1x21x512x512 f32 .npy + 512x512 PNG (%.1f MiB body), median of %d | %.1f ms | floor (MHD, count bytes only) %.1f ms | %.2fx | <= 1.5x: %s |\n",
        mib(body1), n, seg, floor, ratio, ratio <= 1.5 ? "met" : "NOT met"
    printf "| the answer'"'"'s timing (last request): decode / compute / total | %.1f / %.1f / %.1f ms | | | |\n", t[1], t[2], t[3]
    printf "| peak RSS (VmHWM), 8x21x512x512 request (%.1f MiB body) | %.1f MiB (%.1f MiB at start) | 1.3 x body + 64 MiB = %.1f MiB | %.2fx body | %s |\n",
        mib(body8), peak / 1024, before / 1024, mib(limit), peak_b / body8, peak_b <= limit ? "met" : "NOT met"
    printf "| requests/s, 1 client (%d requests) | %s | floor %s | | |\n", nr, r1, f1
    printf "| requests/s, 4 clients (%d requests) | %s | floor %s | | |\n", nr, r4, f4
    if (fbytes != body1) printf "\nwarning: the floor counted %d body bytes, curl sent %d\n", fbytes, body1
}'
