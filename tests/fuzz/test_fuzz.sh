# SPDX-License-Identifier: MIT
# tests/fuzz/test_fuzz.sh - runs each libFuzzer target for a bounded time
# (VRAM_FUZZ_SECONDS, default 20) from its seed corpus; a crash, leak or
# sanitizer report fails it.  Runs in the plain phase; needs clang.
. "$(dirname "$0")/../cli/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: fuzzing runs in the plain phase"; exit 77
fi
if ! command -v clang >/dev/null; then
    echo "skip - $file/all: clang is not installed"; exit 77
fi
seconds=${VRAM_FUZZ_SECONDS:-20}
if ! make -C "$VRAM_TOP" -s fuzz >"$tmp/build.log" 2>&1; then
    not_ok build "$(tail -5 "$tmp/build.log")"; finish
fi
for bin in "$VRAM_TOP"/build-fuzz/fuzz_*; do
    name=$(basename "$bin")
    corpus=$VRAM_TOP/tests/fuzz/corpus/${name#fuzz_}
    work=$tmp/corpus-$name
    mkdir -p "$work"
    if "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
        -artifact_prefix="$tmp/" "$work" "$corpus" >"$tmp/$name.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$tmp/$name.log" | grep -o '[0-9]*')
        echo "# $name: ${runs:-?} runs in ${seconds}s, no crash"
        ok "$name"
    else
        not_ok "$name" "$(grep -E 'ERROR|SUMMARY|crash' "$tmp/$name.log" | head -5)"
        ls "$tmp"/crash-* 2>/dev/null | head -1 | xargs -r -I{} cp {} "$VRAM_BUILD/"
    fi
done
finish
