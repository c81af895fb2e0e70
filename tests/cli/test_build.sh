# SPDX-License-Identifier: MIT
# tests/cli/test_build.sh - the Makefile follows the GNU and Debian
# conventions: `make CFLAGS=-O0` builds (the include paths and defines the
# build needs are not in CFLAGS), dpkg-buildflags' CPPFLAGS/CFLAGS/LDFLAGS
# all reach the compile and link lines, -Werror only with WERROR=1, no
# source path is compiled into what is installed (reproducible builds), and
# `make install DESTDIR=... PREFIX=/usr` stages the Debian layout
# (multiarch LIBDIR) whose programs find their files relative to themselves.
. "$(dirname "$0")/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: the build conventions are checked in the plain build"; exit 77
fi
top=$VRAM_TOP
b=$tmp/b
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || cc -print-multiarch 2>/dev/null)
lib=lib${multiarch:+/$multiarch}

# An -O0 build of the library, the command and the shim, into its own folder.
expect build_with_cflags_O0 0 '' -- make -C "$top" -j2 V=1 CFLAGS=-O0 BUILD="$b" lib cli shim docs
cp "$tmp/out" "$tmp/build.log"
line=$(grep -m1 -- ' -c src/core/options.c ' "$tmp/build.log")
case "$line" in
    *" -O0 "*) ok compile_line_has_O0 ;;
    *) not_ok compile_line_has_O0 "$line" ;;
esac
case "$line" in
    *"-O2"* | *"-Werror"*) not_ok cflags_replace_defaults "$line" ;;
    *"-Iinclude"*"-DVRAM_BUILDING_LIBRARY"*) ok cflags_replace_defaults ;;
    *) not_ok cflags_replace_defaults "no include path or define: $line" ;;
esac

# Nothing built names the source folder (debug info included).
for f in bin/vram lib/libvram.so.0.1.0 lib/libvram.a lib/libvram_shim.so; do
    if [ ! -e "$b/$f" ]; then not_ok "no_source_path_in_$f" "not built"; continue; fi
    n=$(strings -a "$b/$f" | grep -c -F -- "$top")
    [ "$n" = 0 ] && ok "no_source_path_in_$f" || not_ok "no_source_path_in_$f" "$n strings name $top"
done

# dpkg-buildflags' hardening reaches every line, and -Werror comes with WERROR=1.
if command -v dpkg-buildflags >/dev/null; then
    cppflags=$(dpkg-buildflags --get CPPFLAGS) cflags=$(dpkg-buildflags --get CFLAGS)
    ldflags=$(dpkg-buildflags --get LDFLAGS)
    make -C "$top" -n -B BUILD="$tmp/n" CPPFLAGS="$cppflags" CFLAGS="$cflags" LDFLAGS="$ldflags" \
        lib cli >"$tmp/dry.log" 2>&1
    line=$(grep -m1 -- ' -c src/core/options.c ' "$tmp/dry.log")
    case "$line" in
        *-D_FORTIFY_SOURCE=2*-fstack-protector-strong*) ok dpkg_cppflags_and_cflags_kept ;;
        *) not_ok dpkg_cppflags_and_cflags_kept "$line" ;;
    esac
    line=$(grep -m1 -- '-soname,libvram' "$tmp/dry.log")
    case "$line" in
        *-Wl,-z,relro*) ok dpkg_ldflags_kept ;;
        *) not_ok dpkg_ldflags_kept "$line" ;;
    esac
else
    echo "skip - $file/dpkg_cppflags_and_cflags_kept: dpkg-buildflags is not installed"
fi
make -C "$top" -n -B BUILD="$tmp/n" WERROR=1 cli >"$tmp/dry.log" 2>&1
grep -q -- ' -Werror .* -c src/core/options.c ' "$tmp/dry.log" && ok werror_when_asked \
    || not_ok werror_when_asked "$(grep -m1 -- ' -c src/core/options.c ' "$tmp/dry.log")"

# The Debian layout, staged: PREFIX=/usr, multiarch LIBDIR, nothing outside DESTDIR.
d=$tmp/dest
expect install_destdir 0 '' -- make -C "$top" CFLAGS=-O0 BUILD="$b" DESTDIR="$d" PREFIX=/usr install
for f in usr/bin/vram usr/bin/vramd usr/$lib/libvram.so.0 usr/$lib/libvram.so usr/$lib/libvram.a \
         usr/$lib/pkgconfig/vram.pc usr/$lib/vram/libvram_shim.so usr/include/vram.h \
         usr/share/vram/profiles/wan2.2-ti2v-5b.ini usr/share/man/man1/vram.1 usr/share/man/man8/vramd.8 \
         usr/share/bash-completion/completions/vram usr/lib/systemd/system/vramd.service \
         usr/lib/python3/dist-packages/vram/__init__.py usr/lib/python3/dist-packages/vram-0.1.0.dist-info/METADATA; do
    [ -e "$d/$f" ] && ok "staged_$f" || not_ok "staged_$f" "missing"
done
# Only programs are executable; shared libraries and plugins are 0644 (policy 8.1).
exe=$(find "$d" -type f -perm /111 | sed "s|^$d/||" | sort | tr '\n' ' ')
[ "$exe" = "usr/bin/vram " ] && ok only_programs_executable || not_ok only_programs_executable "$exe"
outside=$(find "$d" -mindepth 1 -maxdepth 1 ! -name usr)
[ -z "$outside" ] && ok staged_only_under_usr || not_ok staged_only_under_usr "$outside"
pc=$d/usr/$lib/pkgconfig/vram.pc
if grep -Eq 'rpath|\$ORIGIN' "$pc"; then not_ok pc_without_rpath "$(grep -E 'rpath|ORIGIN' "$pc")"
else ok pc_without_rpath; fi
expect pc_libdir_multiarch 0 "^libdir=/usr/$lib\$" -- cat "$pc"
if readelf -d "$d/usr/$lib/libvram.so.0" "$d/usr/bin/vram" | grep -Eq 'RPATH|RUNPATH'; then
    not_ok binaries_without_rpath "$(readelf -d "$d/usr/bin/vram" | grep -E 'RPATH|RUNPATH')"
else ok binaries_without_rpath; fi
# The Slurm plugin's default shim is where this install put it (LIBDIR set at
# build time, multiarch), never a path guessed in the source.
spank=$d/usr/$lib/vram/slurm/vram_spank.so
if [ -e /usr/include/slurm/spank.h ]; then
    strings -a "$spank" >"$tmp/spank.strings" 2>&1
    if [ ! -e "$spank" ]; then not_ok spank_default_shim_in_libdir "not staged"
    elif grep -qxF "/usr/$lib/vram/libvram_shim.so" "$tmp/spank.strings" \
         && ! grep -q '/usr/local/lib/vram' "$tmp/spank.strings"; then ok spank_default_shim_in_libdir
    else not_ok spank_default_shim_in_libdir "$(grep -E "libvram_shim|/usr/local/" "$tmp/spank.strings" | tr "\n" " ")"; fi
else
    echo "skip - $file/spank_default_shim_in_libdir: slurm/spank.h is missing (Debian: libslurm-dev)"
fi
# The staged command finds the profiles and the shim beside itself, not in
# this source tree.
expect staged_finds_its_profiles 0 "$(realpath "$d")/usr/share/vram/profiles/latentsync.ini" -- \
    env XDG_CONFIG_HOME="$tmp/config" "$d/usr/bin/vram" profiles show latentsync
finish
