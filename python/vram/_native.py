# SPDX-License-Identifier: MIT
"""The C side of the binding: finding libvram, its structures and calls, and
turning its error codes into Python exceptions.

The library is looked for in this order: the path in VRAM_LIBRARY; the
build tree beside this package (build/lib/libvram.so in the repository that
holds python/); the system's library path.  Structures mirror
include/vram.h field for field; tests check their sizes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import pathlib

c_u8p = ctypes.POINTER(ctypes.c_uint8)


def _candidates():
    env = os.environ.get("VRAM_LIBRARY")
    if env:
        yield env, "VRAM_LIBRARY"
        return
    here = pathlib.Path(__file__).resolve().parent
    yield str(here.parent.parent / "build" / "lib" / "libvram.so"), "the build tree"
    found = ctypes.util.find_library("vram")
    if found:
        yield found, "the system library path"
    yield "libvram.so.0", "the system library path"


def _load():
    tried = []
    for path, where in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
    raise ImportError("vram: cannot load libvram; tried " + "; ".join(tried) +
                      ". Build it with `make`, or set VRAM_LIBRARY to its path.")


lib, library_path = _load()


# ---- structures ------------------------------------------------------------

class Image(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("channels", ctypes.c_uint32), ("stride", ctypes.c_uint32),
                ("data", c_u8p)]


class TaskCall(ctypes.Structure):
    _fields_ = [("task_id", ctypes.c_uint64), ("user", ctypes.c_void_p),
                ("device", ctypes.c_int), ("rung", ctypes.c_int),
                ("bytes", ctypes.c_uint64), ("attempt", ctypes.c_uint),
                ("result", ctypes.c_void_p), ("image", Image),
                ("shortfall_bytes", ctypes.c_uint64), ("reason", ctypes.c_char * 160)]


TASK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(TaskCall))
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
CLEANUP_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int)
UNLOAD_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint64)


class Rung(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint64), ("fn", TASK_FN)]


# Growing input structs start with their version (vram.h): these are the
# versions this binding's layouts describe.
TASK_VERSION = 1
SCHED_CONFIG_VERSION = 1
LEASE_REQUEST_VERSION = 1


class Task(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("fn", TASK_FN), ("bytes", ctypes.c_uint64),
                ("device_bytes", ctypes.POINTER(ctypes.c_uint64)),
                ("ndevice_bytes", ctypes.c_uint),
                ("ladder", ctypes.POINTER(Rung)), ("nrungs", ctypes.c_uint),
                ("fallback", TASK_FN), ("task_class", ctypes.c_char_p),
                ("device", ctypes.c_int), ("priority", ctypes.c_int), ("cpu_ok", ctypes.c_int),
                ("wait_ms", ctypes.c_int64), ("expected_ms", ctypes.c_uint64),
                ("resident", ctypes.c_void_p), ("user", ctypes.c_void_p),
                ("free_result", FREE_FN)]


class Outcome(ctypes.Structure):
    _fields_ = [("task_id", ctypes.c_uint64), ("status", ctypes.c_int), ("error", ctypes.c_int),
                ("reason", ctypes.c_char * 160), ("device", ctypes.c_int), ("rung", ctypes.c_int),
                ("ooms", ctypes.c_uint), ("attempts", ctypes.c_uint), ("bytes", ctypes.c_uint64),
                ("wait_ms", ctypes.c_uint64), ("run_ms", ctypes.c_uint64),
                ("freed_bytes", ctypes.c_uint64), ("result", ctypes.c_void_p),
                ("image", Image), ("resampled", ctypes.c_int)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class SchedConfig(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("workers", ctypes.c_uint), ("progress", PROGRESS_FN),
                ("progress_user", ctypes.c_void_p)]


class LeaseRequest(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("bytes", ctypes.c_uint64), ("device", ctypes.c_int),
                ("priority", ctypes.c_int), ("wait_ms", ctypes.c_int64), ("holder", ctypes.c_char_p), ("pid", ctypes.c_uint32),
                ("expected_ms", ctypes.c_uint64), ("task_class", ctypes.c_char_p),
                ("pgid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("wait_reason", ctypes.c_void_p)]


class LeaseInfo(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("device", ctypes.c_uint), ("bytes", ctypes.c_uint64),
                ("holder", ctypes.c_char * 64), ("pid", ctypes.c_uint32), ("uid", ctypes.c_uint32),
                ("held_ms", ctypes.c_uint64), ("waiting", ctypes.c_uint), ("reason", ctypes.c_char * 16)]


class LedgerDevice(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint), ("sampled", ctypes.c_int)] + [
        (name, ctypes.c_uint64) for name in (
            "total_bytes", "margin_bytes", "capacity_bytes", "others_bytes", "leased_bytes",
            "resident_bytes", "evictable_bytes", "available_bytes")] + [
        ("leases", ctypes.c_uint), ("residents", ctypes.c_uint), ("waiting", ctypes.c_uint)]


# ---- calls -----------------------------------------------------------------

def _declare(name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


vp, pvp, cp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p
u64, pu64, i64 = ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64), ctypes.c_int64
_declare("vram_version", cp)
_declare("vram_errname", cp, ctypes.c_int)
_declare("vram_strerror", cp, ctypes.c_int)
_declare("vram_last_error", cp)
_declare("vram_free", None, vp)
_declare("vram_size_parse", ctypes.c_int, cp, pu64)
_declare("vram_size_format", ctypes.c_int, u64, cp, ctypes.c_size_t)
_declare("vram_options_new", ctypes.c_int, pvp)
_declare("vram_options_free", None, vp)
_declare("vram_options_set", ctypes.c_int, vp, cp, cp, cp)
_declare("vram_options_load_env", ctypes.c_int, vp)
_declare("vram_ctx_open", ctypes.c_int, pvp, vp)
_declare("vram_ctx_close", ctypes.c_int, vp)
_declare("vram_snapshot_take", ctypes.c_int, vp, cp, pvp)
_declare("vram_snapshot_to_json", ctypes.c_int, vp, pvp)
_declare("vram_snapshot_free", None, vp)
_declare("vram_sim_set_usage", ctypes.c_int, vp, ctypes.c_uint, u64)
_declare("vram_ledger_open", ctypes.c_int, vp, vp, pvp)
_declare("vram_ledger_close", ctypes.c_int, vp)
_declare("vram_ledger_monitor", vp, vp)
_declare("vram_ledger_device_info", ctypes.c_int, vp, ctypes.c_uint, ctypes.POINTER(LedgerDevice))
_declare("vram_monitor_mark", ctypes.c_int, vp, ctypes.c_uint, cp)
_declare("vram_monitor_marks_text", ctypes.c_int, vp, pvp)
_declare("vram_lease_acquire", ctypes.c_int, vp, ctypes.POINTER(LeaseRequest),
         ctypes.POINTER(LeaseInfo))
_declare("vram_lease_release", ctypes.c_int, vp, u64)
_declare("vram_resident_register", ctypes.c_int, vp, cp, ctypes.c_uint, u64, UNLOAD_FN, vp, pvp)
_declare("vram_resident_use", ctypes.c_int, vp)
_declare("vram_resident_done", ctypes.c_int, vp)
_declare("vram_resident_loaded", ctypes.c_int, vp)
_declare("vram_resident_unregister", ctypes.c_int, vp)
_declare("vram_sched_open", ctypes.c_int, vp, ctypes.POINTER(SchedConfig), pvp)
_declare("vram_sched_add_cleanup", ctypes.c_int, vp, CLEANUP_FN, vp)
_declare("vram_sched_submit", ctypes.c_int, vp, ctypes.POINTER(Task), pu64)
# The same call without letting go of the GIL (ctypes.PyDLL): a submit is a
# few microseconds of C that never waits on Python, and handing the GIL to a
# worker at every submit was a thread switch per task (bench/pysched.py).
# Only for a pool with no progress callback: a worker calls that holding the
# pool's progress lock, which a submit that fails to queue takes.
pylib = ctypes.PyDLL(library_path)
sched_submit_holding_gil = pylib.vram_sched_submit
sched_submit_holding_gil.restype = ctypes.c_int
sched_submit_holding_gil.argtypes = [vp, ctypes.POINTER(Task), pu64]
_declare("vram_sched_next", ctypes.c_int, vp, i64, ctypes.POINTER(Outcome))
_declare("vram_sched_stats_json", ctypes.c_int, vp, pvp)
_declare("vram_sched_shutdown", ctypes.c_int, vp, ctypes.c_int)
_declare("vram_sched_close", ctypes.c_int, vp)
_declare("vram_outcome_name", cp, ctypes.c_int)
_declare("vram_client_open", ctypes.c_int, cp, pvp)
_declare("vram_client_close", None, vp)
_declare("vram_client_lease", ctypes.c_int, vp, u64, ctypes.c_int, i64, pu64, ctypes.POINTER(ctypes.c_uint))
_declare("vram_client_release", ctypes.c_int, vp, u64)
_declare("vram_client_snapshot", ctypes.c_int, vp, pvp)

class Estimate(ctypes.Structure):
    _fields_ = [("memory", ctypes.c_int), ("peak_bytes", ctypes.c_uint64), ("weights_bytes", ctypes.c_uint64),
                ("activation_bytes", ctypes.c_uint64), ("overhead_bytes", ctypes.c_uint64),
                ("margin_bytes", ctypes.c_uint64), ("host_bytes", ctypes.c_uint64),
                ("seconds", ctypes.c_double), ("peak_stage", ctypes.c_char * 32)]


class Suggestion(ctypes.Structure):
    _fields_ = [("parameter", ctypes.c_char * 32), ("from_", ctypes.c_char * 64), ("to", ctypes.c_char * 64),
                ("saved_bytes", ctypes.c_int64), ("seconds_change", ctypes.c_double),
                ("quality_cost", ctypes.c_double), ("reason", ctypes.c_char * 256)]


class Optimization(ctypes.Structure):
    _fields_ = [("fits", ctypes.c_int), ("budget_bytes", ctypes.c_uint64), ("before", Estimate),
                ("after", Estimate), ("quality_cost", ctypes.c_double), ("nsuggestions", ctypes.c_size_t),
                ("suggestions", Suggestion * 16), ("evaluated", ctypes.c_uint)]


try:
    _declare("vram_plan_json", ctypes.c_int, vp, cp, ctypes.POINTER(cp), ctypes.c_size_t, u64,
             ctypes.c_uint, pvp)
    _declare("vram_ctx_options", vp, vp)
    _declare("vram_profile_load", ctypes.c_int, vp, cp, pvp)
    _declare("vram_profile_free", None, vp)
    _declare("vram_estimate_run", ctypes.c_int, vp, ctypes.POINTER(cp), ctypes.c_size_t, u64,
             ctypes.POINTER(Estimate))
    _declare("vram_optimize", ctypes.c_int, vp, ctypes.POINTER(cp), ctypes.c_size_t, u64, ctypes.c_int,
             ctypes.c_double, ctypes.POINTER(Optimization))
    has_planner = True
except AttributeError:
    has_planner = False


# ---- errors ----------------------------------------------------------------

_codes = {}


def _code(name):
    """The value of a VRAM_E* code, from the library's own list.  The table
    is made whole before anyone sees it: ctypes lets other threads run
    between the calls that fill it (a scheduler's worker raising
    OutOfMemory while the collecting thread looks up VRAM_ETIMEDOUT), and
    one that found it half made got a KeyError."""
    if not _codes:
        table = {}
        for value in list(range(-200, 1)) + list(range(-4100, -3999)):
            table.setdefault(lib.vram_errname(value).decode(), value)
        _codes.update(table)        # one step under the GIL
    return _codes[name]


class Error(Exception):
    """A vram error: `name` is the code's name ("VRAM_ENOFIT"), `code` its
    number, `detail` what the library said about it."""

    def __init__(self, code, detail=""):
        self.code = code
        self.name = lib.vram_errname(code).decode()
        self.detail = detail or lib.vram_strerror(code).decode()
        super().__init__("%s: %s" % (self.name, self.detail))


class InvalidValue(Error, ValueError):
    """A value vram refuses: a size, a setting, a ladder, a time
    (VRAM_EINVAL, VRAM_ERANGE, VRAM_EPARSE).  A ValueError."""


class Timeout(Error, TimeoutError):
    """A wait that ran out of time (VRAM_ETIMEDOUT).  A TimeoutError."""


class NotFound(Error, LookupError):
    """An unknown device, model or entry (VRAM_ENODEV, VRAM_ENOENT).  A
    LookupError."""


class OutOfMemory(Error):
    """Out of GPU memory: what vram raises when a device or the budget
    cannot hold what was asked (VRAM_EOOM, VRAM_ENOFIT, VRAM_EBUDGET), and
    what a scheduler task raises to say it ran out (`shortfall`: how many
    more bytes it needed, when known).  The one out-of-memory class."""

    def __init__(self, message="out of memory", shortfall=None, code=None):
        Error.__init__(self, _code("VRAM_EOOM") if code is None else code, message)
        self.shortfall = shortfall
        self._raised_by_task = code is None

    def __str__(self):
        return self.detail if self._raised_by_task else Error.__str__(self)


_CLASSES = {"VRAM_EINVAL": InvalidValue, "VRAM_ERANGE": InvalidValue, "VRAM_EPARSE": InvalidValue,
            "VRAM_ETIMEDOUT": Timeout, "VRAM_ENODEV": NotFound, "VRAM_ENOENT": NotFound,
            "VRAM_EOOM": OutOfMemory, "VRAM_ENOFIT": OutOfMemory, "VRAM_EBUDGET": OutOfMemory}


def error(code, detail=""):
    """The Error for a code, as the subclass a Python user expects."""
    cls = _CLASSES.get(lib.vram_errname(code).decode(), Error)
    if cls is OutOfMemory:
        return OutOfMemory(detail or lib.vram_strerror(code).decode(), code=code)
    return cls(code, detail)


def check(rc):
    """Raises Error (a subclass by code) for a failed call; call it at once,
    on the same thread."""
    if rc != 0:
        raise error(rc, lib.vram_last_error().decode(errors="replace"))
    return rc


def fail(name, detail):
    """An Error for a code by name, with our own detail."""
    return error(_code(name), detail)


def take_string(ptr):
    """A string the library returned for vram_free, freed."""
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        lib.vram_free(ptr)


_SIZE_LIMIT = 1 << 64               # sizes are uint64_t in C


def parse_size(value: int | str, what: str = "size") -> int:
    """Bytes from an int or a size a person wrote ("1.5GiB", "512M").
    Sizes go up to 2^64-1 bytes, as C holds them: a bigger one raises
    InvalidValue (VRAM_ERANGE), never wraps."""
    if isinstance(value, bool):
        raise TypeError("%s: %r is not a size" % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise fail("VRAM_EINVAL", "%s %d is negative" % (what, value))
        if value >= _SIZE_LIMIT:
            raise fail("VRAM_ERANGE", "%s %d is too large: sizes go up to 16 EiB (2^64-1 bytes)"
                       % (what, value))
        return value
    if isinstance(value, float):
        if not value >= 0:
            raise fail("VRAM_EINVAL", "%s %r is negative or not a number" % (what, value))
        if value >= _SIZE_LIMIT:     # inf too
            raise fail("VRAM_ERANGE", "%s %r is too large: sizes go up to 16 EiB (2^64-1 bytes)"
                       % (what, value))
        return int(value)
    if not isinstance(value, str):
        raise TypeError("%s: %r is not a size (an int of bytes, or text such as '1.5GiB')"
                        % (what, value))
    out = ctypes.c_uint64()
    check(lib.vram_size_parse(text(value, what), ctypes.byref(out)))
    return out.value


def text(value: str, what: str) -> bytes:
    """Text for C, encoded: a str (TypeError otherwise) with no NUL byte,
    where C would cut it, and encodable as UTF-8 (a lone surrogate such as
    "\\udcff" is not); InvalidValue naming `what` otherwise."""
    if not isinstance(value, str):
        raise TypeError("%s: %r is not text (a str)" % (what, value))
    if "\0" in value:
        raise fail("VRAM_EINVAL", "%s %r has a NUL byte: C would cut it there" % (what, value))
    try:
        return value.encode()
    except UnicodeEncodeError as e:
        raise fail("VRAM_EINVAL", "%s %r is not UTF-8 text: %s" % (what, value, e.reason)) from None


INT_MAX = (1 << 31) - 1             # C int: device indices, priorities
UINT_MAX = (1 << 32) - 1


def in_range(value: int, what: str, low: int = 0, high: int = INT_MAX) -> int:
    """An int for C, checked: TypeError for anything but an int (a bool
    too), InvalidValue (VRAM_ERANGE) outside low..high, naming it; ctypes
    would keep its low bits (device 2^32 was device 0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s: %r is not an int" % (what, value))
    if not low <= value <= high:
        raise fail("VRAM_ERANGE", "%s %d is out of range (%d to %d)" % (what, value, low, high))
    return value


def milliseconds(seconds: float | None, what: str = "wait", forever: int = -1) -> int:
    """Whole milliseconds for C from seconds (an int or a float, finite and
    not negative); None gives `forever` (-1: wait as long as it takes).
    Anything else raises InvalidValue naming it (TypeError for a
    non-number): int(-0.001 * 1000) is -1, which C reads as forever."""
    if seconds is None:
        return forever
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError("%s: %r is not a number of seconds" % (what, seconds))
    if not math.isfinite(seconds) or seconds < 0:
        raise fail("VRAM_EINVAL", "%s %r is not a number of seconds (finite, 0 or more%s)"
                   % (what, seconds, "; None waits as long as it takes" if forever == -1 else ""))
    ms = int(seconds * 1000)
    if ms >= 1 << 63:
        raise fail("VRAM_ERANGE", "%s %r seconds is too long" % (what, seconds))
    return ms


def format_size(n: int) -> str:
    """A number of bytes as vram prints it ("1.5 GiB"): an int from 0 to
    2^64-1 (TypeError for anything but an int, InvalidValue outside)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError("format_size: %r is not a number of bytes (an int)" % (n,))
    if n < 0:
        raise fail("VRAM_EINVAL", "format_size: %d is negative" % n)
    if n >= _SIZE_LIMIT:
        raise fail("VRAM_ERANGE", "format_size: %d is too large: sizes go up to 16 EiB "
                   "(2^64-1 bytes)" % n)
    buf = ctypes.create_string_buffer(32)
    lib.vram_size_format(n, buf, 32)
    return buf.value.decode()
