# SPDX-License-Identifier: MIT
# tests/fuzz/test_fuzz.sh - runs each libFuzzer target for a bounded time
# (VRAM_FUZZ_SECONDS, default 20) from its seed corpus, as many at once as
# there are cores; a crash, leak or sanitizer report fails it.  Runs in the
# plain phase; needs clang.
. "$(dirname "$0")/../cli/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: fuzzing runs in the plain phase"; exit 77
fi
if ! command -v clang >/dev/null; then
    echo "skip - $file/all: clang is not installed"; exit 77
fi
seconds=${VRAM_FUZZ_SECONDS:-20}
cores=$(nproc 2>/dev/null || echo 1)
if ! make -C "$VRAM_TOP" -s -j"$cores" fuzz >"$tmp/build.log" 2>&1; then
    not_ok build "$(tail -5 "$tmp/build.log")"; finish
fi
# fuzz_one BIN: one target for $seconds from its seed corpus; its status.
fuzz_one() {
    local name corpus work
    name=$(basename "$1")
    corpus=$VRAM_TOP/tests/fuzz/corpus/${name#fuzz_}
    work=$tmp/corpus-$name
    mkdir -p "$work"
    "$1" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
        -artifact_prefix="$tmp/$name-" "$work" "$corpus" >"$tmp/$name.log" 2>&1
}
# The targets run side by side, as many at once as there are cores (each
# is one process), and are told in order.
bins=("$VRAM_TOP"/build-fuzz/fuzz_*)
for ((at = 0; at < ${#bins[@]}; at += cores)); do
    pids=()
    for bin in "${bins[@]:at:cores}"; do
        fuzz_one "$bin" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        bin=${bins[at + i]}
        name=$(basename "$bin")
        if wait "${pids[i]}"; then
            runs=$(grep -o 'Done [0-9]* runs' "$tmp/$name.log" | grep -o '[0-9]*')
            echo "# $name: ${runs:-?} runs in ${seconds}s, no crash"
            ok "$name"
        else
            not_ok "$name" "$(grep -E 'ERROR|SUMMARY|crash' "$tmp/$name.log" | head -5)"
            ls "$tmp/$name"-crash-* 2>/dev/null | head -1 | xargs -r -I{} cp {} "$VRAM_BUILD/"
        fi
    done
done
finish
