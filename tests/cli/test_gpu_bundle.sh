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
# It travels as the device tool's carry (64 MiB at most): kept near 17 MB.
size=$(du -sb "$b" | cut -f1)
[ "$size" -lt $((24 << 20)) ] && ok bundle_small_enough || not_ok bundle_small_enough "$size bytes (carry limit 64 MiB; kept under 24 MiB)"

# A dry run of the GPU checks' bodies from the bundle alone: a stand-in
# nvidia-smi for the stub NVML's default card, the bundle's stub NVML and
# libcuda on LD_LIBRARY_PATH.  What needs no real driver passes; nothing
# fails for a file or module the bundle lacks.  (cuda_vs_nvml needs a real
# driver: the stand-in libcuda has no cuDeviceGetUuid and NVML's process
# list is a script, not this helper.)
mkdir -p "$tmp/fakebin"
cat >"$tmp/fakebin/nvidia-smi" <<'SMI'
#!/bin/bash
case "$*" in *-L*) echo "GPU 0: Stub GPU (UUID: GPU-stub-0000)"; exit 0 ;; esac
q=
for a in "$@"; do case $a in --query-gpu=*) q=${a#--query-gpu=} ;; esac; done
[ -n "$q" ] || exit 0
out=
IFS=, read -ra f <<<"$q"
for k in "${f[@]}"; do
    case $k in index) v=0 ;; name) v="Stub GPU" ;; memory.total) v=16384 ;; memory.used) v=1024 ;;
        memory.reserved) v=512 ;; driver_version) v=999.0 ;; *) v="[N/A]" ;; esac
    out=${out:+$out, }$v
done
echo "$out"
SMI
chmod +x "$tmp/fakebin/nvidia-smi"
env -i PATH="$tmp/fakebin:/usr/bin:/bin" TMPDIR="$tmp" LD_LIBRARY_PATH="$b/stubs:$b/stubs/cuda:$b/lib" \
    "$b/run-all.sh" --tests-only >"$tmp/dry.out" 2>&1
dry=$(sed -n 's/.*logs in \([^ ,)]*\).*/\1/p' "$tmp/dry.out" | head -1)
for c in test_status_vs_smi/totals_equal_and_used_within_1pct test_cuda_driver/real_oom_was_read \
         test_cuda_driver/real_oom_is_retried test_cuda_driver/mig_mode_reported; do
    if grep -q "^ok - $c\$" "$dry"/*.log 2>/dev/null; then ok "dry_run_$(basename "$c")"
    else not_ok "dry_run_$(basename "$c")" "$(tail -c 600 "$tmp/dry.out")"; fi
done
if grep -lE 'No such file|not found|ModuleNotFoundError|ImportError|command not found' "$dry"/gpu_*.log >"$tmp/missing" 2>/dev/null; then
    not_ok dry_run_lacks_nothing "$(head -3 "$tmp/missing" | xargs grep -hE 'No such file|not found|ModuleNotFoundError|ImportError|command not found' | head -3)"
else ok dry_run_lacks_nothing; fi
grep -q "^gpu/test_cuda_driver.sh" "$tmp/dry.out" && ok dry_run_table || not_ok dry_run_table "$(tail -c 400 "$tmp/dry.out")"
rm -rf "$dry"

expect run_all_bad_seconds 2 "--seconds: 'soon' is not a number of seconds" -- clean "$b/run-all.sh" --seconds soon
expect run_all_zero_seconds 2 "--seconds: '0' is not a number of seconds above 0" -- clean "$b/run-all.sh" --seconds 0
expect run_all_bad_limit 2 "--limit: '0' is not a whole number of seconds" -- clean "$b/run-all.sh" --limit 0
expect run_all_bad_only 2 "--only: 'a;b' is not a comma-separated list" -- clean "$b/run-all.sh" --only 'a;b'
# --only runs the checks named and no others, each row also printed as it ends.
expect run_all_only_one 0 '^-- gpu/test_run_gpu.sh ' -- clean "$b/run-all.sh" --only test_run_gpu --limit 60
expect_lines run_all_only_that_row '^gpu/test_' 1

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
