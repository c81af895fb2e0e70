# SPDX-License-Identifier: MIT
# tests/cli/test_client_libs.sh - a client command loads only what it uses
# (issue 13): the `vram` command and libvram do not link SQLite,
# libmicrohttpd or its TLS chain (the command, built by gcc, not even
# libm); `vram --version`, `vram submit`, `vram queue` and Python's `import
# vram` with a Scheduler never load them, while `vram history` loads SQLite
# when it opens its store.  LD_DEBUG=files names every library the loader
# maps, dlopen's included.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../daemon/daemon.sh"
heavy='libsqlite3|libmicrohttpd|libgnutls'
lib=$VRAM_BUILD/lib/libvram.so

needed() { readelf -d "$1" | awk '/NEEDED/ { gsub(/[][]/, "", $5); print $5 }'; }
bad=$(needed "$VRAM" | grep -E "$heavy")
[ -z "$bad" ] && ok command_links_none_of_them || not_ok command_links_none_of_them "$bad"
# Built by gcc, the command does not need libm either (loading it was a
# tenth of a start); clang calls floor and ceil in libm.
if readelf -p .comment "$VRAM" 2>/dev/null | grep -q clang; then
    echo "skip - $file/command_needs_no_libm: built by clang, which calls libm for floor"
else
    bad=$(needed "$VRAM" | grep -E '^libm\.so')
    [ -z "$bad" ] && ok command_needs_no_libm || not_ok command_needs_no_libm "it needs: $bad"
fi
bad=$(needed "$lib" | grep -E "$heavy")
[ -z "$bad" ] && ok libvram_links_none_of_them || not_ok libvram_links_none_of_them "$bad"

# loaded NAME COMMAND...: the libraries COMMAND's process mapped.
loaded() { LD_DEBUG=files LD_DEBUG_OUTPUT=$tmp/ld.$1 "${@:2}" >"$tmp/out.$1" 2>&1; cat "$tmp/ld.$1".* 2>/dev/null | grep -Eo 'file=[^ ]+' | sort -u; }

start_daemon && ok daemon_starts || { not_ok daemon_starts "$(tail -5 "$tmp/daemon.log")"; finish; }
for cmd in "version --version" "submit submit --vram 1GiB -- true" "queue queue"; do
    name=${cmd%% *}
    set -- ${cmd#* }
    got=$(loaded "$name" "$VRAM" "$@")
    if ! grep -q 'file=libc.so' <<<"$got"; then
        not_ok "${name}_loads_only_what_it_uses" "LD_DEBUG saw nothing: $(head -c 300 "$tmp/out.$name")"
    elif grep -Eq "$heavy" <<<"$got"; then
        not_ok "${name}_loads_only_what_it_uses" "$(grep -E "$heavy" <<<"$got" | paste -sd' ')"
    else
        ok "${name}_loads_only_what_it_uses"
    fi
done
grep -q '^[0-9]' "$tmp/out.submit" && ok submit_was_queued || not_ok submit_was_queued "$(cat "$tmp/out.submit")"
# Each of these asks vramd once: `vram queue` has its first page and the
# client leases it lists from one reply (a second round trip was a tenth of
# its time: bench/tsp's list row).
if command -v strace >/dev/null; then
    for cmd in "submit submit --vram 1GiB -- true" "queue queue"; do
        name=${cmd%% *}
        set -- ${cmd#* }
        strace -f -e trace=sendto,sendmsg,write -o "$tmp/$name.strace" "$VRAM" "$@" >/dev/null 2>&1
        n=$(grep -cE '^[0-9]+ +(sendto|sendmsg)\(' "$tmp/$name.strace")
        [ "$n" = 1 ] && ok "${name}_asks_once" || not_ok "${name}_asks_once" "$n requests: $(grep -E 'sendto|sendmsg' "$tmp/$name.strace" | head -c 400)"
    done
else
    echo "skip - $file/queue_asks_once: strace is not installed (scripts/deps.sh test)"
fi

# The store's users still reach SQLite, through dlopen.
got=$(VRAM_HISTORY=$tmp/history.db loaded history "$VRAM" history)
grep -q 'file=libsqlite3' <<<"$got" && ok history_dlopens_sqlite \
    || not_ok history_dlopens_sqlite "$(head -c 300 "$tmp/out.history")"

if [ "$(basename "$VRAM_BUILD")" = build ]; then
    got=$(loaded python env PYTHONPATH="$VRAM_TOP/python" VRAM_LIBRARY="$lib" python3 -c '
import vram
with vram.Scheduler(2, cleanup=[]) as s:
    s.submit(lambda: 7, vram="1MiB")
    assert list(s.results()) == [7]
')
    if ! grep -q 'libvram' <<<"$got"; then
        not_ok python_loads_only_what_it_uses "libvram not seen: $(head -c 300 "$tmp/out.python")"
    elif grep -Eq "$heavy" <<<"$got"; then
        not_ok python_loads_only_what_it_uses "$(grep -E "$heavy" <<<"$got" | paste -sd' ')"
    else
        ok python_loads_only_what_it_uses
    fi
else
    echo "skip - $file/python_loads_only_what_it_uses: Python loads libvram, which a sanitizer build cannot load into python3 (checked in the plain build)"
fi
finish
