# SPDX-License-Identifier: MIT
"""vram.Scheduler: runs Python callables under vram's admission engine.

Each submitted callable is a task with an estimate of the device memory it
needs; the C worker pool starts it when the memory is there (never more at
once than fits), retries it on the next rung of its ladder when it runs out
of memory, falls back when it fails, and hands results back in submission
order.  A callable "runs out of memory" when it raises vram.OutOfMemory, any
exception class named OutOfMemoryError (PyTorch's torch.OutOfMemoryError,
torch.cuda.OutOfMemoryError), or an exception whose "Type: message" is an
out-of-memory for libvram's one table of messages (vram_oom_parse: cuBLAS,
cuDNN, cuFFT, cuSOLVER, NCCL, ONNX Runtime, TensorFlow, JAX...).  Only the
type and message of an out-of-memory are kept: its frames are cleared and
the exception dropped before the cleanup hooks and the next rung, so the
failed attempt's tensors can be freed.  Image results (vram.Image, or a uint8 array of height x width
[x channels] such as a NumPy frame) are checked against the first frame and
resampled to its size and channels when they differ.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import ctypes
import gc
import importlib.util
import json
import re
import sys
import threading
import traceback

from . import _native as n
from ._native import Error, check, fail, parse_size

_OK, _FAILED, _OOM = 0, 1, 2
_DONE = 0                           # the status of an outcome with the task's own result
_STATUS = {0: "done", 1: "fell back", 2: "failed", 3: "canceled"}
_DEVICE_CPU, _RUNG_FALLBACK = -2, -1
_POLL_MS = 200                      # collector waits in slices, so Ctrl-C works
_SIZES = {}                         # "1.5GiB" -> bytes, for sizes given as text
_SIZES_MAX = 256
_NO_FN = n.TASK_FN()                # a NULL task callback, shared
_NOT_FRAMES = frozenset((type(None), bool, int, float, str, dict, list, tuple, set))


# Raise vram.OutOfMemory from a task when the device ran out of memory
# (`shortfall`: how many more bytes it needed, when known); _native has the
# class, so that the library's own out-of-memory errors are the same one.
OutOfMemory = n.OutOfMemory


class TaskFailed(Exception):
    """A task ended without a result (failed with no fallback, or canceled).
    `outcome` says how; the task's own exception is the __cause__."""

    def __init__(self, outcome):
        super().__init__("task %d %s: %s" % (outcome.task_id, outcome.status, outcome.reason))
        self.outcome = outcome


class Image:
    """A frame of 8-bit channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; rows
    packed (width * channels bytes each)."""

    def __init__(self, width: int, height: int, channels: int, data: bytes) -> None:
        self.width, self.height, self.channels = int(width), int(height), int(channels)
        self.data = data
        if len(memoryview(data).cast("B")) != self.width * self.height * self.channels:
            raise ValueError("Image: %d bytes for %dx%dx%d" % (
                len(memoryview(data).cast("B")), self.width, self.height, self.channels))

    def __repr__(self):
        return "vram.Image(%dx%d, %d channel(s))" % (self.width, self.height, self.channels)


class Outcome:
    """How one task ended: status ("done", "fell back", "failed",
    "canceled"), its result, and what it took."""

    __slots__ = ("task_id", "status", "result", "error", "reason", "device", "rung", "ooms",
                 "attempts", "bytes", "wait_ms", "run_ms", "freed_bytes", "resampled", "exception")

    def __repr__(self):
        return "vram.Outcome(task %d %s, rung %s, device %s)" % (
            self.task_id, self.status, self.rung, self.device)


class _OomReport(ctypes.Structure):
    """vram_oom_report, field for field."""
    _fields_ = [("source", ctypes.c_int), ("gpu", ctypes.c_int)] + [
        (name, ctypes.c_uint64) for name in ("tried_bytes", "total_bytes", "free_bytes",
                                             "process_bytes", "allocated_bytes",
                                             "reserved_bytes")] + [
        ("line", ctypes.c_char * 256), ("allowed_bytes", ctypes.c_uint64),
        ("pattern", ctypes.c_char * 24)]


n.lib.vram_oom_parse.restype = ctypes.c_int
n.lib.vram_oom_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_OomReport)]


def oom_report(text):
    """What libvram reads in `text` (a program's output, or "Type: message"):
    a dict of the out-of-memory report when the last failure in it is one
    (pattern, source, gpu, tried/total/free/allowed/reserved bytes, line),
    else None.  The table is libvram's, the runner's too."""
    raw = text.encode(errors="replace") if isinstance(text, str) else bytes(text)
    r = _OomReport()
    if n.lib.vram_oom_parse(raw, len(raw), ctypes.byref(r)) != 1:
        return None
    d = {name: getattr(r, name) for name, _ in _OomReport._fields_}
    d["line"] = r.line.decode(errors="replace")
    d["pattern"] = r.pattern.decode(errors="replace")
    return d


def _as_text(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the exceptions vram counts as out of device memory."""
    if isinstance(exc, OutOfMemory):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    return oom_report(_as_text(exc)) is not None


_SIZE = r"([0-9.]+ ?[KMGT]i?B)"


def shortfall_of(exc: BaseException) -> int:
    """Bytes an out-of-memory error says were missing: PyTorch's "Tried to
    allocate X ... of which Y is free" gives X - Y.  0 when it does not say."""
    if isinstance(exc, OutOfMemory) and exc.shortfall:
        return int(exc.shortfall)
    text = str(exc)
    r = oom_report(_as_text(exc))
    if r and r["tried_bytes"]:
        # Under a memory fraction the room was what was allowed less what
        # PyTorch had reserved in all (torch 2 says allocated and reserved-
        # but-unallocated apart; torch 1 the total), not the device's free.
        if r["allowed_bytes"]:
            reserved = r["reserved_bytes"] + (r["allocated_bytes"] if r["source"] == 1 else 0)
            room = max(r["allowed_bytes"] - reserved, 0)
        else:
            room = r["free_bytes"]
        return max(r["tried_bytes"] - room, 0) or r["tried_bytes"]
    tried = re.search(r"[Tt]ried to allocate " + _SIZE, text)
    if not tried:
        return 0
    try:
        want = parse_size(tried.group(1).replace(" ", ""))
        free = re.search(_SIZE + r" (?:is )?free", text)
        have = parse_size(free.group(1).replace(" ", "")) if free else 0
    except Error:
        return 0
    return max(want - have, 0) or want


def _frame_of(result):
    """(Image, keep-alive) for an image result, else (None, None)."""
    if type(result) in _NOT_FRAMES:  # the common results: no buffer to try
        return None, None
    if isinstance(result, Image):
        width, height, channels, data = result.width, result.height, result.channels, result.data
    else:
        try:
            view = memoryview(result)
        except TypeError:
            return None, None
        if view.format != "B" or view.ndim not in (2, 3):
            return None, None
        height, width = view.shape[0], view.shape[1]
        channels = view.shape[2] if view.ndim == 3 else 1
        data = view if view.c_contiguous else view.tobytes()   # rows in order
        if not 1 <= channels <= 4 or not width or not height:
            return None, None
    view = memoryview(data).cast("B")
    buf = view if not view.readonly else bytearray(view)
    array = (ctypes.c_uint8 * len(buf)).from_buffer(buf)
    image = n.Image(width, height, channels, width * channels,
                    ctypes.cast(array, n.c_u8p))
    return image, (buf, array)


def _like(original, image):
    """The resampled frame, in the kind of object the task returned."""
    data = ctypes.string_at(image.data, image.height * image.stride)
    n.lib.vram_free(ctypes.cast(image.data, ctypes.c_void_p))
    if not isinstance(original, Image) and "numpy" in sys.modules:
        np = sys.modules["numpy"]
        shape = (image.height, image.width) if image.channels == 1 and getattr(
            original, "ndim", 3) == 2 else (image.height, image.width, image.channels)
        return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()
    return Image(image.width, image.height, image.channels, data)


def _default_cleanup():
    """gc.collect() and torch.cuda.empty_cache(), when PyTorch is importable."""
    if importlib.util.find_spec("torch") is None:
        return []
    import torch
    hooks = [gc.collect]
    if torch.cuda.is_available():
        hooks.append(torch.cuda.empty_cache)
    return hooks


def _forget(exc):
    """An out-of-memory reduced to its type and message.  The exception's
    traceback holds the frames of the failed attempt and, through them, its
    tensors (PyTorch's FAQ: "My out of memory exception handler can't
    allocate memory"); their locals are cleared so that the cleanup hooks'
    empty_cache can give the memory back before the next rung."""
    summary = exc if type(exc) is OutOfMemory and exc.__traceback__ is None else \
        OutOfMemory(_as_text(exc), getattr(exc, "shortfall", None))
    tb = exc.__traceback__
    while exc is not None:
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
    del tb
    return summary


_tls = threading.local()
_TIMED_OUT = []


def _timed_out():
    """VRAM_ETIMEDOUT's value, looked up once."""
    if not _TIMED_OUT:
        _TIMED_OUT.append(n._code("VRAM_ETIMEDOUT"))
    return _TIMED_OUT[0]

# The pool's workers are C threads.  ctypes gives such a thread a new Python
# thread state for each callback and deletes it after (allocating and
# unmapping its frame stack: two thirds of a task's cost in bench/pysched.py).
# A worker's first task takes one more hold on its thread state, so that it
# lives as long as the thread; Scheduler.close() deletes them once the
# workers have been joined.
_gil_ensure = ctypes.PYFUNCTYPE(ctypes.c_int)(("PyGILState_Ensure", ctypes.pythonapi))
_tstate_get = ctypes.PYFUNCTYPE(ctypes.c_void_p)(("PyThreadState_Get", ctypes.pythonapi))
_tstate_clear = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(("PyThreadState_Clear", ctypes.pythonapi))
_tstate_delete = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(("PyThreadState_Delete", ctypes.pythonapi))


def _pin(kept):
    """Keeps this worker thread's Python thread state (see above); records
    it in `kept` for Scheduler.close().  Threads Python started keep theirs
    anyway and are left alone."""
    _tls.pinned = True
    if threading.get_ident() in threading._active:
        return
    _gil_ensure()
    kept.append(_tstate_get())


_ORDINALS = {}                      # vram device index -> CUDA ordinal, found by UUID


def _uuid_key(u):
    """A UUID as comparable text: "GPU-5ab0...-..." and torch's "5ab0...". """
    u = str(u).strip().lower()
    for prefix in ("gpu-", "mig-"):
        if u.startswith(prefix):
            u = u[len(prefix):]
    return u.replace("-", "")


def _cuda_ordinal(d):
    """CUDA's number for vram's device d in this process, matched by UUID
    through PyTorch when it is loaded (CUDA's default order is fastest
    first, not NVML's bus order); else d, which is CUDA's under
    CUDA_DEVICE_ORDER=PCI_BUS_ID or CUDA_VISIBLE_DEVICES (vram's jobs get
    both)."""
    if d in _ORDINALS:
        return _ORDINALS[d]
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return d
        vram = sys.modules.get("vram")
        mine = [x.get("uuid") for x in vram.status(via="local")["devices"] if x.get("index") == d]
        want = _uuid_key(mine[0]) if mine and mine[0] else ""
        for i in range(torch.cuda.device_count()):
            if want and _uuid_key(torch.cuda.get_device_properties(i).uuid) == want:
                _ORDINALS[d] = i
                return i
    except Exception:               # no torch CUDA, no uuid property: the index stands
        pass
    return d


def current_device() -> str | None:
    """Inside a task: where it was admitted, "cuda:N" or "cpu"; None outside
    a task.  N is CUDA's number of that device in this process: matched by
    UUID through PyTorch when it is loaded, else vram's index (CUDA's own
    with CUDA_DEVICE_ORDER=PCI_BUS_ID or a CUDA_VISIBLE_DEVICES list)."""
    d = getattr(_tls, "device", None)
    if d is None or d < 0 and d != _DEVICE_CPU:
        return None
    return "cpu" if d == _DEVICE_CPU else "cuda:%d" % _cuda_ordinal(d)


def _size(value, what):
    """parse_size, remembering sizes given as text (a task's size is
    usually the same few strings, and parsing one is a call into C)."""
    if type(value) is str:
        got = _SIZES.get(value)
        if got is None:
            got = parse_size(value, what)
            if len(_SIZES) < _SIZES_MAX:
                _SIZES[value] = got
        return got
    return parse_size(value, what)


_CLASSES = {}                       # (module, qualname) -> task class, as bytes
_CLASSES_MAX = 1024


def _class_of(fn):
    """fn's task class: "module.qualname", as bytes for C (remembered)."""
    key = (getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", None))
    got = _CLASSES.get(key)
    if got is None:
        got = ("%s.%s" % (key[0], key[1] if key[1] is not None else type(fn).__name__)).encode()
        if len(_CLASSES) < _CLASSES_MAX:
            _CLASSES[key] = got
    return got


def _resident_handle(resident):
    """The C handle of a vram.Resident (None: none)."""
    if resident is None:
        return None
    live = getattr(resident, "_live", None)
    if live is None:
        raise TypeError("resident: %r is not a vram.Resident (vram.register_resident)" % (resident,))
    return live()


class _Entry:
    __slots__ = ("fns", "fallback", "result", "exception", "frame", "keep", "fell_back_result")

    def __init__(self, fns, fallback):
        self.fns, self.fallback = fns, fallback
        self.result = self.exception = self.frame = self.keep = self.fell_back_result = None


class Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "submitted", "queued", "running", "done", "retried", "fell_back", "failed", "canceled",
        "on_cpu", "resampled", "cleanup_freed_bytes")] + [
        ("ndevices", ctypes.c_uint), ("leased_bytes", ctypes.c_uint64 * 64)]


def _stats_dict(st):
    d = {name: getattr(st, name) for name, _ in Stats._fields_[:11]}
    d["leased_bytes"] = list(st.leased_bytes[:st.ndevices])
    return d


class Scheduler:
    """A pool of `workers` threads (default: one per CPU) running tasks as
    memory allows, on the process's ledger (shared with vram.lease).

    progress(stats) is called after each task ends, never twice at once.
    cleanup: callables run after every attempt; by default gc.collect and
    torch.cuda.empty_cache when PyTorch is importable.  check_frames: treat
    uint8 arrays and vram.Image results as video frames (same size as the
    first, or resampled).  Use as a context manager, or call close()."""

    def __init__(self, workers: int | None = None, progress: Any = None, cleanup: Any = None,
                 check_frames: bool = True) -> None:
        from . import _session
        self._session = _session()
        self._lock = threading.Lock()
        # Threads inside a C call on the pool (next, stats, shutdown): close()
        # waits on _idle until there are none before it frees the pool.
        # submit() calls C holding _lock, so it needs no count.
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._entries = {}
        self._submitted = self._collected = 0
        self._closed = False
        self._check_frames = check_frames
        # submit()'s short path: one Task for the plain case, refilled under
        # the lock, and the call that keeps the GIL where that is safe.
        self._tid = ctypes.c_uint64()
        self._tid_ref = ctypes.byref(self._tid)
        self._submit_c = n.lib.vram_sched_submit if progress else n.sched_submit_holding_gil
        self._kept = []             # worker threads' Python thread states (_pin)
        self._progress = progress
        self._progress_cb = n.PROGRESS_FN(self._on_progress) if progress else n.PROGRESS_FN()
        self._run_cb = n.TASK_FN(self._run)
        self._fallback_cb = n.TASK_FN(self._run_fallback)
        self._plain = n.Task(version=n.TASK_VERSION, fn=self._run_cb, fallback=_NO_FN, device=-1,
                             wait_ms=-1)
        self._plain_ref = ctypes.byref(self._plain)
        workers = 0 if workers is None else n.in_range(workers, "workers", 0, n.UINT_MAX)
        cfg = n.SchedConfig(n.SCHED_CONFIG_VERSION, workers, self._progress_cb, None)
        self._s = ctypes.c_void_p()
        check(n.lib.vram_sched_open(self._session.ledger, ctypes.byref(cfg), ctypes.byref(self._s)))
        self._session.schedulers.add(self)
        hooks = list(cleanup) if cleanup is not None else _default_cleanup()
        self._hooks = [n.CLEANUP_FN(self._hook(h)) for h in hooks]
        for h in self._hooks:
            check(n.lib.vram_sched_add_cleanup(self._s, h, None))

    @staticmethod
    def _shut():
        """The error for a call on a closed scheduler (VRAM_ESHUTDOWN)."""
        return fail("VRAM_ESHUTDOWN", "the scheduler is closed: no more tasks, results or stats")

    def _enter(self):
        """Counts this thread in a C call on the pool; raises Error
        (VRAM_ESHUTDOWN) when the scheduler is closed (or closing)."""
        with self._lock:
            if self._closed:
                raise self._shut()
            self._busy += 1

    def _leave(self):
        with self._lock:
            self._left()

    def _left(self):
        """_leave's count, with _lock held."""
        self._busy -= 1
        if not self._busy:
            self._idle.notify_all()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- callbacks, on the worker threads --------------------------------

    @staticmethod
    def _hook(fn):
        def run(user, device):
            try:
                fn()
            except Exception as e:  # a hook must not kill a worker
                sys.stderr.write("vram: cleanup hook %r failed: %s\n" % (fn, e))
        return run

    def _on_progress(self, user, stats):
        try:
            self._progress(_stats_dict(ctypes.cast(stats, ctypes.POINTER(Stats)).contents))
        except Exception as e:
            sys.stderr.write("vram: progress callback failed: %s\n" % e)

    def _call(self, call_ptr, fn, entry, is_fallback):
        if not getattr(_tls, "pinned", False):
            _pin(self._kept)
        call = call_ptr.contents
        _tls.device = call.device
        try:
            result = fn()
        except BaseException as e:
            if not is_fallback and is_out_of_memory(e):
                call.shortfall_bytes = shortfall_of(e)
                entry.exception = _forget(e)
                _tls.device = None
                return _OOM             # e is dropped here, before cleanup
            entry.exception = e
            _tls.device = None
            call.reason = ("%s: %s" % (type(e).__name__, e)).encode(errors="replace")[:159]
            return _FAILED
        entry.exception = None
        _tls.device = None
        if is_fallback:
            entry.fell_back_result = result
        else:
            entry.result = result
        if self._check_frames:
            frame, keep = _frame_of(result)
            if frame is not None:
                call.image = frame
                entry.frame, entry.keep = result, keep
        return _OK

    def _run(self, call_ptr):
        call = call_ptr.contents
        entry = self._entries.get(call.task_id)
        if entry is None:
            return _FAILED
        return self._call(call_ptr, entry.fns[call.rung], entry, False)

    def _run_fallback(self, call_ptr):
        entry = self._entries.get(call_ptr.contents.task_id)
        if entry is None or entry.fallback is None:
            return _FAILED
        return self._call(call_ptr, entry.fallback, entry, True)

    # ---- submitting --------------------------------------------------------

    def submit(self, fn: Callable[[], Any], vram: int | str | None = None,
               ladder: Sequence[tuple[int | str, Callable[[], Any]]] = (), fallback: Callable[[], Any] | None = None,
               cpu_ok: bool = False, priority: int = 0, wait: float | None = None, device: int | None = None,
               task_class: str | None = None, expected: float | None = None, resident: Any = None,
               **old: Any) -> int:
        """Queues fn() to run when `vram` (bytes, or a size such as "1.5GiB":
        what one attempt needs; no default, it is the task's own) of device
        memory are free.  `bytes=` is the old name of `vram=` (deprecated).

        ladder: [(bytes, fn), ...], cheaper variants tried in turn after an
        out-of-memory; fallback: makes the result when the task failed or
        ran out of rungs (e.g. returns the original frame).  cpu_ok: may run
        on the CPU when no device can take it within `wait` seconds (None:
        waits as long as it takes; negative, NaN or infinite: InvalidValue).  task_class: what vram learns estimates
        under (default: fn's qualified name).  expected: seconds one attempt
        takes, if known.  resident: a vram.Resident the task uses.  Returns
        the task's id, its place in the order of results."""
        if "bytes" in old:
            import warnings
            warnings.warn("Scheduler.submit(bytes=...) is now vram=...", DeprecationWarning, stacklevel=2)
            if vram is not None:
                raise TypeError("submit: give vram= or the old bytes=, not both")
            vram = old.pop("bytes")
        if old:
            raise TypeError("submit() got an unexpected keyword argument %r" % next(iter(old)))
        if vram is None and not self._closed:
            raise TypeError("submit: vram= is missing: the device memory one attempt of the task needs "
                            "(bytes, or a size such as '1.5GiB')")
        if self._closed:
            raise self._shut()
        # Per-task cost is the point here (bench/pysched.py): the common case
        # (one callable, no ladder, a size seen before) takes the short paths.
        if fn is not None and not callable(fn):
            raise TypeError("vram: %r is not callable" % (fn,))
        if fallback is not None and not callable(fallback):
            raise TypeError("vram: %r is not callable" % (fallback,))
        size = _size(vram, "bytes")
        if task_class is None:
            cls = _class_of(fn) if fn is not None else None
        else:
            cls = n.text(task_class, "task_class") or None
        if (fn is not None and not ladder and fallback is None and device is None and not priority
                and not cpu_ok and wait is None and not expected and resident is None):
            entry = _Entry([fn], None)
            with self._lock:        # ids follow the order of calls to submit
                if self._closed:    # close() marks it under this lock
                    raise self._shut()
                key = self._submitted
                self._entries[key] = entry
                task = self._plain  # one Task, filled in under the lock
                task.bytes, task.task_class = size, cls
                rc = self._submit_c(self._s, self._plain_ref, self._tid_ref)
                if rc:
                    del self._entries[key]
                    check(rc)
                self._submitted = key + 1
            return key
        fns = [fn]
        ladder_c = None
        if ladder:
            rungs = []
            for b, f in ladder:
                if f is not None and not callable(f):
                    raise TypeError("vram: %r is not callable" % (f,))
                rungs.append(n.Rung(_size(b, "ladder bytes"), self._run_cb if f is not None else _NO_FN))
                fns.append(f)
            ladder_c = (n.Rung * len(rungs))(*rungs)
        task = n.Task(
            version=n.TASK_VERSION, fn=self._run_cb if fn is not None else _NO_FN, bytes=size,
            ladder=ladder_c, nrungs=len(fns) - 1,
            fallback=self._fallback_cb if fallback is not None else _NO_FN,
            task_class=cls,
            device=-1 if device is None else n.in_range(device, "device"),
            priority=n.in_range(priority, "priority", -n.INT_MAX - 1),
            cpu_ok=1 if cpu_ok else 0, wait_ms=n.milliseconds(wait, "wait"),
            expected_ms=n.milliseconds(expected, "expected", 0),
            resident=_resident_handle(resident))
        entry = _Entry(fns, fallback)
        with self._lock:            # ids follow the order of calls to submit
            if self._closed:
                raise self._shut()
            key = self._submitted
            self._entries[key] = entry
            rc = self._submit_c(self._s, ctypes.byref(task), self._tid_ref)
            if rc:
                del self._entries[key]
                check(rc)
            self._submitted = key + 1
        return key

    # ---- collecting -----------------------------------------------------------

    def _next(self):
        """The next outcome in submission order and its entry, or None once
        every task submitted so far has been handed back."""
        timed_out = _timed_out()
        while True:
            if self._collected >= self._submitted and not self._closed:
                return None         # each read is whole under the GIL
            out = n.Outcome()
            self._enter()           # raises once closed; close() waits for us
            rc, entry = -1, None
            try:
                rc = n.lib.vram_sched_next(self._s, _POLL_MS, ctypes.byref(out))
            finally:
                with self._lock:    # taken before close() may clear the entries
                    if rc == 0:
                        self._collected += 1
                        entry = self._entries.pop(out.task_id)
                    self._left()
            if rc == timed_out:
                continue
            check(rc)
            return out, entry

    def outcomes(self) -> Iterator[Outcome]:
        """Yields an Outcome per task in submission order, as each is ready,
        until every task submitted so far has been handed back.  Raises
        Error (VRAM_ESHUTDOWN) once the scheduler is closed."""
        while True:
            got = self._next()
            if got is None:
                return
            yield self._outcome(*got)

    def results(self) -> Iterator[Any]:
        """Yields each task's result in submission order (the fallback's
        when it fell back).  A task with no result raises TaskFailed; a
        closed scheduler raises Error (VRAM_ESHUTDOWN)."""
        while True:
            got = self._next()
            if got is None:
                return
            out, entry = got
            if out.status == _DONE and not out.resampled:   # the short way
                yield entry.result
                continue
            o = self._outcome(out, entry)
            if o.status in ("failed", "canceled"):
                raise TaskFailed(o) from o.exception
            yield o.result

    @staticmethod
    def _outcome(out, entry):
        o = Outcome()
        o.task_id, o.status = out.task_id, _STATUS.get(out.status, "unknown")
        o.error = n.lib.vram_errname(out.error).decode() if out.error else None
        o.reason = out.reason.decode(errors="replace")
        o.device = "cpu" if out.device == _DEVICE_CPU else None if out.device < 0 else out.device
        o.rung = "fallback" if out.rung == _RUNG_FALLBACK else out.rung
        o.ooms, o.attempts, o.bytes = out.ooms, out.attempts, out.bytes
        o.wait_ms, o.run_ms, o.freed_bytes = out.wait_ms, out.run_ms, out.freed_bytes
        o.exception = entry.exception
        o.result = entry.fell_back_result if o.status == "fell back" else entry.result
        o.resampled = bool(out.resampled)
        if out.resampled:
            o.result = _like(entry.frame, out.image)
        return o

    def stats(self) -> dict[str, Any]:
        """queued, running, done, retried, fell_back, failed, canceled,
        on_cpu, resampled, cleanup_freed_bytes, leased_bytes per device.
        Raises Error (VRAM_ESHUTDOWN) once the scheduler is closed."""
        ptr = ctypes.c_void_p()
        self._enter()
        try:
            rc = n.lib.vram_sched_stats_json(self._s, ctypes.byref(ptr))
        finally:
            self._leave()
        check(rc)
        return json.loads(n.take_string(ptr))

    def shutdown(self, cancel: bool = True) -> None:
        """Takes no more tasks and waits until every task has ended: those
        not started yet are canceled (cancel=False runs them all), running
        ones finish.  Outcomes stay collectable."""
        try:
            self._enter()
        except Error:
            return                  # closed: nothing left to shut down
        try:
            rc = n.lib.vram_sched_shutdown(self._s, 1 if cancel else 0)
        finally:
            self._leave()
        check(rc)

    def close(self, cancel: bool = True) -> None:
        """Shuts down, then frees the pool.  Results not collected are
        dropped: submit, results, outcomes and stats raise Error
        (VRAM_ESHUTDOWN) after it (vram.reset() closes it too).  Safe from
        any thread: it first waits for calls other threads are in (a
        results() loop ends with VRAM_ESHUTDOWN within a fraction of a
        second); a second close, at once or later, returns."""
        with self._lock:
            if self._closed:        # closed, or being closed by another thread
                return
            self._closed = True     # from here no thread starts a C call on it
            while self._busy:       # those inside one end within _POLL_MS (next)
                self._idle.wait()   # or when their tasks end (shutdown)
        # Not under the lock: the workers' last callbacks may need it.
        n.lib.vram_sched_shutdown(self._s, 1 if cancel else 0)
        n.lib.vram_sched_close(self._s)     # joins the workers
        kept, self._kept = self._kept, []
        for ts in kept:                     # their threads are gone: nothing runs on these
            _tstate_clear(ts)
            _tstate_delete(ts)
        self._session.schedulers.discard(self)
        self._entries.clear()
