# SPDX-License-Identifier: MIT
# tests/cli/test_spdx.sh - every file of the repository says its license in
# machine-readable form (issue 15): an SPDX-License-Identifier line in its
# first three lines, or, for a file that cannot carry one (data read byte for
# byte, the license text), a path in REUSE.toml's annotations.
. "$(dirname "$0")/lib.sh"
top=$VRAM_TOP
if ! git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "skip - $file/all: not a git checkout (the file list is git's)"; exit 77
fi
git -C "$top" ls-files -z | python3 -c '
import fnmatch, sys, tomllib
top = sys.argv[1]
paths = []
with open(top + "/REUSE.toml", "rb") as f:
    for a in tomllib.load(f).get("annotations", []):
        if a.get("SPDX-License-Identifier") == "MIT":
            paths += a["path"] if isinstance(a["path"], list) else [a["path"]]
covered = lambda f: any(fnmatch.fnmatchcase(f, p.replace("**", "*")) for p in paths)
missing, stale = [], [p for p in paths if "*" not in p and not __import__("os").path.exists(top + "/" + p)]
for f in sys.stdin.read().split("\0"):
    if not f or not __import__("os").path.isfile(top + "/" + f):
        continue
    with open(top + "/" + f, "rb") as fh:
        head = b"".join(fh.readline() for _ in range(3))
    if b"SPDX-License-Identifier: MIT" not in head and not covered(f):
        missing.append(f)
print("missing:", " ".join(missing) if missing else "none")
print("stale:", " ".join(stale) if stale else "none")
' "$top" >"$tmp/spdx" 2>&1
grep -qx 'missing: none' "$tmp/spdx" && ok every_file_has_an_spdx_line || not_ok every_file_has_an_spdx_line "$(grep -v 'stale:' "$tmp/spdx" | head -c 600)"
grep -qx 'stale: none' "$tmp/spdx" && ok reuse_toml_names_real_files || not_ok reuse_toml_names_real_files "$(grep -v 'missing:' "$tmp/spdx" | head -c 600)"
grep -q '^MIT License$' "$top/LICENSE" && ok license_is_mit || not_ok license_is_mit "$(head -1 "$top/LICENSE")"
finish
