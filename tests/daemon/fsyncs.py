# SPDX-License-Identifier: MIT
"""tests/daemon/fsyncs.py - what `strace -f -ttt -y` of vramd says of its
fsyncs of the queue's log, for the group-commit tests.

strace splits a call that another thread's call interrupts into
"<unfinished ...>" and "<... resumed>" halves; fsyncs() joins them, so
that each fsync is one (thread, began, returned) whichever thread made it.
"""
import re


def calls(path):
    """(thread, time, text) for each call in the trace, in its order."""
    for line in open(path):
        m = re.match(r"(\d+) +([\d.]+) (.*)", line)
        if m:
            yield m.group(1), float(m.group(2)), m.group(3)


def joined(path):
    """(thread, time, text) for each call in the trace, a call that another
    thread's interrupted joined from its "<unfinished ...>" and
    "<... resumed>" halves (its time: when it returned), so that its
    arguments and result read as one line."""
    held = {}
    for tid, t, text in calls(path):
        if text.endswith("<unfinished ...>"):
            held[tid] = re.sub(r"\s+$", " ", text[: -len("<unfinished ...>")])
            continue
        m = re.match(r"<\.\.\. \w+ resumed>\s*(.*)", text)
        if m and tid in held:
            yield tid, t, held.pop(tid) + m.group(1)
        else:
            yield tid, t, text


def fsyncs(path):
    """Every fsync of the log, in the order they began, as [thread, began,
    returned]; returned is None for one still under way when the trace
    ended, and `began` for one that no other call interrupted."""
    under_way, spans = {}, []
    for tid, t, text in calls(path):
        if re.match(r"f(data)?sync\(\d+<[^>]*wal>", text):
            span = [tid, t, None]
            spans.append(span)
            if "<unfinished" in text:
                under_way[tid] = span
            else:
                span[2] = t
        elif "resumed>" in text and "sync" in text and tid in under_way:
            under_way.pop(tid)[2] = t
    return spans


def one_at_a_time(spans):
    """Asserts that no fsync began while another was under way."""
    for before, after in zip(spans, spans[1:]):
        assert before[2] is not None and before[2] <= after[1], (
            "an fsync by %s began at %f while %s's, begun at %f, was under way" %
            (after[0], after[1], before[0], before[1]))
