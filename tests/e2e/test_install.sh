#!/usr/bin/env bash
# The library as a library, and the Python client as a package:
#  - `make install PREFIX=/usr/local DESTDIR=<tmp>` installs seglossd, libsegloss.a, the shared
#    library with its versioned soname, the public headers, segloss.pc and seglossd(1);
#  - a C program outside the tree, built with `pkg-config --cflags --libs segloss` alone
#    (PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR into the staging folder), evaluates a golden
#    case against the installed shared library and matches PyTorch's answer to 1e-6;
#  - `pip install --no-build-isolation --no-index ./clients/python` into a venv made with
#    --system-site-packages (Debian's setuptools and wheel; no package index reachable)
#    installs a package that imports, runs `python -m segloss --help` and the `segloss` script,
#    and finds the installed libsegloss.so.0 for segloss.local.
# Sanitizer builds skip it: installing is the same whatever the flags.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: ${2:-}"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi; }
if [ "$BUILD" != build ]; then
    echo "skipped under BUILD=$BUILD"; echo "0 passed, 0 failed"; exit 0
fi
tmp=$(mktemp -d /tmp/segloss_install_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if make --no-print-directory install PREFIX=/usr/local DESTDIR="$stage" >"$tmp/make.log" 2>&1
then ok "make install DESTDIR=... PREFIX=/usr/local"
else bad "make install" "$(tail -5 "$tmp/make.log")"; fi
p=$stage/usr/local
check "seglossd installed and runs" "$p/bin/seglossd" --version
check "libsegloss.a installed" test -f "$p/lib/libsegloss.a"
check "libsegloss.so -> libsegloss.so.0 -> libsegloss.so.0.1.0" \
    test "$(readlink "$p/lib/libsegloss.so")" = libsegloss.so.0.1.0 -a \
         "$(readlink "$p/lib/libsegloss.so.0")" = libsegloss.so.0.1.0
soname=$(readelf -d "$p/lib/libsegloss.so.0.1.0" 2>/dev/null | sed -n 's/.*soname: \[\(.*\)\]/\1/p')
check "the shared library's soname is libsegloss.so.0 (got '$soname')" test "$soname" = libsegloss.so.0
check "every public header installed" \
    bash -c "for h in include/segloss/*.h; do test -f '$p/include/segloss/'\$(basename \$h) || exit 1; done"
check "segloss.pc installed" test -f "$p/lib/pkgconfig/segloss.pc"
check "seglossd(1) installed" test -f "$p/share/man/man1/seglossd.1"
man=$(MANWIDTH=100 man -l "$p/share/man/man1/seglossd.1" 2>/dev/null)
check "the man page lists every flag of seglossd --help" \
    bash -c "for f in \$('$p/bin/seglossd' --help | awk '/^  --[a-z]/ {print \$1}'); do grep -q -- \"\$f\" <<<\"\$1\" || exit 1; done" _ "$man"
check "  ... with their environment twins and examples" \
    bash -c 'grep -q SEGLOSS_STORE <<<"$1" && grep -q EXAMPLES <<<"$1" && grep -q "seglossd eval" <<<"$1"' _ "$man"

export PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs segloss 2>&1)
check "pkg-config --modversion segloss" test "$(pkg-config --modversion segloss)" = \
    "$("$p/bin/seglossd" --version | awk '{print $NF}')"
if cc -std=c11 -Wall -Wextra -Werror -o "$tmp/evaluate_case" tests/install/evaluate_case.c \
      $flags 2>"$tmp/cc.log"; then ok "a C program builds with pkg-config --cflags --libs segloss ($flags)"
else bad "a C program builds with pkg-config" "$(head -5 "$tmp/cc.log")"; fi
check "  ... and links the shared library" bash -c "readelf -d '$tmp/evaluate_case' | grep -q 'libsegloss.so.0'"
case=tests/golden/mask_npy_batch
out=$(LD_LIBRARY_PATH=$p/lib "$tmp/evaluate_case" $case/logits.npy $case/mask.npy 2>&1)
if $PY - "$case/expected.json" "$out" <<'PYEOF'
import json, sys
exp = json.load(open(sys.argv[1]))
got = [float(x) for x in sys.argv[2].split()]
want = [exp["loss"]["total"], exp["loss"]["ce"], exp["metrics"]["miou"], exp["metrics"]["mean_dice"]]
sys.exit(0 if len(got) == 4 and all(abs(g - w) <= 1e-6 * max(abs(w), 1e-3) for g, w in zip(got, want)) else 1)
PYEOF
then ok "the installed library evaluates golden case mask_npy_batch to 1e-6"
else bad "the installed library evaluates a golden case" "$out"; fi

# the Python client, installed offline into a venv that sees Debian's numpy, setuptools, wheel
if $PY -m venv --system-site-packages "$tmp/venv" >"$tmp/venv.log" 2>&1; then
    # from a copy: setuptools writes build/ and *.egg-info beside the sources
    cp -r clients/python "$tmp/client-src"
    if "$tmp/venv/bin/pip" install --no-build-isolation --no-index --no-cache-dir \
            "$tmp/client-src" >"$tmp/pip.log" 2>&1
    then ok "pip install --no-build-isolation --no-index ./clients/python (offline)"
    else bad "pip install ./clients/python" "$(tail -5 "$tmp/pip.log")"; fi
    (cd "$tmp" && check "the installed package imports from outside the tree" \
        "$tmp/venv/bin/python" -c "import segloss, os; assert 'site-packages' in segloss.__file__; segloss.Client('http://127.0.0.1:1')")
    check "python -m segloss --help" "$tmp/venv/bin/python" -m segloss --help
    check "the segloss console script" "$tmp/venv/bin/segloss" history --help
    (cd "$tmp" && if SEGLOSS_LIB= LD_LIBRARY_PATH=$p/lib "$tmp/venv/bin/python" - "$OLDPWD/$case" <<'PYEOF'
import json, sys, numpy as np
from segloss import local
case = sys.argv[1]
got = local.evaluate(np.load(case + "/logits.npy"), np.load(case + "/mask.npy"))
exp = json.load(open(case + "/expected.json"))
assert abs(got["loss"]["total"] - exp["loss"]["total"]) <= 1e-6 * abs(exp["loss"]["total"])
PYEOF
    then ok "segloss.local finds the installed libsegloss.so.0"
    else bad "segloss.local with the installed library"; fi)
else
    bad "python3 -m venv --system-site-packages" "$(tail -3 "$tmp/venv.log")"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
