# SPDX-License-Identifier: MIT
"""examples/pipelines/standins/standin.py - what the stand-ins share.

A stand-in takes exactly the options of a real pipeline's script (an
argparse copy written here from reading the real one; the real code is not
copied) and, instead of loading weights and running a model, holds the
memory its options would hold on vram's simulated card, stage by stage
(examples/demo/pipeline.py's Job): too large a setting runs out of memory
there with PyTorch's message, which `vram run` reads before it retries on
the next rung.  Each stand-in prints one line on stdout,

    standin: {"script": ..., "args": {...}}

the options as its parser read them, which the tests hold the plan to
(and pipeline.py's "vram-demo: {...}" line with the peak it held).

Environment (not options, so that the option set stays the real one):
STANDIN_PACE multiplies every step's time (default 0.02: a run takes well
under a second); STANDIN_DRY=1 prints the peak the options would need and
exits without allocating.
"""

import json
import os
import pathlib
import sys
import types

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "demo"))
import pipeline  # noqa: E402  (examples/demo/pipeline.py)

GiB, MiB, KiB = pipeline.GiB, pipeline.MiB, pipeline.KiB


def run(script, args, stages):
    """Runs `stages` on the simulated card: a list of ("load", label, bytes),
    ("free", label), ("compute", label, steps, bytes_per_step) in order.
    Returns the exit status (1 after an out-of-memory)."""
    if os.environ.get("STANDIN_DRY"):
        held, peak, live = pipeline.CONTEXT_BYTES, pipeline.CONTEXT_BYTES, {}
        for s in stages:
            if s[0] == "load":
                live[s[1]] = s[2]
                held += s[2]
            elif s[0] == "free":
                held -= live.pop(s[1])
            peak = max(peak, held + (s[3] if s[0] == "compute" else 0))
        print("standin-dry: %d" % peak)
        return 0
    pace = float(os.environ.get("STANDIN_PACE", "0.02"))
    opts = types.SimpleNamespace(vram=None, sim=True, pace=pace)
    total = sum(s[2] for s in stages if s[0] == "compute")
    keys = {}

    def body(job):
        for s in stages:
            if s[0] == "load":
                keys[s[1]] = job.load(s[1], int(s[2]), seconds=0.05)
            elif s[0] == "free":
                job.unload(keys.pop(s[1]))
            else:
                job.compute(s[1], s[2], 0.05, per_step=int(s[3]))

    job_args = dict(vars(args))
    rc = pipeline.main(script, opts, max(1, total), body)
    if rc == 0:
        print("standin: " + json.dumps({"script": script, "args": job_args}), flush=True)
    return rc
