#!/usr/bin/env bash
# Runs the README's examples, api/examples/curl.sh and api/examples/evaluate.py, against a real
# seglossd on a free loopback port, and checks their exit codes and output: the curl tour's
# answers hold the golden case's loss.total both ways, /v1/info and the 422 problem; the
# Python example's loss.total and metrics.miou equal a numpy recomputation of the same batch;
# with no daemon it fails cleanly.
#
# evaluate.py needs numpy (Debian: python3-numpy). The daemon runs under `timeout` and is killed
# on exit. Prints one line per check and ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
DAEMON_LIFETIME_S=120
GOLDEN=tests/golden/voc_palette_weighted
# Debian's python3 has python3-numpy; a pyenv python3 first in PATH may not.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1 # api/examples is imported: leave no __pycache__

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
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

if [ ! -x "$BUILD/seglossd" ]; then
    fail "daemon" "$BUILD/seglossd is not built (make)"
    finish
fi
port=$(free_port)
url=http://127.0.0.1:$port
timeout "$DAEMON_LIFETIME_S" "$BUILD/seglossd" serve --bind 127.0.0.1 --port "$port" \
    --threads 2 --workers 1 --data-dir "$tmp/data" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$url/livez" && break
    sleep 0.1
done
if ! curl -s -o /dev/null --max-time 2 "$url/livez"; then
    fail "daemon starts" "$(tail -n 5 "$tmp/daemon.log")"
    finish
fi

# ---- api/examples/curl.sh ------------------------------------------------------------------
if SEGLOSS_URL=$url timeout 60 api/examples/curl.sh >"$tmp/curl.out" 2>"$tmp/curl.err"; then
    ok "curl.sh exits 0"
else
    fail "curl.sh exits 0" "exit $?: $(tail -n 5 "$tmp/curl.err")"
fi
# Each answer is one line after its "## " heading; check them with the golden expectations.
"$PY" - "$tmp/curl.out" "$GOLDEN/expected.json" >"$tmp/curl.check" 2>&1 <<'EOF'
import json, sys
text = open(sys.argv[1]).read().split("\n")
expected = json.load(open(sys.argv[2]))
sections, name = {}, None
for line in text:
    if line.startswith("## "):
        name = line[3:]
        sections[name] = []
    elif name is not None and line:
        sections[name].append(line)
def body(prefix):
    for key, lines in sections.items():
        if key.startswith(prefix):
            return lines
    raise KeyError(f"no section '{prefix}'")
def close(a, b):
    return abs(a - b) <= 1e-6 * max(abs(b), 1e-3)
def report(name, ok, why=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + why))
info = json.loads(body("What the daemon is")[0])
report("curl.sh shows /v1/info", info.get("service") == "seglossd" and "version" in info
       and "limits" in info, str(info)[:200])
want = expected["loss"]["total"]
for section, label in (("Evaluate, parameters in the query", "query string"),
                       ("Evaluate, the same parameters as a params part", "params part")):
    doc = json.loads(body(section)[0])
    total = doc["loss"]["total"]
    report(f"curl.sh, params in the {label}: loss.total {total} = golden {want}",
           close(total, want) and doc["shape"] == expected["shape"], json.dumps(doc)[:200])
    if label == "params part":
        report("curl.sh, params part: the confusion matrix asked for in the query is there",
               doc.get("confusion_matrix") == expected["confusion_matrix"])
err = body("An error")
problem = json.loads(err[0])
report("curl.sh shows a 422 problem", problem.get("status") == 422 and problem.get("detail")
       and err[-1] == "HTTP status 422", "\n".join(err)[:300])
EOF
while IFS= read -r line; do
    case "$line" in
        "ok   "*) ok "${line#ok   }" ;;
        "FAIL "*) rest=${line#FAIL }; fail "${rest%%: *}" "${rest#*: }" ;;
        *) fail "curl.sh output check" "$line" ;;
    esac
done <"$tmp/curl.check"

# ---- api/examples/evaluate.py --------------------------------------------------------------
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    fail "evaluate.py" "$PY has no numpy (Debian: apt-get install python3-numpy)"
    finish
fi
if timeout 60 "$PY" api/examples/evaluate.py --url "$url" >"$tmp/py.out" 2>"$tmp/py.err"; then
    ok "evaluate.py exits 0"
else
    fail "evaluate.py exits 0" "exit $?: $(tail -n 5 "$tmp/py.err")"
fi
# The same batch recomputed with numpy in float64 (seed semantics: weights 1, main loss CE).
"$PY" - "$tmp/py.out" >"$tmp/py.check" 2>&1 <<'EOF'
import sys
sys.path.insert(0, "api/examples")
import numpy as np
import evaluate as ex
out = dict(line.split(" = ") for line in open(sys.argv[1]).read().splitlines())
logits, labels = ex.make_batch()
x = logits.astype(np.float64)
logp = x - x.max(axis=1, keepdims=True)
logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
valid = labels < ex.C
y = np.where(valid, labels, 0).astype(np.int64)
picked = np.take_along_axis(logp, y[:, None], axis=1)[:, 0]
ce = -picked[valid].mean()
pred = x.argmax(axis=1)
cm = np.bincount(labels[valid].astype(np.int64) * ex.C + pred[valid], minlength=ex.C * ex.C)
cm = cm.reshape(ex.C, ex.C)
diag = np.diag(cm)
miou = (diag / np.maximum(cm.sum(0) + cm.sum(1) - diag, 1)).mean()
for key, want in (("loss.total", ce), ("metrics.miou", miou)):
    got = float(out.get(key, "nan"))
    ok = abs(got - want) <= 2e-6 * max(abs(want), 1e-3)  # printed with 6 decimals
    print(("ok   " if ok else "FAIL ") + f"evaluate.py {key} {got} = numpy {want:.6f}"
          + ("" if ok else ": mismatch"))
EOF
while IFS= read -r line; do
    case "$line" in
        "ok   "*) ok "${line#ok   }" ;;
        "FAIL "*) rest=${line#FAIL }; fail "${rest%%: *}" "${rest#*: }" ;;
        *) fail "evaluate.py output check" "$line" ;;
    esac
done <"$tmp/py.check"

# With nothing listening, the example says so and exits non-zero.
dead=$(free_port)
if timeout 30 "$PY" api/examples/evaluate.py --url "http://127.0.0.1:$dead" \
    >/dev/null 2>"$tmp/dead.err"; then
    fail "evaluate.py with no daemon exits non-zero" "it exited 0"
elif grep -q '^evaluate.py: ' "$tmp/dead.err"; then
    ok "evaluate.py with no daemon exits non-zero with a message"
else
    fail "evaluate.py with no daemon exits non-zero with a message" "$(tail -n 3 "$tmp/dead.err")"
fi
finish
