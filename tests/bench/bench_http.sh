#!/usr/bin/env bash
# End-to-end HTTP figures of seglossd, each against its reference measured in the same run:
#
#  1. latency of one 1x21x512x512 float32 .npy + 512x512 palette PNG request, median of
#     REQUESTS curl runs (after WARMUP), against uploading the same parts with the same curl
#     command to tests/bench/floor_server.c, a libmicrohttpd server that only counts the bytes
#     (target: <= 1.5x the floor); the two are interleaved so drift hits both alike;
#  2. peak RSS (VmHWM) of a freshly started daemon that answers one 8x21x512x512 request,
#     against the body size (target: <= 1.3 x body + 64 MiB);
#  3. requests per second with 1 and 4 concurrent curl clients, RPS_REQUESTS requests in all,
#     for seglossd and the floor.
#
# Inputs come from a fixed seed. Ends with a markdown table. Run it standalone as
# `BUILD=build tests/bench/bench_http.sh`: it runs `make` for the daemon and compiles the floor
# server itself. Every server runs under `timeout` and is stopped on exit; every curl has
# --max-time. Needs python3 with numpy (Debian: python3-numpy) to make the inputs.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
REQUESTS=${REQUESTS:-21}
WARMUP=${WARMUP:-2}
RPS_REQUESTS=${RPS_REQUESTS:-40}
SERVER_LIFETIME_S=600
CURL_MAX_S=120
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1 # api/examples is imported: leave no __pycache__

make --no-print-directory BUILD="$BUILD" "$BUILD/seglossd" >/dev/null
mkdir -p "$BUILD/tests"
cc -O2 tests/bench/floor_server.c -lmicrohttpd -o "$BUILD/tests/floor_server"

tmp=$(mktemp -d)
servers=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    local p
    for p in "${servers[@]+"${servers[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${servers[@]+"${servers[@]}"}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

die() { echo "bench_http: $*" >&2; exit 1; }
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
wait_up() { # URL: until it answers, at most 10 s
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    die "nothing answers at $1"
}
# start_daemon: seglossd under timeout on a free port; sets port and pid (timeout's pid).
start_daemon() {
    port=$(free_port)
    timeout "$SERVER_LIFETIME_S" "$BUILD/seglossd" serve --bind 127.0.0.1 --port "$port" \
        --data-dir "$tmp/data" --log-format text >>"$tmp/daemon.log" 2>&1 &
    pid=$!
    servers+=("$pid")
    wait_up "http://127.0.0.1:$port/livez"
}
stop_server() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---- the inputs: masks of blocky regions like real label maps, an ignored (255) border -------
"$PY" - "$tmp" <<'EOF'
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

# ---- 1. latency against the floor -------------------------------------------------------------
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

# post URL OUT [STATUS PARTS...]: one request (by default the 1x21x512x512 parts, 200), the
# answer in OUT; prints "seconds bytes_uploaded"; fails unless the answer has that status.
post() {
    local url=$1 answer=$2 want=${3:-200} out
    shift 3 || shift $#
    [ $# -gt 0 ] || set -- "${one[@]}"
    out=$(curl -s --max-time "$CURL_MAX_S" -o "$answer" \
        -w '%{http_code} %{time_total} %{size_upload}' "$url" "$@")
    [ "${out%% *}" = "$want" ] || die "$url answered ${out%% *}: $(head -c 300 "$answer")"
    echo "${out#* }"
}
for _ in $(seq "$WARMUP"); do
    post "$seg_url" "$tmp/seg.json" >/dev/null
    post "$floor_url" "$tmp/floor.json" >/dev/null
done
: >"$tmp/seg.times"
: >"$tmp/floor.times"
: >"$tmp/seg.timing"
: >"$tmp/intake.times"
for _ in $(seq "$REQUESTS"); do
    post "$seg_url" "$tmp/seg.json" >>"$tmp/seg.times"
    "$PY" -c 'import json, sys; t = json.load(open(sys.argv[1]))["timing"]
print(t["decode_ms"], t["compute_ms"], t["total_ms"])' "$tmp/seg.json" >>"$tmp/seg.timing"
    post "$floor_url" "$tmp/floor.json" >>"$tmp/floor.times"
    # The body intake alone: the logits without a mask are a 400 once the body is in.
    post "$seg_url" "$tmp/intake.json" 400 -F "logits=@$tmp/logits_1.npy" >>"$tmp/intake.times"
done
body_one=$(awk 'NR == 1 { print $2 }' "$tmp/seg.times")
floor_counted=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["bytes"])' \
    "$tmp/floor.json")
seg_ms=$(awk '{ print $1 * 1000 }' "$tmp/seg.times" | median)
floor_ms=$(awk '{ print $1 * 1000 }' "$tmp/floor.times" | median)
intake_ms=$(awk '{ print $1 * 1000 }' "$tmp/intake.times" | median)
decode_ms=$(awk '{ print $1 }' "$tmp/seg.timing" | median)
compute_ms=$(awk '{ print $2 }' "$tmp/seg.timing" | median)
total_ms=$(awk '{ print $3 }' "$tmp/seg.timing" | median)

# ---- 3. requests per second, 1 and 4 clients ---------------------------------------------------
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
        curl -s --max-time "$CURL_MAX_S" -w '%{http_code}\n' "${one[@]}" "${args[@]}" \
            >>"$codes" &
        clients+=($!)
    done
    wait "${clients[@]}" || true
    end=$(date +%s.%N)
    [ "$(grep -c '^200$' "$codes")" -eq "$RPS_REQUESTS" ] ||
        die "$1: not every answer was 200: $(sort "$codes" | uniq -c | xargs)"
    awk -v n="$RPS_REQUESTS" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }'
}
seg_rps1=$(rps "$seg_url" 1)
floor_rps1=$(rps "$floor_url" 1)
seg_rps4=$(rps "$seg_url" 4)
floor_rps4=$(rps "$floor_url" 4)
stop_server "$floor_pid"
stop_server "$seg_pid"

# ---- 2. peak RSS of a fresh daemon over one 8x21x512x512 request -------------------------------
start_daemon
daemon_pid=$(awk '{ print $1 }' "/proc/$pid/task/$pid/children") # timeout's one child
rss_start_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon_pid/status")
out=$(curl -s --max-time "$CURL_MAX_S" -o "$tmp/eight.json" -w '%{http_code} %{size_upload}' \
    "http://127.0.0.1:$port/v1/evaluate" "${eight[@]}")
[ "${out%% *}" = 200 ] ||
    die "the 8-batch request answered ${out%% *}: $(head -c 300 "$tmp/eight.json")"
body_eight=${out#* }
peak_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon_pid/status")
stop_server "$pid"

# ---- the table ---------------------------------------------------------------------------------
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$REQUESTS" "$RPS_REQUESTS" "$body_one" "$floor_counted" "$seg_ms" "$floor_ms" \
    "$decode_ms" "$compute_ms" "$total_ms" "$body_eight" "$rss_start_kib" "$peak_kib" \
    "$seg_rps1" "$floor_rps1" "$seg_rps4" "$floor_rps4" "$intake_ms" <<'EOF'
import sys
a = sys.argv[1:]
n, nr = int(a[0]), int(a[1])
body1, counted = int(a[2]), int(a[3])
seg, floor, decode, compute, total = map(float, a[4:9])
body8, start_kib, peak_kib = int(a[9]), int(a[10]), int(a[11])
rps = a[12:16]
intake = float(a[16])
MiB = 1 << 20
ratio = seg / floor
limit = 1.3 * body8 + 64 * MiB
peak = peak_kib * 1024


def met(ok):
    return "met" if ok else "**not met**"


print()
print("| measure | seglossd | reference | ratio | target |")
print("| --- | --- | --- | --- | --- |")
print(f"| 1x21x512x512 f32 .npy + 512x512 PNG ({body1 / MiB:.1f} MiB body), median of {n}"
      f" | {seg:.1f} ms | floor: MHD counting the bytes, {floor:.1f} ms | {ratio:.2f}x"
      f" | <= 1.5x: {met(ratio <= 1.5)} |")
print(f"| the same, server-side timing (medians): decode / compute / total"
      f" | {decode:.1f} / {compute:.1f} / {total:.1f} ms | | | |")
print(f"| the body intake alone (the logits without a mask: 400 once the body is in)"
      f" | {intake:.1f} ms | floor {floor:.1f} ms | {intake / floor:.2f}x | |")
print(f"| peak RSS (VmHWM), one 8x21x512x512 request ({body8 / MiB:.1f} MiB body)"
      f" | {peak / MiB:.1f} MiB ({start_kib / 1024:.1f} MiB before)"
      f" | 1.3 x body + 64 MiB = {limit / MiB:.1f} MiB | {peak / body8:.2f}x body"
      f" | {met(peak <= limit)} |")
print(f"| requests/s, 1 client ({nr} requests) | {rps[0]} | floor {rps[1]} | | |")
print(f"| requests/s, 4 clients ({nr} requests) | {rps[2]} | floor {rps[3]} | | |")
if counted != body1:
    print(f"\nwarning: the floor counted {counted} body bytes, curl sent {body1}")
EOF
