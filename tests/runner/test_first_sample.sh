# SPDX-License-Identifier: MIT
# tests/runner/test_first_sample.sh - when a run is first sampled (issue 13,
# runner/run.c watch): an interval after its start, never at the start,
# where its command holds nothing yet.  A job that ends sooner costs no
# sample (no device read, no row in the history's samples); a longer one is
# sampled from then on, as before.
. "$(dirname "$0")/../cli/lib.sh"
mkdir -p "$tmp/state"
export VRAM_BACKEND=sim VRAM_SIM="T4:14.7GiB:8.5GiB" VRAM_HISTORY=$tmp/history.db VRAM_SIM_STATE=$tmp/state

# samples JOB: "COUNT FIRST_T_MS" of the job's (one) run in the history.
samples() {
    python3 - "$tmp/history.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE job = ?", (sys.argv[2],))]
assert len(ids) == 1, ids
n, first = db.execute("SELECT COUNT(*), MIN(t_ms) FROM samples WHERE run_id = ?", (ids[0],)).fetchone()
print(n, -1 if first is None else first)
PY
}

expect short_job_ran 0 '' -- env VRAM_INTERVAL=60s "$VRAM" run --name short --vram 1GiB -- true
got=$(samples short 2>&1)
if [ "$got" = "0 -1" ]; then ok short_job_not_sampled; else not_ok short_job_not_sampled "samples, first t_ms: $got"; fi

expect longer_job_ran 0 '' -- env VRAM_INTERVAL=50ms "$VRAM" run --name longer --vram 1GiB -- sleep 0.4
got=$(samples longer 2>&1)
if [ "${got%% *}" -ge 1 ] 2>/dev/null && [ "${got##* }" -ge 50 ]; then
    ok longer_job_sampled_from_one_interval_on
else
    not_ok longer_job_sampled_from_one_interval_on "samples, first t_ms: $got"
fi
finish
