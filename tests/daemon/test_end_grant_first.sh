# SPDX-License-Identifier: MIT
# tests/daemon/test_end_grant_first.sh - the room a job's end leaves lets
# the next job in before the ended job's runner is answered (conns.c): the
# next job's runner, started ahead and waiting in its claim, gets its lease
# first, since its start is what a user waits for.  Order of vramd's
# replies, traced with strace on its threads (skips without strace).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/daemon.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v strace >/dev/null || { echo "skip - $file/all: strace is not installed"; exit 77; }
start_daemon || exit 1

# One job at a time (21 GiB of 24): the first holds the card until a file
# appears; the second waits behind it with its runner started ahead, and
# more behind that (than vramd starts runners ahead for), so that the
# first's runner is given one of them in its end's answer, not parked.
first=$("$VRAM" submit --vram 21GiB -- sh -c 'while [ ! -e "$1" ]; do sleep 0.01; done' sh "$tmp/go" |
    grep -o '[0-9][0-9]*' | head -1)
second=$("$VRAM" submit --vram 21GiB -- true | grep -o '[0-9][0-9]*' | head -1)
for _ in 1 2 3 4 5; do "$VRAM" submit --vram 21GiB -- true >/dev/null; done
sleep 0.5
trace_daemon sendto,recvfrom
: >"$tmp/go"
for _ in $(seq 1 100); do is_state "$second" succeeded && break; sleep 0.05; done
kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
is_state "$second" succeeded || not_ok second_ran "$("$VRAM" queue 2>&1)"

out=$(python3 - "$tmp/strace" "$here" "$first" 2>&1 <<'PY'
import re, sys
sys.path.insert(0, sys.argv[2])
from fsyncs import joined
lines = list(joined(sys.argv[1]))
first = int(sys.argv[3])
at = next((i for i, (_, _, x) in enumerate(lines)
           if re.match(r'recvfrom\(\d+<[^>]*>, ".*\\"op\\":\\"job-ended\\",\\"job\\":%d,' % first, x)), None)
assert at is not None, "no job-ended of job %d traced" % first
fd = re.match(r"recvfrom\((\d+)<", lines[at][2]).group(1)
sends = [(i, x) for i, (_, _, x) in enumerate(lines[at:], at) if x.startswith("sendto(")]
answer = next((i for i, x in sends if x.startswith("sendto(%s<" % fd)), None)
lease = next((i for i, x in sends if '\\"lease\\":' in x and not x.startswith("sendto(%s<" % fd)), None)
assert answer is not None, "the ended job's runner was not answered"
assert lease is not None, "no lease went to the next job's runner"
assert '\\"next\\":{' in lines[answer][2], "the ended runner was not given a next job: " + lines[answer][2][:160]
assert lease < answer, "the ended runner was answered first:\n%s\n%s" % (lines[answer][2][:160], lines[lease][2][:160])
PY
)
[ -z "$out" ] || not_ok lease_before_answer "$out"
ok lease_before_answer

for _ in $(seq 1 100); do
    [ "$("$VRAM" queue --json 2>/dev/null | grep -o '"state": *"succeeded"' | wc -l)" = 7 ] && break
    sleep 0.05
done
stop_daemon
finish
