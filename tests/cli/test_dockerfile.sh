# SPDX-License-Identifier: MIT
# tests/cli/test_dockerfile.sh - the Dockerfile passes hadolint where Debian
# has it, else tests/cli/dockerfile_check.py (instructions, stages, exec
# forms, apt-get hygiene, VRAM_* settings the options table knows); the
# checker itself refuses a broken file.
. "$(dirname "$0")/lib.sh"
"$VRAM" status --help | grep -Eo 'VRAM_[A-Z_]+' | sort -u >"$tmp/settings"
[ -s "$tmp/settings" ] && ok settings_listed || not_ok settings_listed "vram status --help lists no VRAM_ settings"
if command -v hadolint >/dev/null; then
    expect hadolint 0 '' -- hadolint "$VRAM_TOP/Dockerfile"
fi
expect dockerfile_syntax 0 '' -- python3 "$VRAM_TOP/tests/cli/dockerfile_check.py" "$VRAM_TOP/Dockerfile" "$tmp/settings"
cat >"$tmp/Dockerfile.bad" <<'BAD'
FROM debian:12 AS build
RUN apt-get install -y gcc
COPY --from=builder /x /y
ENV VRAM_NO_SUCH=1
ENTRYPOINT /usr/bin/vramd
FORM x
BAD
expect checker_refuses_broken 1 'no earlier stage' -- python3 "$VRAM_TOP/tests/cli/dockerfile_check.py" "$tmp/Dockerfile.bad" "$tmp/settings"
expect_lines checker_names_each_problem '^line [0-9]+:' 7
expect entrypoint_is_vramd 0 'ENTRYPOINT \["/usr/local/bin/vramd"\]' -- cat "$VRAM_TOP/Dockerfile"
expect pid_host_documented 0 '--pid=host' -- cat "$VRAM_TOP/Dockerfile"
finish
