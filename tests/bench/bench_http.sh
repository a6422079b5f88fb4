#!/usr/bin/env bash
# End-to-end HTTP figures of seglossd, each against its floor measured in the same run:
# tests/bench/floor_server.c, a libmicrohttpd server set up like seglossd's listener that only
# counts the bytes, gets the same curl command for the same bytes. The two are interleaved in
# ROUNDS rounds (after WARMUP), every round is printed, and the table gives ranges over the
# rounds (and the per-round ratio's range), never one run. A round of a short row is the median
# of a few posts to each server, alternating (the rows' last field):
#
#  1. 1x21x512x512 float32 .npy + 1 PNG mask (target <= 1.3x the floor);
#  2. 8x21x512x512 + 8 PNG masks, logits first as `curl -F logits=@... -F mask=@...` sends them
#     (target <= 1.15x), and masks first (the order that lets the server evaluate each item
#     while the rest arrives, server/api/intake.c);
#  3. the same 8-image batch as an Open Inference Protocol v2 binary request (labels, logits);
#  4. the body intake alone (logits without a mask: 400 once the body is in) for 1 MiB,
#     22 MiB, 176 MiB and 1 GiB bodies (target <= 1.1x; the 1 GiB row runs a daemon with
#     --max-body-mb 1100 --buffer-cache-mb 1100, HUGE_ROUNDS rounds);
#  5. requests per second, 4 concurrent curl clients posting the 8-image batch on kept-alive
#     connections, RPS_REQUESTS requests in all (target >= 0.8x the floor's), with the
#     CPU-seconds per request of each server and of the clients (tests/bench/cpu_per_request.py)
#     and from them the best ratio the machine allows when the clients share its cores;
#  5b. the answer's own timing (decode, compute, total) of the seglossd rows that answer 200;
#  6. peak RSS (VmHWM) of a fresh daemon answering one 8-image request (target <= 1.3 x body
#     + 64 MiB).
#
# Inputs come from a fixed seed. Run it standalone as `BUILD=build tests/bench/bench_http.sh`:
# it runs `make` for the daemon and compiles the floor server itself. Every server runs under
# `timeout` and is stopped on exit; every curl has --max-time. Needs python3 with numpy
# (Debian: python3-numpy) to make the inputs. About 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-7}
WARMUP=${WARMUP:-1}
HUGE_ROUNDS=${HUGE_ROUNDS:-7}
RPS_REQUESTS=${RPS_REQUESTS:-16}
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
# start_daemon [FLAGS...]: seglossd under timeout on a free port; sets port and pid.
start_daemon() {
    port=$(free_port)
    timeout "$SERVER_LIFETIME_S" "$BUILD/seglossd" serve --bind 127.0.0.1 --port "$port" \
        --data-dir "$tmp/data" --log-format text "$@" >>"$tmp/daemon.log" 2>&1 &
    pid=$!
    servers+=("$pid")
    wait_up "http://127.0.0.1:$port/livez"
}
stop_server() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ---- the inputs: masks of blocky regions like real label maps, an ignored (255) border -------
"$PY" - "$tmp" <<'EOF2'
import json, sys
import numpy as np
sys.path.insert(0, "api/examples")
from evaluate import npy_bytes, palette_png
from oip_binary import binary_request
out = sys.argv[1]
rng = np.random.default_rng(20261129)
C, H, W = 21, 512, 512
logits8 = rng.standard_normal((8, C, H, W), dtype=np.float32)
for n in (1, 8):
    with open(f"{out}/logits_{n}.npy", "wb") as f:
        f.write(npy_bytes(logits8[:n]))
labels = []
for i in range(8):
    blocks = rng.integers(0, C, size=(H // 32, W // 32), dtype=np.uint8)
    lab = np.kron(blocks, np.ones((32, 32), dtype=np.uint8))
    lab[:4, :] = lab[-4:, :] = lab[:, :4] = lab[:, -4:] = 255
    labels.append(lab)
    with open(f"{out}/mask_{i}.png", "wb") as f:
        f.write(palette_png(lab))
with open(f"{out}/blob_1m.npy", "wb") as f:
    f.write(npy_bytes(rng.standard_normal((1, 1, 512, 512), dtype=np.float32)))
# 1 GiB of float32: a (64,1,2048,2048) .npy written in pieces
piece = rng.standard_normal((16, 1, 2048, 2048), dtype=np.float32).tobytes()
with open(f"{out}/blob_1g.npy", "wb") as f:
    np.lib.format.write_array_header_1_0(
        f, {"descr": "<f4", "fortran_order": False, "shape": (64, 1, 2048, 2048)})
    for _ in range(4):
        f.write(piece)
# OIP v2 binary: labels first, then logits
body, headers = binary_request({"labels": np.stack(labels), "logits": logits8}, {})
with open(f"{out}/oip.bin", "wb") as f:
    f.write(body)
with open(f"{out}/oip.hlen", "w") as f:
    f.write(headers["Inference-Header-Content-Length"])
EOF2
one=(-F "logits=@$tmp/logits_1.npy" -F "mask=@$tmp/mask_0.png")
masks=()
for i in 0 1 2 3 4 5 6 7; do masks+=(-F "mask=@$tmp/mask_$i.png"); done
eight=(-F "logits=@$tmp/logits_8.npy" "${masks[@]}")
eight_mf=("${masks[@]}" -F "logits=@$tmp/logits_8.npy")
oip=(-H "Content-Type: application/octet-stream"
     -H "Inference-Header-Content-Length: $(cat "$tmp/oip.hlen")" --data-binary "@$tmp/oip.bin")

# post URL WANT ARGS...: one request; prints its seconds; fails unless the status is WANT.
post() {
    local url=$1 want=$2 out
    shift 2
    out=$(curl -s --max-time "$CURL_MAX_S" -o "$tmp/answer" -w '%{http_code} %{time_total}' \
        "$url" "$@")
    [ "${out%% *}" = "$want" ] || die "$url answered ${out%% *}: $(head -c 300 "$tmp/answer")"
    echo "${out#* }"
}

start_daemon
seg=http://127.0.0.1:$port
seg_pid=$pid
floor_port=$(free_port)
timeout "$SERVER_LIFETIME_S" "$BUILD/tests/floor_server" "$floor_port" 0 "$SERVER_LIFETIME_S" \
    >>"$tmp/floor.log" 2>&1 &
floor_pid=$!
servers+=("$floor_pid")
floor=http://127.0.0.1:$floor_port/upload
wait_up "$floor"

# rows: name | seglossd URL path | status | curl args (an array's name) | posts per round
# A round's figure is the median of that many posts to each server, alternating: a 3 ms request
# is as long as one scheduling hiccup of this kind of machine, so one post per round measured
# the hiccups (the 1 MiB row's rounds ranged 0.77-3.46x with one post); the 8-image rows'
# medians moved by 0.2x between two runs minutes apart with one post per round.
rows=(
    "1x21x512x512 + 1 PNG|/v1/evaluate|200|one|3"
    "8x21x512x512 + 8 PNG, logits first|/v1/evaluate|200|eight|3"
    "8x21x512x512 + 8 PNG, masks first|/v1/evaluate|200|eight_mf|3"
    "OIP v2 binary, 8 labels then logits|/v2/models/segloss/infer|200|oip|3"
    "intake alone, 1 MiB|/v1/evaluate|400|in_1m|15"
    "intake alone, 22 MiB|/v1/evaluate|400|in_22m|3"
    "intake alone, 176 MiB|/v1/evaluate|400|in_176m|3"
)
in_1m=(-F "logits=@$tmp/blob_1m.npy")
in_22m=(-F "logits=@$tmp/logits_1.npy")
in_176m=(-F "logits=@$tmp/logits_8.npy")
in_1g=(-F "logits=@$tmp/blob_1g.npy")
: >"$tmp/rounds"
: >"$tmp/timing"
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# round ROUND LABEL SEG_BASE ARRAY WANT PATH [POSTS]: POSTS (default 1) posts to seglossd and to
# the floor, alternating; the medians make one line per round
one_round() {
    local r=$1 label=$2 base=$3 arr=$4 want=$5 path=$6 posts=${7:-1} a b t i as="" bs=""
    local -n args=$arr
    for ((i = 0; i < posts; i++)); do
        as+="$(post "$base$path" "$want" "${args[@]}")"$'\n'
        # the answer's own split: decode (masks left after the upload), compute, total
        t=$(sed -n 's/.*"timing":{"decode_ms":\([^,]*\),"compute_ms":\([^,]*\),"total_ms":\([^}]*\)}.*/'\
'\1|\2|\3/p' "$tmp/answer")
        [ -z "$t" ] || echo "$label|$t" >>"$tmp/timing"
        bs+="$(post "$floor" 200 "${args[@]}")"$'\n'
    done
    a=$(printf '%s' "$as" | median)
    b=$(printf '%s' "$bs" | median)
    echo "$label|$r|$a|$b" >>"$tmp/rounds"
    [ "$posts" = 1 ] || label="$label (median of $posts)"
    printf '  round %s  %-40s seglossd %7.1f ms  floor %7.1f ms  %.2fx\n' "$r" "$label" \
        "$(awk -v x="$a" 'BEGIN { print x * 1000 }')" "$(awk -v x="$b" 'BEGIN { print x * 1000 }')" \
        "$(awk -v x="$a" -v y="$b" 'BEGIN { print x / y }')"
}
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
    "load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
for row in "${rows[@]}"; do
    IFS='|' read -r label path want arr _ <<<"$row"
    for _ in $(seq "$WARMUP"); do
        local_args="$arr[@]"
        post "$seg$path" "$want" "${!local_args}" >/dev/null
        post "$floor" 200 "${!local_args}" >/dev/null
    done
done
for r in $(seq "$ROUNDS"); do
    for row in "${rows[@]}"; do
        IFS='|' read -r label path want arr posts <<<"$row"
        one_round "$r" "$label" "$seg" "$arr" "$want" "$path" "$posts"
    done
done

# ---- requests per second and CPU-seconds per request, 4 clients ------------------------------
# RPS_REQUESTS 8-image requests over 4 curl processes, each sending its share one after another
# on one kept-alive connection (tests/bench/cpu_per_request.py), seglossd then the floor in each
# round. Besides requests/s it takes the CPU-seconds per request of the server (its utime+stime)
# and of the curl clients, figures the machine's load hardly moves. On a machine whose cores the
# clients share with the server, requests/s at saturation is at most the CPU per request's
# inverse, so seglossd's requests/s over the floor's can be no better than
#   (floor server + floor clients) / (floor server + floor clients + seglossd's extra server CPU).
server_pid() { awk '{ print $1 }' "/proc/$1/task/$1/children"; } # timeout's one child
seg_daemon=$(server_pid "$seg_pid")
floor_server=$(server_pid "$floor_pid")
# one unmeasured request per client first, as for the other rows: the daemon's buffer cache then
# holds what four bodies at once need, as it does for a client posting batch after batch
"$PY" tests/bench/cpu_per_request.py "$seg_daemon" "$seg/v1/evaluate" 200 4 4 "${eight[@]}" \
    >/dev/null
"$PY" tests/bench/cpu_per_request.py "$floor_server" "$floor" 200 4 4 "${eight[@]}" >/dev/null
: >"$tmp/rps"
for r in 1 2 3; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    a=$("$PY" tests/bench/cpu_per_request.py "$seg_daemon" "$seg/v1/evaluate" 200 4 \
        "$RPS_REQUESTS" "${eight[@]}") || die "seglossd, 4 clients: $a"
    b=$("$PY" tests/bench/cpu_per_request.py "$floor_server" "$floor" 200 4 \
        "$RPS_REQUESTS" "${eight[@]}") || die "floor, 4 clients: $b"
    echo "$r $load $a $b" >>"$tmp/rps"
    echo "  round $r  load $load  4 clients, 8-image batch: seglossd $a"
    echo "                               floor    $b"
done
stop_server "$floor_pid"
stop_server "$seg_pid"

# ---- 1 GiB intake: a daemon whose buffer cache holds such a body --------------------------------
start_daemon --max-body-mb 1100 --buffer-cache-mb 1100
seg_huge=http://127.0.0.1:$port
huge_pid=$pid
timeout "$SERVER_LIFETIME_S" "$BUILD/tests/floor_server" "$floor_port" 0 "$SERVER_LIFETIME_S" \
    >>"$tmp/floor.log" 2>&1 &
floor_pid=$!
servers+=("$floor_pid")
wait_up "$floor"
post "$seg_huge/v1/evaluate" 400 "${in_1g[@]}" >/dev/null
post "$floor" 200 "${in_1g[@]}" >/dev/null
for r in $(seq "$HUGE_ROUNDS"); do
    one_round "$r" "intake alone, 1 GiB" "$seg_huge" in_1g 400 /v1/evaluate
done
stop_server "$floor_pid"
stop_server "$huge_pid"

# ---- peak RSS of a fresh daemon over one 8x21x512x512 request -----------------------------------
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
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$tmp/rounds" "$tmp/rps" "$body_eight" "$rss_start_kib" "$peak_kib" "$tmp/timing" <<'EOF2'
import statistics, sys
rounds, rps_file = sys.argv[1], sys.argv[2]
body8, start_kib, peak_kib = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
timing_file = sys.argv[6]
MiB = 1 << 20
targets = {"1x21x512x512 + 1 PNG": 1.3, "8x21x512x512 + 8 PNG, logits first": 1.15,
           "8x21x512x512 + 8 PNG, masks first": 1.15}
rows = {}
for line in open(rounds):
    label, _, a, b = line.strip().split("|")
    rows.setdefault(label, []).append((float(a) * 1e3, float(b) * 1e3))


def met(ok):
    return "met" if ok else "**not met**"


def rng(v, fmt="{:.1f}"):
    return f"{fmt.format(min(v))}-{fmt.format(max(v))} (median {fmt.format(statistics.median(v))})"


print()
print("| request | seglossd ms | floor ms | ratio per round | target |")
print("| --- | --- | --- | --- | --- |")
for label, v in rows.items():
    seg = [a for a, _ in v]
    flo = [b for _, b in v]
    ratio = [a / b for a, b in v]
    t = targets.get(label, 1.1 if label.startswith("intake") else None)
    verdict = f"<= {t}x: {met(statistics.median(ratio) <= t)} (median)" if t else ""
    print(f"| {label}, {len(v)} rounds | {rng(seg)} | {rng(flo)} | {rng(ratio, '{:.2f}')}x"
          f" | {verdict} |")
# rps file: round load seglossd-fields floor-fields, each "key=value" from cpu_per_request.py
r = []
for line in open(rps_file):
    words = line.split()
    seg = dict(w.split("=") for w in words[2:6])
    flo = dict(w.split("=") for w in words[6:10])
    r.append(({k: float(v) for k, v in seg.items()}, {k: float(v) for k, v in flo.items()},
              float(words[1])))
ratio = [a["rps"] / b["rps"] for a, b, _ in r]
loads = [x for _, _, x in r]
print(f"| requests/s, 4 clients, 8-image batch, {len(r)} rounds (load {min(loads):.1f}-"
      f"{max(loads):.1f}) | {rng([a['rps'] for a, _, _ in r], '{:.2f}')}"
      f" | {rng([b['rps'] for _, b, _ in r], '{:.2f}')} | {rng(ratio, '{:.2f}')}x"
      f" | >= 0.8x: {met(statistics.median(ratio) >= 0.8)} (median) |")
# The physical limit: requests/s at saturation is the CPU's over the CPU-seconds a request takes,
# the curl clients' included when they share the cores, so the best ratio is the floor's total
# over the floor's total plus what seglossd spends beyond the floor.
extra = [a["server_cpu_s"] - b["server_cpu_s"] for a, b, _ in r]
bound = [(b["server_cpu_s"] + b["client_cpu_s"]) /
         (b["server_cpu_s"] + b["client_cpu_s"] + max(a["server_cpu_s"] - b["server_cpu_s"], 0))
         for a, b, _ in r]
ms = "{:.1f}"
print(f"| CPU ms per request, 4 clients: server (curl clients) | "
      f"{rng([a['server_cpu_s'] * 1e3 for a, _, _ in r], ms)}"
      f" ({rng([a['client_cpu_s'] * 1e3 for a, _, _ in r], ms)})"
      f" | {rng([b['server_cpu_s'] * 1e3 for _, b, _ in r], ms)}"
      f" ({rng([b['client_cpu_s'] * 1e3 for _, b, _ in r], ms)})"
      f" | seglossd's extra {rng([e * 1e3 for e in extra], ms)} ms"
      f" | bound on the 4-client ratio where clients share the cores: "
      f"{rng(bound, '{:.2f}')}x |")
timing = {}
for line in open(timing_file):
    label, d, c, t = line.strip().split("|")
    timing.setdefault(label, []).append((float(d), float(c), float(t)))
for label, v in timing.items():
    print(f"| the answer's timing, {label}, {len(v)} answers | decode {rng([d for d, _, _ in v])}"
          f" ms | compute {rng([c for _, c, _ in v])} ms | total {rng([t for _, _, t in v])} ms"
          f" | |")
limit = 1.3 * body8 + 64 * MiB
peak = peak_kib * 1024
print(f"| peak RSS (VmHWM), one 8-image request ({body8 / MiB:.1f} MiB body) | {peak / MiB:.1f} MiB"
      f" ({start_kib / 1024:.1f} MiB before) | 1.3 x body + 64 MiB = {limit / MiB:.1f} MiB"
      f" | {peak / body8:.2f}x body | {met(peak <= limit)} |")
EOF2
