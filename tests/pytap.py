#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/pytap.py - runs one Python test file and prints a verdict line per
test, the way tests/run.sh counts them:

    ok - FILE/TEST
    not ok - FILE/TEST: why
    skip - FILE/TEST: why

Exits 0 when every test passed, 1 when one failed or errored, 77 when all
were skipped.  Usage: tests/pytap.py python/tests/test_x.py
"""
import importlib.util
import os
import sys
import traceback
import unittest


class Tap(unittest.TestResult):
    def __init__(self, file):
        super().__init__()
        self.file = file
        self.counts = {"ok": 0, "not ok": 0, "skip": 0}

    def line(self, verdict, test, why=None):
        name = "%s/%s" % (self.file, test._testMethodName)
        why = " ".join(str(why).split()) if why else ""
        print("%s - %s%s" % (verdict, name, ": " + why[:600] if why else ""), flush=True)
        self.counts[verdict] += 1

    def addSuccess(self, test):
        self.line("ok", test)

    def addFailure(self, test, err):
        self.line("not ok", test, self.why(err))

    def addError(self, test, err):
        self.line("not ok", test, self.why(err))

    def addSkip(self, test, reason):
        self.line("skip", test, reason)

    def addSubTest(self, test, subtest, err):
        # A failing subTest fails its test: said here, or it would vanish
        # (unittest calls neither addFailure nor addSuccess for it).
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.line("not ok", test, "%s %s" % (subtest._subDescription(), self.why(err)))

    def addExpectedFailure(self, test, err):
        self.line("ok", test)

    def addUnexpectedSuccess(self, test):
        self.line("not ok", test, "passed, but was expected to fail")

    @staticmethod
    def why(err):
        kind, value, tb = err
        frames = traceback.extract_tb(tb)
        where = "%s:%d: " % (os.path.basename(frames[-1].filename), frames[-1].lineno) if frames else ""
        return "%s%s: %s" % (where, kind.__name__, value)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: tests/pytap.py TEST_FILE.py\n")
        return 2
    path = argv[1]
    file = os.path.splitext(os.path.basename(path))[0]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec = importlib.util.spec_from_file_location(file, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except unittest.SkipTest as e:
        print("skip - %s/all: %s" % (file, e))
        return 77
    except Exception:
        print("not ok - %s/all: cannot load: %s" % (file, " ".join(traceback.format_exc().split())[-600:]))
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = Tap(file)
    suite.run(result)
    if result.counts["not ok"] or not result.wasSuccessful():
        return 1
    return 77 if result.counts["skip"] and not result.counts["ok"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
