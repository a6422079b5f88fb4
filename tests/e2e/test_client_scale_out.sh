#!/usr/bin/env bash
# The Python client against two seglossd replicas on one PostgreSQL store behind nginx:
#   - an Idempotency-Key recorded through replica 0 is replayed by replica 1 (same evaluation
#     id, nothing merged) and the key with another body is a 422 there;
#   - a loop logs 200 batches through nginx while replica 1 is kill -9'ed and restarted; after
#     flush the run holds 200 evaluations and its aggregate equals one post of all 200 batches
#     bit for bit (the client's retries of 502s and lost answers count no batch twice);
#   - four processes posting shards of one validation set through nginx equal one post of all.
# PostgreSQL and nginx as in test_scale_out.sh (tests/e2e/pg_cluster.sh); everything on
# 127.0.0.1, stopped on exit. Prints "N passed, N failed" last.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DAEMON=$BUILD/seglossd
WATCHDOG_S=400
pass=0; fail=0; finished=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

. tests/e2e/pg_cluster.sh
. tests/e2e/nginx_lb.sh

work=$(mktemp -d /tmp/segloss_client_scale_XXXXXX)
pids=()
nginx_pid=""
finish() {
    [ "$finished" -eq 1 ] && return
    finished=1
    [ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
    local p
    for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" 2>/dev/null; done
    [ -f "$work/restarted.pid" ] && kill -9 "$(cat "$work/restarted.pid")" 2>/dev/null
    if [ -n "$nginx_pid" ]; then
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
PY=$(command -v /usr/bin/python3 || command -v python3)
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { bad "nginx is not installed (apt-get install nginx)"; exit 1; }
pg_cluster_start || { bad "PostgreSQL 15 did not start"; exit 1; }
ok "PostgreSQL started on 127.0.0.1:$PG_PORT"
store_url=$(pg_cluster_createdb segloss_client)
ports=()
for i in 0 1; do
    ports[$i]=$(free_port)
    mkdir -p "$work/data$i"
    "$DAEMON" serve --port "${ports[$i]}" --bind 127.0.0.1 --store "$store_url" \
        --data-dir "$work/data$i" --log-format text >"$work/replica$i.log" 2>&1 &
    pids[$i]=$!
done
for i in 0 1; do
    for _ in $(seq 150); do
        curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:${ports[$i]}/livez" && break
        sleep 0.1
    done
done
nginx_port=$(free_port)
nginx_lb_start "$work" "$nginx_port" 2s off "${ports[0]}" "${ports[1]}"
for _ in $(seq 100); do
    curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$nginx_port/livez" && break
    sleep 0.1
done
disown "${pids[0]}" "${pids[1]}"
"$PY" - "http://127.0.0.1:$nginx_port" "${ports[0]}" "${ports[1]}" "${pids[1]}" "$DAEMON" \
      "$store_url" "$work" >"$work/check.out" 2>&1 <<'PYEOF'
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "e2e"))
import client_common as cc
import numpy as np
segloss = cc.import_client()
lb, port0, port1, victim, daemon, store_url, work = sys.argv[1:8]
passed = failed = 0
def check(name, cond, why=""):
    global passed, failed
    if cond:
        passed += 1; print(f"ok   {name}")
    else:
        failed += 1; print(f"FAIL {name}: {why}")
    sys.stdout.flush()
rng = np.random.default_rng(11)
def batch(n=2, c=5, h=24, w=24):
    lg = rng.standard_normal((n, c, h, w)).astype(np.float32)
    lb_ = rng.integers(0, c, (n, h, w)).astype(np.uint8)
    lb_[:, :1, :] = 255
    return lg, lb_
def agg(client, run):
    return cc.numbers(client.run(run, confusion_matrix=True)["splits"]["val"])

r0 = segloss.Client(f"http://127.0.0.1:{port0}")
r1 = segloss.Client(f"http://127.0.0.1:{port1}")
lg, lb_ = batch()
a0 = r0.evaluate(lg, lb_, run="cross", step=1, idempotency_key="cross-key")
a1 = r1.evaluate(lg, lb_, run="cross", step=1, idempotency_key="cross-key")
check("a key recorded through replica 0 is replayed by replica 1 (same id)", a0.id == a1.id)
check("  ... and merged once", r1.run("cross")["evaluations"] == 1)
try:
    r1.evaluate(lg * 2, lb_, run="cross", step=1, idempotency_key="cross-key")
    check("the key with another body on replica 1 raises", False, "no error")
except segloss.SeglossError as e:
    check("the key with another body on replica 1 is a 422", e.status == 422, vars(e))

batches = [batch() for _ in range(200)]
# in front of nginx, a proxy that loses every 5th answer after the batch was recorded
proxy = cc.LossyProxy(int(lb.rsplit(":", 1)[1]), every=5)
client = segloss.Client(proxy.url, retries=40, backoff=0.05, max_backoff=0.5, queue_size=16, senders=4)
restarted = None
for i, (x, y) in enumerate(batches):
    client.log(x, y, run="chaos", step=1, confusion_matrix=True)
    if i == 70:
        os.kill(int(victim), 9)
    if i == 130:
        log = open(os.path.join(work, "replica1b.log"), "ab")
        restarted = subprocess.Popen([daemon, "serve", "--port", port1, "--bind", "127.0.0.1",
                                      "--store", store_url, "--data-dir",
                                      os.path.join(work, "data1")], stdout=log, stderr=log)
        open(os.path.join(work, "restarted.pid"), "w").write(str(restarted.pid))
check("flush after kill -9 of a replica and its restart", client.flush(240), client.sent)
check("every batch recorded, none given up", client.sent == 200 and client.failed == 0,
      (client.sent, client.failed, client.errors[:2]))
print(f"     {client.retried} retries, {proxy.lost} answers lost")
check("answers of recorded batches were lost on the way", proxy.lost >= 10, proxy.lost)
ref = segloss.Client(lb, retries=20)
ev = ref.run("chaos")["splits"]["val"]["evaluations"]
check("the run holds 200 evaluations (none twice)", ev == 200, ev)
ref.evaluate(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]),
             run="chaos-one", step=1, confusion_matrix=True)
got, want = agg(ref, "chaos"), agg(ref, "chaos-one")
check("aggregate through nginx = one post of all 200 batches, bit for bit", got == want,
      [k for k in want if got.get(k) != want.get(k)])

env = dict(os.environ, CLIENT_DIR=cc.CLIENT_DIR, SEGLOSS_URL=lb, WORLD_SIZE="4")
procs = [subprocess.Popen([sys.executable, "-c", cc.SHARD_SCRIPT], env=dict(env, RANK=str(r)))
         for r in range(4)]
codes = [p.wait(timeout=120) for p in procs]
check("4 ranks posted their shards through nginx", codes == [0] * 4, codes)
logits, labels = cc.shard_set()
ref.evaluate(logits, labels, run="dp-one", step=3)
got, want = agg(ref, "dp"), agg(ref, "dp-one")
check("4 shards on 2 replicas = one post of the whole set, bit for bit", got == want,
      [k for k in want if got.get(k) != want.get(k)])
if restarted:
    restarted.kill()
print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
PYEOF
rc=$?
grep -v '^ok ' "$work/check.out" | grep -vE '^[0-9]+ passed, [0-9]+ failed' | tail -n 30
grep '^ok ' "$work/check.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/check.out" | tail -n 1)
if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && bad "the client checks exited $rc"
else
    bad "the client checks printed no summary (exit $rc)"
fi
# the EXIT trap prints the summary; the exit status says whether everything passed
[ "$fail" -eq 0 ]
