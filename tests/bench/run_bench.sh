#!/usr/bin/env bash
# make bench: every benchmark, each comparing against its floor or peer measured in the same run.
# The PyTorch comparison runs when Debian's python3-torch is installed (apt-get install
# python3-torch python3-numpy); it is skipped, and says so, otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "## loss library (tests/bench/bench_loss.c)"
"$BUILD/tests/bench_loss" --dump "$tmp" | tee "$tmp/loss.txt"
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    ours2=$(sed -n 's/^segloss_avx2_2t_ms=//p' "$tmp/loss.txt")
    ours1=$(sed -n 's/^segloss_avx2_1t_ms=//p' "$tmp/loss.txt")
    for threads in 1 2; do
        t=$(/usr/bin/python3 tests/bench/bench_torch.py "$tmp" "$threads" | sed -n 's/^torch_seed_ms=//p')
        ours=$([ "$threads" = 1 ] && echo "$ours1" || echo "$ours2")
        awk -v t="$t" -v o="$ours" -v n="$threads" 'BEGIN {
            printf "| PyTorch seed functions, %d thread(s) | %.1f ms | segloss %.1f ms | %.0fx faster |\n", n, t, o, t / o }'
    done
else
    echo "(python3-torch not installed: PyTorch comparison skipped)"
fi
for b in "$BUILD"/tests/bench_*; do
    case "$(basename "$b")" in bench_loss) continue ;; esac
    echo "## $(basename "$b")"
    "$b"
done
echo "## end to end over HTTP (tests/bench/bench_http.sh)"
BUILD="$BUILD" tests/bench/bench_http.sh
echo "## the Python client (tests/bench/bench_client.py)"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 tests/bench/bench_client.py --build "$BUILD"
else
    echo "(python3-numpy not installed: client benchmark skipped)"
fi
