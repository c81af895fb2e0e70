# SPDX-License-Identifier: MIT
# tests/cli/test_gpu_bundle.sh - scripts/gpu-bundle.sh makes one folder that
# runs on a machine with none of our Debian packages: every library its
# programs need (libinih, libsqlite3, libmicrohttpd and its chain) is in its
# lib/, and in a clean environment (env -i, LD_LIBRARY_PATH=bundle/lib
# only) run-all.sh starts, skips each GPU check saying why and prints its
# table; vramd (its dashboard and queue) and Python's libvram load the
# bundle's copies.
. "$(dirname "$0")/lib.sh"
if ldd "$VRAM" 2>/dev/null | grep -q 'lib[at]san'; then
    echo "skip - $file/all: the bundle is made from the plain build"; exit 77
fi
b=$tmp/bundle
expect bundle_made 0 'needs glibc 2\.[0-9]+ or newer' -- "$VRAM_TOP/scripts/gpu-bundle.sh" "$VRAM_BUILD" "$b"
expect bad_build_dir 2 "build folder '/nonexistent' does not exist" -- "$VRAM_TOP/scripts/gpu-bundle.sh" /nonexistent "$tmp/x"
clean() { env -i PATH=/usr/bin:/bin TMPDIR="$tmp" LD_LIBRARY_PATH="$b/lib" "$@"; }

# Every library our programs (and the dashboard's dlopened libmicrohttpd)
# need is the bundle's or glibc's.
outside=
for f in "$b"/bin/vram "$b"/lib/*.so* "$b"/bench/* "$b"/tests/helpers/*; do
    clean ldd "$f" 2>&1 | awk -v b="$b/lib/" -v f="$f" '
        /not found/ { print f ": " $0 }
        $2 == "=>" && $3 ~ /^\// && index($3, b) != 1 && $1 !~ /^(libc|libm|libpthread|libdl|librt|ld-linux)/ { print f ": " $0 }'
done >"$tmp/outside"
[ ! -s "$tmp/outside" ] && ok every_library_in_the_bundle || not_ok every_library_in_the_bundle "$(head -5 "$tmp/outside")"
for l in libinih.so.1 libsqlite3.so.0 libmicrohttpd.so.12 libgnutls.so.30 libvram.so.0 libvram_shim.so; do
    [ -f "$b/lib/$l" ] && [ ! -L "$b/lib/$l" ] && ok "carries_$l" || not_ok "carries_$l" "not a file in $b/lib"
done
expect manifest_says_glibc 0 '^glibc 2\.[0-9]+$' -- cat "$b/MANIFEST"

# The one script, in a clean environment: it starts, every GPU check skips
# with its reason, one table.
expect run_all_skips_cleanly 0 'no nvidia-smi|lists no GPU' -- clean "$b/run-all.sh" --tests-only
n=$(ls "$VRAM_TOP"/tests/gpu/test_*.sh | wc -l)
expect_lines one_row_per_gpu_check '^gpu/test_[a-z_]+\.sh +0 +0 +1 .* [a-z]' "$n"
expect_lines table_header '^check +ok +failed +skipped +time +note$' 1
expect run_all_bad_seconds 2 "--seconds: 'soon' is not a number of seconds" -- clean "$b/run-all.sh" --seconds soon

# vramd from the bundle: the dashboard's libmicrohttpd and the queue's
# SQLite are the bundle's.
mkdir -p "$tmp/state"
env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$b/lib" VRAM_BACKEND=sim VRAM_SIM="T4:16GiB" VRAM_SIM_STATE="$tmp/state" VRAM_SOCKET="$tmp/s.sock" \
    VRAM_DB="$tmp/q.db" VRAM_HISTORY=- VRAM_TOKEN_FILE="$tmp/token" VRAM_HTTP=127.0.0.1:0 \
    "$b/bin/vram" serve >"$tmp/serve.log" 2>&1 &
pid=$!
wait_for "$tmp/serve.log" 'dashboard http://' 10
for l in libmicrohttpd.so.12 libsqlite3.so.0; do    # both dlopened
    if grep -q "$b/lib/$l" /proc/$pid/maps 2>/dev/null; then ok "vramd_loads_the_bundles_$l"
    else not_ok "vramd_loads_the_bundles_$l" "$(tail -3 "$tmp/serve.log"; grep "${l%%.so*}" /proc/$pid/maps | head -2)"; fi
done
kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null

# Python's binding loads the bundle's libvram and, with it, its libinih.
expect python_loads_the_bundles_libvram 0 "$b/lib/libinih.so.1" -- clean PYTHONPATH="$b/python" \
    VRAM_LIBRARY="$b/lib/libvram.so" python3 -c 'import vram, sys; vram.version() if hasattr(vram, "version") else None; sys.stdout.write(open("/proc/self/maps").read())'
finish
