#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/deps.sh - makes sure the Debian packages a step needs are there.
#
#   scripts/deps.sh build   what building vram needs
#   scripts/deps.sh demo    that, and what the demo batch needs (scripts/start.sh)
#   scripts/deps.sh test    that, and what the test suite needs
#
# Missing packages are installed with apt-get when run as root (apt-get
# update runs once first); otherwise it prints the one apt-get line to run
# and exits 1.
set -euo pipefail

build_pkgs="gcc make libc6-dev pkg-config libsqlite3-dev libinih-dev libmicrohttpd-dev"
demo_pkgs="python3"
test_pkgs="python3 procps util-linux sqlite3 clang libclang-rt-14-dev chromium prometheus man-db zsh systemd python3-venv python3-setuptools task-spooler strace slurm-wlm munge libslurm-dev"

case "${1:-build}" in
    build) want="$build_pkgs" ;;
    demo) want="$build_pkgs $demo_pkgs" ;;
    test) want="$build_pkgs $test_pkgs" ;;
    *) echo "usage: scripts/deps.sh build|demo|test" >&2; exit 2 ;;
esac

missing=()
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "vram needs these Debian packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A mirror that stumbles once should not fail a fresh machine's first run.
for try in 1 2 3; do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        exit 0
    fi
    [ $try -lt 3 ] && { echo "apt-get failed (try $try of 3); trying again in 10 s" >&2; sleep 10; }
done
echo "could not install: ${missing[*]}" >&2
exit 1
