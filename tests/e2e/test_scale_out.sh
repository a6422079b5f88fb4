#!/usr/bin/env bash
# Scale-out (issue 6): replicas of seglossd share one PostgreSQL runs store behind nginx.
#
#   1. PostgreSQL 15 from Debian's packages in a temporary folder (tests/e2e/pg_cluster.sh), and
#      the PostgreSQL store's unit tests (build/tests/test_store_postgres) run against it.
#   2. Two seglossd replicas with --store postgres://..., nginx balancing them; 8 clients post
#      200 batches (random logits and labels made once) of one run, step 1, through nginx, and
#      one replica is killed with SIGKILL mid-run. Then: every evaluation answered 200 is stored
#      (GET /v1/evaluations/{id}); the run's aggregated confusion matrix equals, exactly, the sum
#      of the 200 answers' confusion matrices plus those of some of the requests whose answer was
#      lost with the replica (a batch can commit and the replica die before it answers; nothing
#      else may differ); evaluation and batch counts agree.
#   3. PostgreSQL is stopped: the surviving replica answers 503 (with Retry-After) for what needs
#      the store and stays live; PostgreSQL is started again and the replica records again.
#
# nginx retries a request on the other replica only when it could not be sent to the first
# (`proxy_next_upstream error timeout`, without `non_idempotent`): a POST that reached a replica
# may have been recorded, so sending it again could count its batch twice. Clients do not retry
# either; the requests lost with the killed replica are the "unknown" ones above.
#
# Everything listens on 127.0.0.1 only and is stopped on exit (trap; a watchdog ends the whole
# test after WATCHDOG_S). Prints "N passed, N failed" last.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DAEMON=$BUILD/seglossd
UNIT=$BUILD/tests/test_store_postgres
BATCHES=200
CLIENTS=8
KILL_AFTER=60        # answers before the replica is killed
WATCHDOG_S=280
pass=0; fail=0; finished=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

. tests/e2e/pg_cluster.sh
. tests/e2e/nginx_lb.sh

work=$(mktemp -d /tmp/segloss_scale_XXXXXX)
pids=()
nginx_pid=""
finish() {
    [ "$finished" -eq 1 ] && return
    finished=1
    [ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
    local p
    for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" 2>/dev/null; done
    if [ -n "$nginx_pid" ]; then
        # TERM: the master stops its workers (SIGKILL would leave them behind)
        kill -TERM "$nginx_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$nginx_pid" 2>/dev/null
        { wait "$nginx_pid"; } 2>/dev/null
    fi
    pg_cluster_stop
    if [ "$fail" -eq 0 ]; then rm -rf "$work"; else echo "logs kept in $work"; fi
    echo "$pass passed, $fail failed"
}
trap finish EXIT
trap 'bad "timed out or interrupted"; exit 1' INT TERM
( sleep "$WATCHDOG_S"; kill -TERM $$ 2>/dev/null ) >/dev/null 2>&1 &
watchdog=$!

# Debian's interpreter when there is one (a version manager's shim can take a second to start)
PY=$(command -v /usr/bin/python3 || command -v python3)
free_port() {
    "$PY" -c \
        'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- 1. PostgreSQL and the store's unit tests ---------------------------------------------

if ! pg_cluster_start; then
    bad "PostgreSQL 15 did not start (see above)"
    exit 1
fi
ok "PostgreSQL started on 127.0.0.1:$PG_PORT"
if [ -x "$UNIT" ]; then
    unit_url=$(pg_cluster_createdb segloss_unit)
    out=$(SEGLOSS_TEST_POSTGRES=$unit_url "$UNIT" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^ok ' | grep -v 'does not load\|fortran_order' | tail -n 20
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
        pass=$((pass + p)); fail=$((fail + f))
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && bad "test_store_postgres exited $rc"
    else
        bad "test_store_postgres printed no summary (exit $rc)"
    fi
else
    bad "$UNIT is not built"
fi

# ---- 2. two replicas behind nginx ---------------------------------------------------------

if [ ! -x "$DAEMON" ]; then
    bad "$DAEMON is not built"
    exit 1
fi
if ! "$DAEMON" --help 2>&1 | grep -q -- '--store'; then
    bad "seglossd has no --store flag: the PostgreSQL runs store is not wired into the daemon"
    exit 1
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ] && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends nginx >/dev/null 2>&1
fi
if [ ! -x "$NGINX" ]; then
    bad "nginx is not installed (apt-get install nginx)"
    exit 1
fi

scale_url=$(pg_cluster_createdb segloss_scale)
ports=()
start_replica() { # index
    local port
    port=$(free_port)
    mkdir -p "$work/data$1"
    "$DAEMON" serve --port "$port" --bind 127.0.0.1 --store "$scale_url" \
        --data-dir "$work/data$1" --threads 4 --workers 2 --log-format text \
        >"$work/replica$1.log" 2>&1 &
    pids[$1]=$!
    ports[$1]=$port
}
wait_live() { # url
    for _ in $(seq 150); do
        curl -sf -o /dev/null --max-time 2 "$1/livez" && return 0
        sleep 0.1
    done
    return 1
}
start_replica 0
start_replica 1
for i in 0 1; do
    if wait_live "http://127.0.0.1:${ports[$i]}"; then
        ok "replica $i live on 127.0.0.1:${ports[$i]} with --store postgres://"
    else
        bad "replica $i did not start: $(tail -n 5 "$work/replica$i.log")"
        exit 1
    fi
done
code=$(curl -s -o "$work/runs.json" -w '%{http_code}' "http://127.0.0.1:${ports[0]}/v1/runs")
if [ "$code" = 404 ]; then
    bad "GET /v1/runs answered 404: the daemon has no runs routes yet (runs store not wired)"
    exit 1
fi
[ "$code" = 200 ] && ok "GET /v1/runs on the shared store: 200" ||
    { bad "GET /v1/runs: $code $(head -c 300 "$work/runs.json")"; exit 1; }

nginx_port=$(free_port)
nginx_lb_start "$work" "$nginx_port" 30s "$work/nginx_access.log" "${ports[0]}" "${ports[1]}"
LB=http://127.0.0.1:$nginx_port
if wait_live "$LB"; then
    ok "nginx balancing both replicas on 127.0.0.1:$nginx_port"
else
    bad "nginx did not start: $(cat "$work"/nginx.out "$work"/nginx_error.log | tail -n 5)"
    exit 1
fi

# The clients, the kill and the checks: one Python process (threads, no process per request).
# Batches are random logits (1, 5, 24, 24) float32 and labels (1, 24, 24) uint8 with ~10% 255s.
disown "${pids[1]}" # its SIGKILL is part of the test: no "Killed" job report
"$PY" - "$LB" "${pids[1]}" "$BATCHES" "$CLIENTS" "$KILL_AFTER" >"$work/check.out" 2>&1 <<'EOF'
import http.client, itertools, json, os, random, signal, struct, sys, threading, time, uuid
from concurrent.futures import ThreadPoolExecutor
lb, victim, count, clients, kill_after = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
host, port = lb.split("//")[1].split(":")
port = int(port)
passed = failed = 0
def check(name, cond, why=""):
    global passed, failed
    if cond:
        passed += 1; print(f"ok   {name}")
    else:
        failed += 1; print(f"FAIL {name}: {why}")
    sys.stdout.flush()

C, H, W = 5, 24, 24
def npy(descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape))
    header = header.ljust(64 * ((len(header) + 11) // 64 + 1) - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload
rng = random.Random(20261129)
batches = []
for i in range(count):
    labels = [255 if rng.random() < 0.1 else rng.randrange(C) for _ in range(H * W)]
    logits = [rng.random() * 4 - 2 + (1.5 if labels[p] == k else 0.0)
              for k in range(C) for p in range(H * W)]
    batches.append((npy("<f4", (1, C, H, W), struct.pack(f"<{len(logits)}f", *logits)),
                    npy("|u1", (1, H, W), bytes(labels))))

def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(host, port, timeout=60)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return 0, str(e).encode()
    finally:
        c.close()

def post(i, params):
    boundary = "segloss" + uuid.uuid4().hex
    out = bytearray()
    for name, data in (("logits", batches[i][0]), ("mask", batches[i][1]),
                       ("params", json.dumps(params).encode())):
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    status, body = request("POST", "/v1/evaluate", bytes(out),
                           {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None

# the run: `clients` threads at once; the victim replica is killed after kill_after answers
results, lock, done = {}, threading.Lock(), [0]
killed_at = [None]
def one(i):
    status, doc = post(i, {"run": "scale", "step": 1, "confusion_matrix": True})
    with lock:
        results[i] = (status, doc)
        done[0] += 1
        if done[0] == kill_after:
            os.kill(victim, signal.SIGKILL)
            killed_at[0] = done[0]
start = time.time()
with ThreadPoolExecutor(clients) as pool:
    list(pool.map(one, range(count)))
elapsed = time.time() - start
codes = {}
for status, _ in results.values():
    codes[status] = codes.get(status, 0) + 1
print(f"     {count} posts by {clients} clients in {elapsed:.1f} s, replica killed after "
      f"{killed_at[0]} answers; statuses {codes}")
answered = {i: doc for i, (status, doc) in results.items() if status == 200}
# lost with the killed replica (nginx: 502, or no answer): recorded or not, nobody knows
unknown = [i for i, (status, _) in results.items() if status in (0, 502, 504)]
others = [(i, s, (d or {}).get("detail")) for i, (s, d) in results.items()
          if s != 200 and i not in unknown]
check(f"{len(answered)} of {count} posts answered 200 through nginx, a replica killed mid-run",
      killed_at[0] and len(answered) >= count - 4 * clients, str(codes))
check("no post failed but those lost with the killed replica (502 or no answer)", not others,
      str(others[:3]))

# each lost batch's own matrix, from a request that records nothing (no run); a few answered
# ones too, to see that such a request gives the matrix the recorded one did
pre = {}
for i in unknown + sorted(answered)[:8]:
    status, doc = post(i, {"confusion_matrix": True})
    pre[i] = doc if status == 200 else None
mismatch = [i for i in sorted(answered)[:8] if not pre[i] or
            pre[i]["confusion_matrix"] != answered[i]["confusion_matrix"]]
check("an unrecorded request gives the recorded one's confusion matrix", not mismatch,
      str(mismatch))

missing = []
for i, doc in answered.items():
    status, body = request("GET", f"/v1/evaluations/{doc['id']}")
    if status != 200 or json.loads(body).get("id") != doc["id"]:
        missing.append((i, doc["id"], status))
check(f"all {len(answered)} evaluations answered 200 are in the store "
      "(GET /v1/evaluations/{id})", not missing, f"{len(missing)} missing: {missing[:3]}")

status, body = request("GET", "/v1/runs/scale?confusion_matrix=true")
run = json.loads(body) if status == 200 else {}
agg = run.get("splits", {}).get("val", {})
check("GET /v1/runs/scale?confusion_matrix=true", status == 200 and "confusion_matrix" in agg,
      f"{status} {body[:300]!r}")
def add(a, b):
    return [[x + y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
want = [[0] * C for _ in range(C)]
for doc in answered.values():
    want = add(want, doc["confusion_matrix"])
have = agg.get("confusion_matrix")
extra = agg.get("evaluations", -1) - len(answered)
found = None
if 0 <= extra <= len(unknown) and all(pre.get(i) for i in unknown):
    for subset in itertools.combinations(unknown, extra):
        m = want
        for i in subset:
            m = add(m, pre[i]["confusion_matrix"])
        if m == have:
            found = subset
            break
check(f"the run's confusion matrix is exactly the sum of its batches' ({len(answered)} answered "
      f"200 + {extra} of the {len(unknown)} lost with the replica, which committed first)",
      found is not None, f"evaluations {agg.get('evaluations')}, answered {len(answered)}, "
      f"lost {len(unknown)}; matrix {have} vs answered-only {want}")
check("the aggregate's evaluations == batches == the run's evaluations",
      agg.get("evaluations") == agg.get("batches") == run.get("evaluations"),
      f"{agg.get('evaluations')} {agg.get('batches')} {run.get('evaluations')}")
valid = sum(d["pixels"]["valid"] for d in answered.values()) + \
    sum(pre[i]["pixels"]["valid"] for i in (found or ()))
total = sum(sum(r) for r in have) if have else -1
check("the aggregate's pixels.valid == its matrix total == the recorded batches' valid pixels",
      agg.get("pixels", {}).get("valid") == total == valid,
      f"{agg.get('pixels')} {total} {valid}")
print(f"{passed} passed, {failed} failed")
EOF
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$work/check.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/check.out" | tail -n 1)
if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
else
    bad "the clients' checks did not finish"
fi

# ---- 3. PostgreSQL restarted under a live replica ------------------------------------------

R0=http://127.0.0.1:${ports[0]}
CASE=tests/golden/absent_classes
echo '{"run": "restart", "step": 1}' >"$work/params_restart.json"
post_r0() { # answer-file headers-file -> the HTTP code
    curl -s --max-time 30 -o "$1" -D "$2" -w '%{http_code}' -F "logits=@$CASE/logits.npy" \
        -F "mask=@$CASE/mask_0.png" -F "params=<$work/params_restart.json" "$R0/v1/evaluate"
}
run_evaluations() {
    curl -s --max-time 10 "$R0/v1/runs/restart" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("evaluations"))' 2>/dev/null
}
if pg_cluster_server_stop; then
    code=$(post_r0 "$work/b503" "$work/h503")
    [ "$code" = 503 ] && grep -qi '^retry-after' "$work/h503" &&
        ok "PostgreSQL down: a post with a run answers 503 with Retry-After" ||
        bad "PostgreSQL down: a post with a run answered $code: $(head -c 300 "$work/b503")"
    code=$(curl -s -o "$work/b503" -w '%{http_code}' --max-time 30 "$R0/v1/runs/scale")
    [ "$code" = 503 ] && ok "PostgreSQL down: GET /v1/runs/scale answers 503" ||
        bad "PostgreSQL down: GET /v1/runs/scale answered $code: $(head -c 300 "$work/b503")"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$R0/livez")
    [ "$code" = 200 ] && kill -0 "${pids[0]}" 2>/dev/null &&
        ok "PostgreSQL down: the replica stays live" || bad "the replica died with PostgreSQL"
    if pg_cluster_server_start; then
        code=000
        for _ in $(seq 50); do
            code=$(post_r0 "$work/after.json" "$work/after.h")
            [ "$code" = 200 ] && break
            sleep 0.2
        done
        n=$(run_evaluations)
        [ "$code" = 200 ] && [ "$n" = 1 ] &&
            ok "PostgreSQL back: the same replica records again (no restart of seglossd)" ||
            bad "PostgreSQL back: a post answered $code, run evaluations $n:" \
                "$(head -c 200 "$work/after.json")"
    else
        bad "PostgreSQL did not start again"
    fi
else
    bad "could not stop PostgreSQL"
fi

# SIGTERM: the surviving replica drains and exits 0 (under ASan: no leaks either)
kill -TERM "${pids[0]}" 2>/dev/null
status=timeout
for _ in $(seq 300); do
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        wait "${pids[0]}"; status=$?
        break
    fi
    sleep 0.1
done
[ "$status" = 0 ] && ok "the surviving replica exits 0 on SIGTERM" ||
    bad "the surviving replica on SIGTERM: exit $status: $(tail -n 5 "$work/replica0.log")"
exit 0
