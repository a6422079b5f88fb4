#!/usr/bin/env bash
# make bench: every benchmark, each against its floor or peer measured in the same run.
#
# The loss pass runs in ROUNDS rounds (default 5). A round is one tests/bench/bench_loss --round
# (the memory floor, a plain FMA loop, each kernel the CPU has on 1 and 2 threads run by run
# against an FMA loop in its own instructions, ...) and
# then the PyTorch seed functions (tests/bench/bench_torch.py, one process kept between rounds,
# warmed up once per thread count) on the same batch at 1 and 2 threads; every round's figures
# are printed with the load average at its start, and the summary gives each ratio's range over
# the rounds, each ratio taken within one round. Rounds stop early, after at least 3, once
# LOSS_BUDGET_S (default 360) seconds have gone, which keeps make bench near 10 minutes on a
# loaded machine (PyTorch on 1 thread then takes 30 s a run). The PyTorch rows need Debian's
# python3-torch (`scripts/install-deps.sh bench` installs it); they are skipped, and say so,
# without it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
LOSS_BUDGET_S=${LOSS_BUDGET_S:-360}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
avx512=$(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | sed 's/avx512//' | xargs | tr ' ' ',' || true)
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
     "AVX-512: ${avx512:-none (the avx512 rows are skipped)}"
echo "## loss library: $ROUNDS rounds (tests/bench/bench_loss.c, tests/bench/bench_torch.py)"
"$BUILD/tests/bench_loss" --dump "$tmp"
torch=0
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    torch=1
    coproc TORCH { /usr/bin/python3 tests/bench/bench_torch.py "$tmp" --serve; }
    # its start-up (import torch, the one-hot target: seconds of CPU) overlapped round 1, whose
    # AVX2 2-thread run then got no second CPU (speed-up 0.98-1.04x in two runs, 1.6-2.0x after)
    IFS= read -r line <&"${TORCH[0]}"
    [ "$line" = ready ] || { echo "bench_torch.py did not start: $line" >&2; exit 1; }
else
    echo "(python3-torch not installed: PyTorch rows skipped; scripts/install-deps.sh bench)"
fi
start=$SECONDS
for round in $(seq 1 "$ROUNDS"); do
    if [ "$round" -gt 3 ] && [ $((SECONDS - start)) -gt "$LOSS_BUDGET_S" ]; then
        echo "(stopping after $((round - 1)) rounds: over LOSS_BUDGET_S=$LOSS_BUDGET_S s)"
        break
    fi
    echo "### round $round, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$BUILD/tests/bench_loss" --round | tee "$tmp/round.txt"
    if [ "$torch" = 1 ]; then
        for threads in 1 2; do
            echo "$threads" >&"${TORCH[1]}"
            IFS= read -r line <&"${TORCH[0]}"
            echo "row torch_${threads}t ${line#torch_seed_ms=} 0" | tee -a "$tmp/round.txt"
        done
    fi
    sed -n "s/^row /$round /p" "$tmp/round.txt" >>"$tmp/rounds.txt"
    sed -n "s/^scaling /$round /p" "$tmp/round.txt" >>"$tmp/scaling.txt"
done
if [ "$torch" = 1 ]; then
    eval "exec ${TORCH[1]}>&-"
    wait "$TORCH_PID" || true
fi
echo "### summary, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(cpu/wall: process CPU time over wall time, about 2 when both threads ran all along;" \
     "not measured for torch)"
/usr/bin/python3 tests/bench/summarize_rounds.py "$tmp/rounds.txt" "$tmp/scaling.txt"
# a kernel the CPU lacks has no rows above: say so under the table too, not only in the rounds
sed -n 's/^skipped \(.*\)/(skipped in every round: \1)/p' "$tmp/round.txt"
for b in "$BUILD"/tests/bench_*; do
    case "$(basename "$b")" in bench_loss) continue ;; esac
    echo "## $(basename "$b")"
    "$b"
done
echo "## end to end over HTTP (tests/bench/bench_http.sh)"
BUILD="$BUILD" tests/bench/bench_http.sh
# where the single-image request's time goes: the body's last byte to the answer, against the
# floor server bench_http.sh built (bench_http.sh already needs numpy)
echo "## the single-image request after its body (tests/bench/after_body.py)"
/usr/bin/python3 tests/bench/after_body.py "$BUILD/seglossd" "$BUILD/tests/floor_server" 7 5
echo "## the Python client (tests/bench/bench_client.py)"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 tests/bench/bench_client.py --build "$BUILD"
else
    echo "(python3-numpy not installed: client benchmark skipped)"
fi
