# SPDX-License-Identifier: MIT
"""python/tests/test_layout.py - the ctypes structures have the C sizes.

A field added to a struct in include/vram.h and not in python/vram/_native.py
would make the library read or write past the end of Python's copy: the
helper tests/helpers/structsizes prints the C sizes to compare with.
"""
import ctypes
import json
import os
import pathlib
import subprocess
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vram import _native as n  # noqa: E402
from vram import _scheduler as sch  # noqa: E402

PAIRS = {
    "vram_image": n.Image, "vram_task_call": n.TaskCall, "vram_rung": n.Rung, "vram_task": n.Task,
    "vram_outcome": n.Outcome, "vram_sched_config": n.SchedConfig,
    "vram_lease_request": n.LeaseRequest, "vram_lease_info": n.LeaseInfo,
    "vram_ledger_device": n.LedgerDevice, "vram_sched_stats": sch.Stats,
    "vram_estimate": n.Estimate, "vram_suggestion": n.Suggestion, "vram_optimization": n.Optimization,
}


class LayoutTest(unittest.TestCase):
    def test_sizes_match_the_header(self):
        build = os.environ.get("VRAM_BUILD") or str(pathlib.Path(n.library_path).parents[1])
        helper = pathlib.Path(build) / "tests" / "helpers" / "structsizes"
        if not helper.exists():
            self.skipTest("no %s (build the tests first)" % helper)
        sizes = json.loads(subprocess.check_output([str(helper)]))
        for name, cls in PAIRS.items():
            with self.subTest(struct=name):
                self.assertEqual(ctypes.sizeof(cls), sizes[name], name)
        self.assertEqual(n.TaskCall.reason.offset, sizes["vram_task_call.reason"])
        self.assertEqual(n.Outcome.resampled.offset, sizes["vram_outcome.resampled"])
        self.assertEqual(n.LeaseRequest.pgid.offset, sizes["vram_lease_request.pgid"])
        # The version comes first; the binding sets the one its layout is.
        self.assertEqual(n.Task.fn.offset, sizes["vram_task.fn"])
        self.assertEqual(n.LeaseRequest.bytes.offset, sizes["vram_lease_request.bytes"])
        self.assertEqual(n.SchedConfig.workers.offset, sizes["vram_sched_config.workers"])
        self.assertEqual(n.Optimization.evaluated.offset, sizes["vram_optimization.evaluated"])
        self.assertEqual([n.TASK_VERSION, n.SCHED_CONFIG_VERSION, n.LEASE_REQUEST_VERSION],
                         sizes["versions"])


if __name__ == "__main__":
    unittest.main()
