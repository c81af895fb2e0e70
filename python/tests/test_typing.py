# SPDX-License-Identifier: MIT
"""python/tests/test_typing.py - the package is typed (issue 15): py.typed
ships beside it, and every public function and public method of what
vram and vram.apply export has a type hint on each parameter and its
return, hints that resolve (typing.get_type_hints) to real types."""

import inspect
import pathlib
import sys
import typing
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import vram  # noqa: E402
import vram.apply  # noqa: E402


def public_callables():
    for mod in (vram, vram.apply):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                for m, f in vars(obj).items():
                    if inspect.isfunction(f) and (not m.startswith("_") or m in ("__init__", "__exit__")):
                        yield "%s.%s.%s" % (mod.__name__, name, m), f, obj
            elif inspect.isfunction(obj):
                yield "%s.%s" % (mod.__name__, name), obj, None


class Typed(unittest.TestCase):
    def test_py_typed_ships(self):
        self.assertTrue((pathlib.Path(vram.__file__).parent / "py.typed").is_file())

    def test_every_public_callable_is_annotated(self):
        missing = []
        n = 0
        for name, f, owner in public_callables():
            n += 1
            sig = inspect.signature(f)
            for p in sig.parameters.values():
                if p.name != "self" and p.annotation is inspect.Parameter.empty:
                    missing.append("%s(%s)" % (name, p.name))
            if sig.return_annotation is inspect.Signature.empty:
                missing.append("%s -> ?" % name)
            # The hints name real types (a typo fails here).
            namespace = dict(vars(sys.modules[f.__module__]))
            typing.get_type_hints(f, globalns=namespace)
        self.assertGreater(n, 30)
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
