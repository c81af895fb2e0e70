#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/cli/dockerfile_check.py - a syntax check of a Dockerfile, for
machines without hadolint (Debian has none): instructions, stages, exec forms,
apt-get hygiene, and VRAM_* settings that the options table knows.

Usage: dockerfile_check.py DOCKERFILE KNOWN_SETTINGS_FILE
Prints one line per problem and exits 1 when there is any."""
import json
import re
import sys

KEYWORDS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
            "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
EXEC_FORM = {"CMD", "ENTRYPOINT", "VOLUME", "SHELL"}


def instructions(text):
    """(line number, keyword, arguments), continuation lines joined."""
    out, buf, start = [], "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not buf:
            start = n
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((start, word, rest.strip()))
        buf = ""
    if buf:
        out.append((start, "<unterminated>", buf))
    return out


def check(text, known):
    problems, stages = [], []
    ins = instructions(text)
    first = [k for _, k, _ in ins if k != "ARG"]
    if not first or first[0] != "FROM":
        problems.append("the first instruction after ARGs must be FROM")
    for n, key, args in ins:
        if key not in KEYWORDS:
            problems.append("line %d: unknown instruction %r" % (n, key))
            continue
        if key == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            if not m:
                problems.append("line %d: FROM IMAGE [AS NAME]" % n)
            elif m.group(2):
                stages.append(m.group(2))
        if key in EXEC_FORM:
            try:
                v = json.loads(args)
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise ValueError
            except ValueError:
                problems.append("line %d: %s must be a JSON array of strings" % (n, key))
        if key == "COPY":
            for src in re.findall(r"--from=(\S+)", args):
                if src not in stages:
                    problems.append("line %d: COPY --from=%s names no earlier stage" % (n, src))
        if key == "RUN" and "apt-get install" in args:
            for need in ("--no-install-recommends", "-y", "apt-get update",
                         "rm -rf /var/lib/apt/lists"):
                if need not in args:
                    problems.append("line %d: apt-get install without %r in the same RUN" % (n, need))
        if key == "ENV":
            for name in re.findall(r"(?:^|\s)(VRAM_[A-Z_]+)=", args):
                if name not in known:
                    problems.append("line %d: %s is not a vram setting" % (n, name))
    return problems


def main():
    text = open(sys.argv[1]).read()
    known = set(open(sys.argv[2]).read().split())
    problems = check(text, known)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
