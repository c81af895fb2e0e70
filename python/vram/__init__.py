# SPDX-License-Identifier: MIT
"""vram: keep AI video generation inside the GPU memory it has.

A ctypes binding over libvram (no compiled extension, nothing beyond the
standard library)::

    import vram

    vram.status()                         # every GPU and the host, as a dict
    with vram.lease("6GiB"):              # waits until 6 GiB can be reserved
        run_the_video_model()
    enhancer = vram.register_resident("gfpgan", "400MiB", unload=drop_model)
    vram.mark("after audio encoder")      # used memory at a named stage

    with vram.Scheduler(workers=8) as s:  # as many frames at once as fit
        for f in frames:
            s.submit(lambda f=f: enhance(f, batch=8), vram="1.5GiB",
                     ladder=[("1GiB", lambda f=f: enhance(f, batch=1))],
                     fallback=lambda f=f: f)
        video = list(s.results())         # in frame order

The process has one context and one ledger, opened on first use the way
`vram status` opens them: VRAM_BACKEND, VRAM_SIM, VRAM_MARGIN and the other
VRAM_* settings apply (a bad value raises vram.Error); configure() sets
options that win over the environment, as flags do.  Errors are vram.Error
exceptions named after the library's codes ("VRAM_ENOFIT: needs 30.0 GiB,
more than any device can take: ..."), of the class a Python user expects:
vram.InvalidValue (a ValueError) for a bad size or setting, vram.Timeout (a
TimeoutError) for a wait that ran out, vram.NotFound (a LookupError) for an
unknown device or model, and one vram.OutOfMemory for the device's memory.
"""

from __future__ import annotations

from typing import Any, Callable

import atexit
import ctypes
import json
import os
import sys
import threading
import weakref

from . import _native as _n
from ._native import Error, format_size, parse_size
from ._scheduler import (Image, OutOfMemory, Outcome, Scheduler, TaskFailed, current_device,
                         is_out_of_memory, shortfall_of)

__all__ = ["Error", "OutOfMemory", "TaskFailed", "Image", "Outcome", "Scheduler", "Lease",
           "Resident", "status", "plan", "estimate", "optimize", "available", "lease", "register_resident", "mark", "marks", "device",
           "configure", "reset", "sim_set_usage", "parse_size", "format_size",
           "is_out_of_memory", "shortfall_of", "current_device", "library_path", "__version__"]

__version__ = _n.lib.vram_version().decode()
library_path = _n.library_path

# The exceptions a Python user expects, each a vram.Error too (_native.error
# picks the class by the library's code).
from ._native import InvalidValue, NotFound, Timeout  # noqa: E402
__all__ += ["InvalidValue", "NotFound", "Timeout"]


class _Session:
    """The process's context and ledger, and what hangs off them."""

    def __init__(self, overrides):
        opts = ctypes.c_void_p()
        _n.check(_n.lib.vram_options_new(ctypes.byref(opts)))
        self.ctx, self.ledger = ctypes.c_void_p(), ctypes.c_void_p()
        try:
            _n.check(_n.lib.vram_options_load_env(opts))
            for name, value in overrides.items():
                source = _n.text("vram.configure(%s=...)" % name, "option name")
                _n.check(_n.lib.vram_options_set(opts, _n.text(name, "option name"),
                                                 _n.text(str(value), "option %s" % name), source))
            _n.check(_n.lib.vram_ctx_open(ctypes.byref(self.ctx), opts))
        finally:
            _n.lib.vram_options_free(opts)
        rc = _n.lib.vram_ledger_open(self.ctx, None, ctypes.byref(self.ledger))
        if rc:
            detail = _n.lib.vram_last_error().decode(errors="replace")
            _n.lib.vram_ctx_close(self.ctx)
            raise _n.error(rc, detail)
        self.schedulers = weakref.WeakSet()
        self.residents = {}
        self.torch_marks = []       # (allocated, reserved) or None, one per mark()

    def close(self):
        for s in list(self.schedulers):
            s.close()
        _n.check(_n.lib.vram_ledger_close(self.ledger))
        _n.check(_n.lib.vram_ctx_close(self.ctx))


_lock = threading.RLock()
_current = None
_overrides = {}


def _session():
    global _current
    with _lock:
        if _current is None:
            _current = _Session(_overrides)
        return _current


def reset() -> None:
    """Closes the process's context and ledger (and its schedulers); the
    next call opens them again with the settings of that moment.  Raises
    Error (VRAM_EBUSY) while a lease or a resident is still held."""
    global _current
    with _lock:
        if _current is not None:
            _current.close()
            _current = None


def configure(**options: object) -> None:
    """Sets library options for this process, winning over VRAM_* variables:
    configure(backend="sim", sim="T4:14.7GiB:8.5GiB", margin="10%").  It
    replaces what an earlier configure() set; configure() alone goes back to
    the environment.  Opens the context at once, so a bad value raises here
    (and is not kept)."""
    global _overrides
    with _lock:
        reset()
        previous = _overrides
        _overrides = dict(options)
        try:
            _session()
        except Error:
            _overrides = previous
            raise


def _open_daemon(via):
    """A connection to vramd (socket: configure(socket=...), VRAM_SOCKET or
    the default path), or None when none answers and via allows it."""
    if via == "local":
        return None
    client = ctypes.c_void_p()
    socket = _overrides.get("socket")
    rc = _n.lib.vram_client_open(_n.text(str(socket), "socket") if socket else None,
                                 ctypes.byref(client))
    if rc == 0:
        return client
    if via == "daemon":
        _n.check(rc)
    return None


def _snapshot_json(snap):
    text = ctypes.c_void_p()
    try:
        _n.check(_n.lib.vram_snapshot_to_json(snap, ctypes.byref(text)))
    finally:
        _n.lib.vram_snapshot_free(snap)
    return json.loads(_n.take_string(text))


def status(disk: str | None = None, via: str = "auto") -> dict[str, Any]:
    """Every device and the host now, as `vram status --json` prints them:
    total, used, free, safe available, ours (leased) and others, per device.

    When vramd answers on its socket the figures are the daemon's, the ones
    `vram status`, `vram watch` and the dashboard show: its ledger counts
    every lease of the machine (jobs', and clients' such as a
    vram.lease(via="daemon")) as ours, and "from_daemon" is true.  With no
    daemon, this process's own ledger counts.  via="daemon" or via="local"
    insists on one; `disk` names the filesystem whose free space the host
    part reports (read here)."""
    if via not in ("auto", "daemon", "local"):
        raise ValueError("via must be 'auto', 'daemon' or 'local', not %r" % (via,))
    disk_c = _n.text(disk, "disk") if disk is not None else None
    client = _open_daemon(via)
    if client is not None:
        snap = ctypes.c_void_p()
        try:
            _n.check(_n.lib.vram_client_snapshot(client, ctypes.byref(snap)))
        finally:
            _n.lib.vram_client_close(client)
        out = _snapshot_json(snap)
        if disk:
            out["host"] = status(disk, via="local")["host"]
        return out
    s = _session()
    snap = ctypes.c_void_p()
    _n.check(_n.lib.vram_snapshot_take(s.ctx, disk_c or None, ctypes.byref(snap)))
    return _snapshot_json(snap)


def device(index: int = 0) -> dict[str, int]:
    """What the ledger counts on one device: capacity, others, leased,
    resident and available bytes, leases and waiting requests."""
    index = _n.in_range(index, "device")
    info = _n.LedgerDevice()
    _n.check(_n.lib.vram_ledger_device_info(_session().ledger, index, ctypes.byref(info)))
    return {name: getattr(info, name) for name, _ in _n.LedgerDevice._fields_}


def plan(model: str, budget: int | str | None = None, device: int = 0, **settings: object) -> dict[str, Any]:
    """The planner's choice of settings for `model` within `budget` (default:
    the device's safe available memory), as a dict.  Settings are passed as
    key=value.  Raises Error (VRAM_ENOTSUP) when this libvram has no planner."""
    if not _n.has_planner:
        raise _n.fail("VRAM_ENOTSUP", "this libvram (%s) has no planner: vram_plan_json is "
                      "missing" % _n.library_path)
    _n.in_range(device, "device")
    pairs = _settings(settings)
    array = (ctypes.c_char_p * max(len(pairs), 1))(*pairs)
    out = ctypes.c_void_p()
    _n.check(_n.lib.vram_plan_json(_session().ctx, _n.text(str(model), "model"), array, len(pairs),
                                   parse_size(budget, "budget") if budget is not None else 0,
                                   _n.in_range(device, "device"), ctypes.byref(out)))
    result = json.loads(_n.take_string(out))
    acc = result.get("accelerate")
    if isinstance(acc, dict) and isinstance(acc.get("max_memory"), dict):
        # accelerate wants GPUs as integers ({0: ..., "cpu": ...}); a string
        # "0" raises "Device 0 is not recognized".
        acc["max_memory"] = {int(k) if k.isdigit() else k: v for k, v in acc["max_memory"].items()}
    if isinstance(acc, dict) and isinstance(acc.get("device_map"), dict):
        # Per component (index or "cpu") is no form a library takes: keep it
        # as "placement"; device_map becomes what diffusers' from_pretrained
        # accepts, "balanced" with max_memory, or None when the plan
        # offloads (enable_model_cpu_offload / enable_sequential_cpu_offload,
        # which refuse a pipeline placed by a device map).
        acc["placement"] = acc["device_map"]
        acc["device_map"] = "balanced" if acc.get("offload") == "none" else None
    return result


def _settings(settings):
    """key=value pairs for C, each checked as text (no NUL byte)."""
    return [_n.text("%s=%s" % (k, v), "setting %s" % k) for k, v in settings.items()]


_MEMORY = ("auto", "beefy", "lightweight", "sequential")
_LEVELS = ("basic", "balanced", "maximum")


def _need_planner(what):
    if not _n.has_planner:
        raise _n.fail("VRAM_ENOTSUP", "this libvram (%s) has no planner: %s is missing" % (_n.library_path, what))


def _with_profile(model, settings, call):
    """call(profile, settings array, n) with `model`'s profile loaded from
    the session's profile folders (a name or a Hugging Face id)."""
    s = _session()
    prof = ctypes.c_void_p()
    pairs = _settings(settings)
    _n.check(_n.lib.vram_profile_load(_n.lib.vram_ctx_options(s.ctx), _n.text(str(model), "model"),
                                      ctypes.byref(prof)))
    try:
        array = (ctypes.c_char_p * max(len(pairs), 1))(*pairs)
        return call(prof, array, len(pairs))
    finally:
        _n.lib.vram_profile_free(prof)


def _estimate_dict(e):
    out = {name: getattr(e, name) for name, _ in _n.Estimate._fields_}
    out["memory"] = _MEMORY[e.memory] if 0 <= e.memory < len(_MEMORY) else e.memory
    out["peak_stage"] = e.peak_stage.decode(errors="replace")
    return out


def estimate(model: str, budget: int | str | None = None, **settings: object) -> dict[str, Any]:
    """What a run of `model` at `settings` needs, as `vram estimate --json`
    does: peak_bytes with its parts (weights, activations, overhead, margin),
    host_bytes, seconds on the profile's reference card, peak_stage, and the
    memory mode.  With memory="auto" (or no memory setting) and a `budget`,
    the fastest mode that fits it; "fits" says whether the peak is within
    the budget (True when none is given).  Raises InvalidValue for a bad
    setting and NotFound for an unknown model."""
    _need_planner("vram_estimate_run")
    limit = parse_size(budget, "budget") if budget is not None else 0
    e = _n.Estimate()

    def call(prof, array, n):
        rc = _n.lib.vram_estimate_run(prof, array, n, limit, ctypes.byref(e))
        if rc and rc != _n._code("VRAM_ENOFIT"):
            _n.check(rc)
        return rc

    rc = _with_profile(model, settings, call)
    out = _estimate_dict(e)
    out["fits"] = rc == 0 and (not limit or e.peak_bytes <= limit)
    return out


def optimize(model: str, budget: int | str, level: str = "balanced", max_seconds: float = 0,
             **settings: object) -> dict[str, Any]:
    """The cheapest change to `settings` that makes `model` fit `budget`
    (and `max_seconds`, when given), as `vram optimize --json`: "fits",
    "before" and "after" estimates, "quality_cost", and "suggestions" (each
    parameter, from, to, saved_bytes, seconds_change, quality_cost, reason).
    Settings that already fit give no suggestions; when nothing fits, "fits"
    is False and "after" is the smallest the levers reach."""
    _need_planner("vram_optimize")
    if level not in _LEVELS:
        raise ValueError("level must be one of %s, not %r" % ("|".join(_LEVELS), level))
    limit = parse_size(budget, "budget")
    o = _n.Optimization()

    def call(prof, array, n):
        rc = _n.lib.vram_optimize(prof, array, n, limit, _LEVELS.index(level), float(max_seconds),
                                  ctypes.byref(o))
        if rc and rc != _n._code("VRAM_ENOFIT"):
            _n.check(rc)
        return rc

    _with_profile(model, settings, call)
    return {"fits": bool(o.fits), "budget_bytes": o.budget_bytes, "before": _estimate_dict(o.before),
            "after": _estimate_dict(o.after), "quality_cost": o.quality_cost,
            "suggestions": [{"parameter": g.parameter.decode(), "from": g.from_.decode(), "to": g.to.decode(),
                             "saved_bytes": g.saved_bytes, "seconds_change": g.seconds_change,
                             "quality_cost": g.quality_cost, "reason": g.reason.decode(errors="replace")}
                            for g in o.suggestions[:o.nsuggestions]]}


def available(device: int = 0, via: str = "auto") -> int:
    """The safe available bytes of `device` now (free less the margin and
    what leases hold), as `vram status` shows them: vramd's figure when it
    answers, else this process's.  Raises NotFound for a device that is not
    there."""
    device = _n.in_range(device, "device")
    for d in status(via=via)["devices"]:
        if d["index"] == device:
            return int(d["safe_available_bytes"])
    raise _n.fail("VRAM_ENODEV", "no device %s" % device)


class Lease:
    """Device memory reserved for this process, admitted by the one engine.
    Use `with vram.lease("6GiB") as l:`; l.device is where it is, l.bytes
    how much, l.via where it came from.

    When vramd answers on its socket (VRAM_SOCKET, or configure(socket=...)),
    the lease is the daemon's: it waits in the machine's one queue with
    every job, and it comes back when this process exits or dies.  With no
    daemon it is this process's own ledger's, in the same queue as its
    Scheduler's tasks.  via="daemon" or via="local" insists on one."""

    def __init__(self, size: int | str, device: int | None = None, priority: int = 0, wait: float | None = None,
                 holder: str | None = None, expected: float | None = None, task_class: str | None = None,
                 via: str = "auto") -> None:
        if via not in ("auto", "daemon", "local"):
            raise ValueError("via must be 'auto', 'daemon' or 'local', not %r" % (via,))
        self.bytes = parse_size(size)
        if device is not None:
            _n.in_range(device, "device")
        _n.in_range(priority, "priority", -_n.INT_MAX - 1)
        self.device = device
        self.id = None
        self.via = None
        self._want = via
        self._client = None
        self._request = (device, priority, _n.milliseconds(wait, "wait"),
                         _n.text(holder, "holder") if holder is not None else None,
                         _n.milliseconds(expected, "expected", 0),
                         _n.text(task_class, "task_class") if task_class is not None else None)

    def _daemon(self):
        """A connection to vramd, or None when none answers (and via allows)."""
        return _open_daemon(self._want)

    def acquire(self) -> Lease:
        """Waits for the lease (see vram.lease).  A Lease is held once at a
        time: acquiring one that is held raises Error (VRAM_EBUSY) and
        leaves the held one as it is."""
        if self.id is not None:
            raise _n.fail("VRAM_EBUSY", "this lease is held already (lease %d): release it first"
                          % self.id)
        device, priority, wait, holder, expected, task_class = self._request
        client = self._daemon()
        if client is not None:
            lease_id, dev = ctypes.c_uint64(), ctypes.c_uint()
            rc = _n.lib.vram_client_lease(client, self.bytes, -1 if device is None else device,
                                          wait,
                                          ctypes.byref(lease_id), ctypes.byref(dev))
            if rc:
                detail = _n.lib.vram_last_error().decode(errors="replace")
                _n.lib.vram_client_close(client)
                raise _n.error(rc, detail)  # Timeout, OutOfMemory, NotFound...
            self._client, self.id, self.device, self.via = client, lease_id.value, dev.value, "daemon"
            return self
        req = _n.LeaseRequest(
            version=_n.LEASE_REQUEST_VERSION, bytes=self.bytes, device=-1 if device is None else device,
            priority=priority, wait_ms=wait,
            holder=holder or None,
            expected_ms=expected,
            task_class=task_class or None)
        info = _n.LeaseInfo()
        self._ledger = _session().ledger
        _n.check(_n.lib.vram_lease_acquire(self._ledger, ctypes.byref(req), ctypes.byref(info)))
        self.id, self.device, self.via = info.id, info.device, "local"
        return self

    def release(self) -> None:
        if self.id is None:
            return
        lease_id, self.id = self.id, None
        if self._client is not None:
            client, self._client = self._client, None
            rc = _n.lib.vram_client_release(client, lease_id)
            _n.lib.vram_client_close(client)
            _n.check(rc)
        else:
            _n.check(_n.lib.vram_lease_release(self._ledger, lease_id))

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self):
        return "vram.Lease(%s on device %s%s)" % (format_size(self.bytes), self.device,
                                                  ", via %s" % self.via if self.id else ", not held")


def lease(size: int | str, device: int | None = None, priority: int = 0, wait: float | None = None,
          holder: str | None = None, expected: float | None = None, task_class: str | None = None,
          via: str = "auto") -> Lease:
    """A Lease of `size` ("6GiB" or bytes): `with vram.lease("6GiB"):` waits
    (up to `wait` seconds; None: as long as it takes; a negative, NaN or
    infinite wait raises InvalidValue) until it fits, through vramd when one
    runs (see Lease)."""
    return Lease(size, device, priority, wait, holder, expected, task_class, via)


class Resident:
    """A model kept loaded on a device, counted by the ledger; evicted (its
    unload called) when admitted work needs the room and nobody uses it."""

    def __init__(self, handle: int, name: str, size: int, device: int, unload_cb: Any) -> None:
        self._handle, self.name, self.bytes, self.device = handle, name, size, device
        self._unload_cb = unload_cb     # kept alive while C may call it
        self._registrations = 1

    def _live(self):
        if self._handle is None:
            raise _n.fail("VRAM_ENOENT", "resident %r was unregistered" % self.name)
        return self._handle

    @property
    def loaded(self) -> bool:
        return self._handle is not None and bool(_n.lib.vram_resident_loaded(self._handle))

    def use(self) -> _Pin:
        """`with r.use():` pins it (never evicted meanwhile).  Raises Error
        (VRAM_ENOENT) when it was evicted: load it and register it again."""
        self._live()
        return _Pin(self)

    def unregister(self) -> None:
        """Drops one registration; the last one stops counting it."""
        with _lock:
            _n.check(_n.lib.vram_resident_unregister(self._live()))
            self._registrations -= 1
            if self._registrations == 0:
                _session().residents.pop(self._handle.value, None)
                self._handle = None     # freed by the library

    def __repr__(self):
        return "vram.Resident(%r, %s on device %d)" % (self.name, format_size(self.bytes),
                                                       self.device)


class _Pin:
    def __init__(self, resident):
        self.r = resident

    def __enter__(self):
        _n.check(_n.lib.vram_resident_use(self.r._live()))
        return self.r

    def __exit__(self, *exc):
        _n.check(_n.lib.vram_resident_done(self.r._live()))


def register_resident(name: str, size: int | str, unload: Callable[[str], object] | None = None,
                      device: int = 0) -> Resident:
    """Counts a loaded model (name, size) as used on `device`.  unload(name)
    is called when the ledger evicts it; without one it is never evicted.
    Registering the same name again returns the same Resident."""
    name_c = _n.text(name, "resident name")
    nbytes = parse_size(size)
    device = _n.in_range(device, "device")
    s = _session()

    def on_unload(user, c_name, dev, nb):
        try:
            unload(c_name.decode())
        except Exception as e:
            sys.stderr.write("vram: unloading %s failed: %s\n" % (c_name.decode(), e))

    cb = _n.UNLOAD_FN(on_unload) if unload else _n.UNLOAD_FN()
    handle = ctypes.c_void_p()
    with _lock:
        _n.check(_n.lib.vram_resident_register(s.ledger, name_c, device, nbytes, cb,
                                               None, ctypes.byref(handle)))
        known = s.residents.get(handle.value)
        if known is not None:
            known._registrations += 1
            return known
        r = Resident(handle, name, nbytes, device, cb)
        s.residents[handle.value] = r
        return r


def _torch_memory(device, torch):
    """(allocated, reserved) bytes of PyTorch's caching allocator on the GPU
    torch numbers `device`, or None: PyTorch not imported (it is never
    imported here), or without CUDA."""
    torch = torch if torch is not None else sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_available():
            return None
        return int(cuda.memory_allocated(device)), int(cuda.memory_reserved(device))
    except Exception:               # a torch without that device, or half-initialised
        return None


def mark(stage: str, device: int = 0, torch_device: int | None = None, torch: Any = None) -> None:
    """Records the used memory of `device` now under the name `stage`, with
    PyTorch's allocated and reserved figures beside it when the program has
    imported torch (or passes it): those of `torch_device`, the same GPU as
    torch numbers it (default: vram.apply.torch_device_index's rule, its place
    in CUDA_VISIBLE_DEVICES; 0 inside `vram run`)."""
    device = _n.in_range(device, "device")
    stage_c = _n.text(str(stage), "stage")
    s = _session()
    if torch_device is None:
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        if str(device) in visible:
            torch_device = visible.index(str(device))
        else:
            torch_device = 0 if len(visible) == 1 else device
    figures = _torch_memory(torch_device, torch)
    monitor = _n.lib.vram_ledger_monitor(s.ledger)
    with _lock:
        _n.check(_n.lib.vram_monitor_mark(monitor, device, stage_c))
        s.torch_marks.append(figures)


def marks() -> str:
    """The stage marks so far, with the change between stages, as a table;
    with the columns "torch alloc" and "torch reserved" when some mark had
    PyTorch's figures ("-" where one had not)."""
    s = _session()
    out = ctypes.c_void_p()
    with _lock:
        _n.check(_n.lib.vram_monitor_marks_text(_n.lib.vram_ledger_monitor(s.ledger), ctypes.byref(out)))
        text = _n.take_string(out)
        figures = list(s.torch_marks)
    if not any(figures):
        return text
    lines = text.rstrip("\n").split("\n")
    rows = [lines[0] + " %12s %14s" % ("torch alloc", "torch reserved")]
    for i, line in enumerate(lines[1:]):
        f = figures[i] if i < len(figures) else None
        rows.append(line + (" %12s %14s" % (format_size(f[0]), format_size(f[1])) if f else " %12s %14s" % ("-", "-")))
    return "\n".join(rows) + "\n"


def sim_set_usage(size: int | str, device: int = 0) -> None:
    """On the simulated backend with a state directory (VRAM_SIM_STATE),
    holds `size` on a simulated card the way a program that allocates does.
    Raises Error (VRAM_EOOM) when it does not fit, like a real card."""
    nbytes = parse_size(size)
    _n.check(_n.lib.vram_sim_set_usage(_session().ctx, _n.in_range(device, "device"), nbytes))


@atexit.register
def _close_at_exit():
    try:
        reset()
    except Error:
        pass                        # a lease still held: the process ends anyway
