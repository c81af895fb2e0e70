#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/gpu-bundle.sh - one folder that runs tests/gpu/ and the benches on
# a bare GPU machine, which has none of our Debian packages and may not
# install any: copying the folder there is enough.
#
#   scripts/gpu-bundle.sh [BUILD_DIR [OUT_DIR]]     (make gpu-bundle)
#
# BUILD_DIR (default build) must be built (make all).  OUT_DIR (default
# BUILD_DIR/gpu-bundle) is made afresh and is both the build and the top of
# the tree its scripts see (VRAM_BUILD = VRAM_TOP = the folder):
#   bin/vram (and bin/tsp where task-spooler is installed), lib/ (libvram, the shim, and every shared library they or the
#   dashboard need that glibc does not provide: libinih, libsqlite3, and
#   libmicrohttpd with its chain, copied from where ldd finds them here),
#   bench/, stubs/, tests/helpers/, tests/gpu/, tests/cli/lib.sh, examples/,
#   python/vram, share/vram/profiles/, MANIFEST (what came from where, and
#   the glibc the binaries need), and run-all.sh (tests/gpu/run-all.sh).
# On the GPU machine: `OUT_DIR/run-all.sh`; it sets LD_LIBRARY_PATH itself.
# Exit status: 0 made; 2 bad arguments; 1 something is missing here.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ $# -le 2 ] || { echo "usage: scripts/gpu-bundle.sh [BUILD_DIR [OUT_DIR]]" >&2; exit 2; }
[ -d "$build" ] || { echo "gpu-bundle: build folder '$build' does not exist (run make first)" >&2; exit 2; }
build=$(cd "$build" && pwd)
out=${2:-$build/gpu-bundle}
for f in bin/vram lib/libvram.so.0 tests/helpers/simalloc; do
    [ -e "$build/$f" ] || { echo "gpu-bundle: $build/$f is missing: run make all first" >&2; exit 1; }
done
case $out in /|"$top"|"$build") echo "gpu-bundle: will not replace '$out'" >&2; exit 2 ;; esac
rm -rf "$out"
mkdir -p "$out"/{bin,lib,bench,stubs/cuda,tests/helpers,tests/gpu,tests/cli,share/vram,python}
out=$(cd "$out" && pwd)
manifest=$out/MANIFEST
echo "# vram GPU bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')" >"$manifest"

# Programs and vram's own libraries (real files: a copy keeps no link to here).
cp -L "$build/bin/vram" "$out/bin/"
cp -L "$build/lib/libvram.so.0" "$out/lib/"
ln -s libvram.so.0 "$out/lib/libvram.so"
[ -f "$build/lib/libvram_shim.so" ] && cp -L "$build/lib/libvram_shim.so" "$out/lib/"
# task-spooler, bench/tsp's baseline, where it is installed here (Debian's
# task-spooler; the GPU machine has none): bin/tsp.
if t=$(command -v tsp 2>/dev/null) && [ -f "$t" ]; then
    cp -L "$t" "$out/bin/tsp"
    echo "bin/tsp <- $t ($(dpkg -S "$t" 2>/dev/null | cut -d: -f1 || echo '?'))" >>"$manifest"
fi
for b in "$build"/bench/*; do
    [ -f "$b" ] && [ -x "$b" ] && cp -L "$b" "$out/bench/"
done
[ -f "$build/stubs/libnvidia-ml.so.1" ] && cp -L "$build/stubs/libnvidia-ml.so.1" "$out/stubs/"
[ -f "$build/stubs/cuda/libcuda.so.1" ] && cp -L "$build/stubs/cuda/libcuda.so.1" "$out/stubs/cuda/" &&
    ln -s libcuda.so.1 "$out/stubs/cuda/libcuda.so"
for h in "$build"/tests/helpers/*; do
    [ -f "$h" ] && [ -x "$h" ] && cp -L "$h" "$out/tests/helpers/"
done

# What the tests read from the tree.
cp "$top"/tests/gpu/* "$out/tests/gpu/"
cp "$top/tests/cli/lib.sh" "$out/tests/cli/"
cp -r "$top/examples" "$out/"
cp -r "$top/python/vram" "$out/python/"
find "$out/python" -name __pycache__ -prune -exec rm -rf {} +
cp -rL "$top/profiles" "$out/share/vram/profiles"
cp "$top/tests/gpu/run-all.sh" "$out/run-all.sh"
chmod +x "$out/run-all.sh" "$out"/tests/gpu/*.sh

# Shared libraries the machine may lack: everything ldd resolves for our
# binaries, libvram, and the libraries vram dlopens (SQLite for the queue and
# the history, libmicrohttpd for the dashboard), except glibc's own, which
# must be the machine's.
glibc_re='/(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux[^/]*)\.so'
deps() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'; }
find_lib() { ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n && $NF ~ /^\// { print $NF; exit }'; }
roots=("$out/bin/vram" "$out/lib/libvram.so.0")
[ -f "$out/lib/libvram_shim.so" ] && roots+=("$out/lib/libvram_shim.so")
for b in "$out"/bench/* "$out"/tests/helpers/*; do roots+=("$b"); done
for soname in libmicrohttpd.so.12 libsqlite3.so.0; do     # dlopened: ldd cannot see them
    p=$(find_lib "$soname")
    if [ -n "$p" ]; then roots+=("$p")
    else echo "gpu-bundle: $soname is not installed here: the bundle's dashboard will say it is missing" >&2; fi
done
declare -A seen=()
queue=("${roots[@]}")
while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}; queue=("${queue[@]:1}")
    case $f in "$out"/*) ;; *)
        name=$(basename "$f")
        if [[ ! $f =~ $glibc_re ]] && [ -z "${seen[$name]:-}" ]; then
            seen[$name]=1
            cp -L "$f" "$out/lib/$name"
            echo "lib/$name <- $f" >>"$manifest"
        fi ;;
    esac
    for d in $(deps "$f"); do
        name=$(basename "$d")
        [[ $d =~ $glibc_re ]] && continue
        [ -n "${seen[$name]:-}" ] && continue
        queue+=("$d")
    done
done

# The newest glibc symbol version any of them asks for: the machine's glibc
# must be at least this (run-all.sh checks).
need=$(for f in "$out"/bin/* "$out"/lib/*.so* "$out"/bench/* "$out"/tests/helpers/*; do
           objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*'; done | sed 's/GLIBC_//' | sort -uV | tail -1)
echo "glibc $need" >>"$manifest"
echo "made $out ($(du -sh "$out" | cut -f1), needs glibc $need or newer); run $out/run-all.sh on the GPU machine"
