#!/usr/bin/env bash
# Builds every libFuzzer harness (tests/fuzz/fuzz_<name>.c) with clang and ASan+UBSan into
# build-fuzz/, then runs each for FUZZ_SECONDS on a scratch copy of its seed corpus and
# crashers, one at a time. Prints each harness's execution count; exits non-zero when a
# harness fails to build or finds a crash (the reproducer is in build-fuzz/artifacts_<name>/;
# copy it to tests/crashers/<name>/ once fixed). `make fuzz FUZZ_SECONDS=N` calls this.
#
#   FUZZ_SECONDS=600 FUZZ_HARNESSES="png jpeg" nice -n 19 tests/fuzz/run_fuzz.sh
#
# The committed corpus is not modified. To fold interesting new inputs back in (keep it
# small): build-fuzz/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> build-fuzz/corpus_<name>
set -u
cd "$(dirname "$0")/../.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-build-fuzz}
CC_FUZZ=${CC_FUZZ:-clang}
HARNESSES=${FUZZ_HARNESSES:-$(ls tests/fuzz/fuzz_*.c | sed -E 's|.*/fuzz_(.*)\.c|\1|')}
# The decoders and what they use, rather than lib/*.c: the harnesses need nothing else, and
# the loss kernels' CPU-dispatch builtins are not all known to older clang releases.
LIB_SRC=${FUZZ_LIB_SRC:-"lib/common/errors.c lib/common/tensor.c lib/decode/format.c lib/decode/npy.c lib/decode/safetensors.c
    lib/decode/tensor_checks.c lib/decode/png_reader.c lib/decode/png_mask.c lib/decode/png_encode.c lib/decode/image_rgb.c"}
mkdir -p "$OUT"

# A harness of server code names the files it needs beyond LIB_SRC in a comment line
# "fuzz-extra-src: server/http/multipart.c server/http/bufpool.c".
# The list may run over several comment lines (clang-format wraps it); a line of " *" ends it.
extra_src() {
    sed -n '/^ \* fuzz-extra-src: /,/^ \*$/p' "tests/fuzz/fuzz_$1.c" |
        sed -e 's/^ \* fuzz-extra-src: //' -e 's/^ \*//' | tr '\n' ' '
}

# Inputs longer than a few tens of KiB only slow the search down for these formats.
max_len() {
    case $1 in
        npy) echo 16384 ;;
        safetensors) echo 16384 ;;
        params) echo 8192 ;;
        *) echo 65536 ;;
    esac
}

status=0
summary=()
for name in $HARNESSES; do
    bin=$OUT/fuzz_$name
    echo "== building $bin"
    if ! $CC_FUZZ -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Iinclude -Ilib -Iserver "tests/fuzz/fuzz_$name.c" $LIB_SRC $(extra_src "$name") \
        -lpng -lz -lturbojpeg -lcjson -lm -pthread -o "$bin"; then
        summary+=("fuzz_$name: BUILD FAILED"); status=1; continue
    fi
    corpus=$OUT/corpus_$name
    artifacts=$OUT/artifacts_$name/
    rm -rf "$corpus" && mkdir -p "$corpus" "$artifacts"
    cp tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
    cp tests/crashers/"$name"/* "$corpus"/ 2>/dev/null
    log=$OUT/fuzz_$name.log
    echo "== running $bin for ${FUZZ_SECONDS}s (log: $log)"
    "$bin" -max_total_time="$FUZZ_SECONDS" -max_len="$(max_len "$name")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
        "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '#[0-9]+[[:space:]]+DONE' "$log" | grep -oE 'cov: [0-9]+ ft: [0-9]+' | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 10
        summary+=("fuzz_$name: FAILED (exit $rc) after ${execs:-?} executions; see $log")
        status=1
    else
        summary+=("fuzz_$name: ${execs:-?} executions in ${FUZZ_SECONDS}s, no crash (${cov:-})")
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
