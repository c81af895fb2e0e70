# SPDX-License-Identifier: MIT
# tests/cli/test_python_package.sh - the Python binding installs with
# `pip install .` offline (Debian's setuptools, no build isolation) into a
# fresh virtual environment, and its tests pass from there, importing the
# installed copy rather than the source tree.
. "$(dirname "$0")/lib.sh"
if [ "$(basename "$VRAM_BUILD")" != build ]; then
    echo "skip - $file/all: the package is checked in the plain build"; exit 77
fi
py=/usr/bin/python3
if ! $py -c 'import venv, ensurepip, setuptools' 2>/dev/null; then
    echo "skip - $file/all: Debian's python3-venv and python3-setuptools are not installed"; exit 77
fi
# Debian's setuptools comes in through the system site packages; nothing is
# downloaded (--no-index).
expect make_venv 0 '' -- $py -m venv --system-site-packages "$tmp/venv"
# Build from a copy: pip builds in the tree it is given.
cp -r "$VRAM_TOP/python" "$tmp/src"
expect pip_install_offline 0 'Successfully installed vram' -- \
    env PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$tmp/venv/bin/pip" install \
    --no-build-isolation --no-deps "$tmp/src"
version=$("$VRAM" --version | awk '{print $2}')
expect installed_version 0 "^$version\$" -- "$tmp/venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("vram"))'
n=$(find "$tmp/venv/lib" -path '*site-packages/vram/py.typed' | wc -l)
[ "$n" = 1 ] && ok typed_marker || not_ok typed_marker "py.typed not installed"
# The tests, copied out of the tree so that only the installed package can
# be imported (their python/ folder holds tests/ only); they still load the
# library just built and read the shipped profiles.
tests="test_binding test_scheduler test_exceptions test_apply test_oom_table test_estimate test_typing"
mkdir -p "$tmp/run/python/tests"
for t in $tests; do cp "$VRAM_TOP/python/tests/$t.py" "$tmp/run/python/tests/"; done
ln -s "$VRAM_TOP/profiles" "$tmp/run/profiles"
ln -s "$VRAM_TOP/tests" "$tmp/run/tests"          # the C runner's table of messages
expect imports_installed_copy 0 "$tmp/venv/lib" -- env -C "$tmp/run" VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so" \
    "$tmp/venv/bin/python" -c 'import vram; print(vram.__file__)'
# Installed, it finds the library on the system path (as after make install).
expect finds_system_library 0 'libvram.so' -- env -C "$tmp/run" LD_LIBRARY_PATH="$VRAM_BUILD/lib" \
    "$tmp/venv/bin/python" -c 'import vram; print(vram.library_path)'
for t in $tests; do
    expect "${t}_from_installed_package" 0 '' -- env -C "$tmp/run" \
        VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so" VRAM_BUILD="$VRAM_BUILD" \
        "$tmp/venv/bin/python" "$VRAM_TOP/tests/pytap.py" "$tmp/run/python/tests/$t.py"
done
# ... and what they imported was the installed copy, not this tree's.
expect tests_used_installed_copy 0 "$tmp/venv/lib" -- env -C "$tmp/run/python/tests" \
    VRAM_LIBRARY="$VRAM_BUILD/lib/libvram.so" "$tmp/venv/bin/python" -c \
    'import sys, pathlib; sys.path.insert(0, str(pathlib.Path(".").resolve().parent)); import vram, vram.apply; print(vram.apply.__file__)'
finish
