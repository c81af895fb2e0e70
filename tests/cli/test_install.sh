# SPDX-License-Identifier: MIT
# tests/cli/test_install.sh - `make install` lays out bin, lib (multiarch,
# with soname), include and pkgconfig, and a C program builds with
# pkg-config alone (vram.pc carries no rpath: the program runs with the
# library on LD_LIBRARY_PATH, as after ldconfig).
. "$(dirname "$0")/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: install is checked in the plain build"; exit 77
fi
prefix=$tmp/prefix
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || cc -print-multiarch 2>/dev/null)
lib=lib${multiarch:+/$multiarch}
expect install 0 '' -- make -C "$VRAM_TOP" install PREFIX="$prefix"
for f in bin/vram bin/vramd $lib/libvram.so $lib/libvram.a include/vram.h $lib/pkgconfig/vram.pc \
         $lib/vram/libvram_shim.so share/vram/profiles/latentsync.ini \
         share/man/man1/vram.1 share/man/man1/vram-run.1 share/man/man8/vramd.8 \
         share/bash-completion/completions/vram share/zsh/vendor-completions/_vram \
         lib/systemd/system/vramd.service lib/systemd/system/vramd.socket; do
    [ -e "$prefix/$f" ] && ok "installed_$f" || not_ok "installed_$f" "missing"
done
# The Slurm plugin, where it is built, in the folder the README names.
if [ -f /usr/include/slurm/spank.h ]; then
    [ -e "$prefix/$lib/vram/slurm/vram_spank.so" ] && ok installed_slurm_plugin ||
        not_ok installed_slurm_plugin "no $lib/vram/slurm/vram_spank.so"
    grep -q "$lib/vram/slurm/vram_spank.so" "$VRAM_TOP/README.md" && ok readme_names_slurm_plugin_dir ||
        not_ok readme_names_slurm_plugin_dir "README.md does not name $lib/vram/slurm/"
else
    echo "skip - $file/installed_slurm_plugin: the Slurm plugin is not built (no /usr/include/slurm/spank.h: Debian's libslurm-dev)"
fi
expect soname 0 'SONAME.*libvram\.so\.0' -- readelf -d "$prefix/$lib/libvram.so"
if grep -q rpath "$prefix/$lib/pkgconfig/vram.pc"; then
    not_ok pc_has_no_rpath "$(grep rpath "$prefix/$lib/pkgconfig/vram.pc")"
else ok pc_has_no_rpath; fi
expect pc_names_libdir 0 "^libdir=$prefix/$lib\$" -- cat "$prefix/$lib/pkgconfig/vram.pc"
cat >"$tmp/app.c" <<'C'
#include <stdio.h>
#include <vram.h>
int main(void)
{
    uint64_t b;
    if (vram_size_parse("1.5GiB", &b) || vram_version_number() != VRAM_VERSION_NUMBER)
        return 1;
    vram_ctx *ctx;
    if (vram_ctx_open(&ctx, NULL))
        return 2;
    printf("backend %s, %llu\n", vram_ctx_backend(ctx), (unsigned long long)b);
    return vram_ctx_close(ctx);
}
C
flags=$(PKG_CONFIG_PATH=$prefix/$lib/pkgconfig pkg-config --cflags --libs vram)
expect build_with_pkg_config 0 '' -- cc -std=c11 -Wall -Werror "$tmp/app.c" -o "$tmp/app" $flags
expect run_installed_app 0 'backend sim, 1610612736' -- env LD_LIBRARY_PATH="$prefix/$lib" VRAM_BACKEND=sim "$tmp/app"
expect installed_command 0 'SIMULATED DEVICES' -- env VRAM_BACKEND=sim "$prefix/bin/vram" status
# The installed command finds the installed profiles, wherever PREFIX is.
expect installed_profiles 0 "$(realpath "$prefix")/share/vram/profiles/latentsync.ini" -- \
    env XDG_CONFIG_HOME="$tmp/config" "$prefix/bin/vram" profiles show latentsync
# Also when run by its bare name from PATH, in another folder (argv[0] is
# then "vram": the command finds itself through /proc/self/exe).
expect installed_profiles_from_path 0 "$(realpath "$prefix")/share/vram/profiles/latentsync.ini" -- \
    env -C "$tmp" PATH="$prefix/bin:$PATH" XDG_CONFIG_HOME="$tmp/config" vram profiles show latentsync
expect installed_vramd 0 'usage: vramd \[--socket' -- "$prefix/bin/vramd" --help
# The installed command preloads the installed shim (LIBDIR/vram, multiarch).
expect installed_run_finds_shim 0 "PRELOAD=$prefix/bin/\.\./$lib/vram/libvram_shim\.so" -- \
    env -C "$tmp" VRAM_BACKEND=sim VRAM_HISTORY=- "$prefix/bin/vram" run --vram 1GiB -- sh -c 'echo PRELOAD=$LD_PRELOAD' 
# The Python package, beside the library: importable from its folder, with
# its version in the metadata, loading the installed libvram.
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pydir=$prefix/lib/python$pyver/dist-packages
for f in vram/__init__.py vram/_native.py vram/py.typed vram-0.1.0.dist-info/METADATA; do
    [ -e "$pydir/$f" ] && ok "installed_python_$f" || not_ok "installed_python_$f" "missing in $pydir"
done
expect installed_python_imports 0 "^0\.1\.0 .*$prefix/$lib/libvram\.so|^0\.1\.0 libvram\.so" -- \
    env -C "$tmp" -u VRAM_LIBRARY PYTHONPATH="$pydir" LD_LIBRARY_PATH="$prefix/$lib" python3 -c \
    'import importlib.metadata as m, vram; assert vram.__file__.startswith(__import__("sys").argv[1]), vram.__file__; print(m.version("vram"), vram.library_path)' "$pydir"
expect uninstall 0 '' -- make -C "$VRAM_TOP" uninstall PREFIX="$prefix"
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] && ok uninstall_removes_everything || not_ok uninstall_removes_everything "$left"
finish
