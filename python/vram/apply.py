# SPDX-License-Identifier: MIT
"""vram.apply: a plan put to work in pipeline code, in one call.

A plan (vram.plan(...), or the VRAM_PLAN that `vram run --model` gives the
job's environment) says the memory mode, the precision, VAE tiling and
which components run on the CPU.  These functions apply it the way the
libraries take it::

    import vram.apply
    pipe = DiffusionPipeline.from_pretrained(...)
    vram.apply.to_diffusers(pipe)              # dtype, offload, VAE tiling/slicing
    model = AutoModel.from_pretrained(..., **vram.apply.accelerate_kwargs())

to_diffusers() calls diffusers' own methods (`to`, `enable_model_cpu_offload`,
`enable_sequential_cpu_offload`, `enable_vae_tiling`, `enable_vae_slicing`)
and returns what it did, one line each.  max_memory() is accelerate's
`max_memory`: integer GPU keys (as torch numbers the GPUs in this process:
inside `vram run`, CUDA_VISIBLE_DEVICES holds the job's one device, which is
then 0) and room left on the GPU for activations; device_map() says where
each component's weights live, in the forms accelerate and transformers
accept (a GPU's integer, "cpu").  Nothing here imports torch unless a dtype
is applied and no `torch` module is passed.
"""

from __future__ import annotations

from typing import Any

import json
import os

from ._native import fail

__all__ = ["current_plan", "torch_device_index", "max_memory", "device_map", "accelerate_kwargs",
           "to_diffusers"]

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def current_plan(plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """plan itself (a dict from vram.plan), else the VRAM_PLAN of this job's
    environment (`vram run --model` sets it).  vram.NotFound when neither."""
    if plan is not None:
        if not isinstance(plan, dict) or "memory" not in plan or "estimate" not in plan:
            raise fail("VRAM_EINVAL", "a plan is the dict vram.plan() returns (or VRAM_PLAN's JSON)")
        return plan
    text = os.environ.get("VRAM_PLAN")
    if not text:
        raise fail("VRAM_ENOENT", "no plan: pass one (vram.plan(...)) or run under `vram run --model NAME`, "
                                  "which sets VRAM_PLAN")
    try:
        return json.loads(text)
    except ValueError as e:
        raise fail("VRAM_EINVAL", "VRAM_PLAN is not JSON: %s" % e) from None


def _placement(plan):
    """{component: GPU index or "cpu"}: the C plan's accelerate.device_map,
    or its "placement" where vram.plan() turned device_map into the form
    diffusers' from_pretrained takes."""
    acc = plan["accelerate"]
    where = acc.get("placement", acc.get("device_map"))
    return where if isinstance(where, dict) else {}


def _plan_device(plan):
    for key in plan["accelerate"]["max_memory"]:
        if key != "cpu":
            return int(key)
    return 0


def torch_device_index(plan: dict[str, Any] | None = None) -> int:
    """The plan's GPU as torch numbers it in this process: its place in
    CUDA_VISIBLE_DEVICES when that is set (0 inside `vram run`)."""
    n = _plan_device(current_plan(plan))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",")]
        if str(n) in ids:
            return ids.index(str(n))
        if len(ids) == 1:
            return 0
    return n


def max_memory(plan: dict[str, Any] | None = None, cpu: bool = True) -> dict[int | str, int]:
    """accelerate's max_memory for the plan: {gpu: bytes, "cpu": bytes}.
    The GPU's figure is the plan's budget less what the plan keeps for
    activations, the CUDA context, allocator slack and the margin, so that
    the weights accelerate places there leave room for the run itself."""
    p = current_plan(plan)
    e = p["estimate"]
    keep = e["activation_bytes"] + e["overhead_bytes"] + e["margin_bytes"]
    gpu = max(p["budget_bytes"] - keep, 0)
    out = {torch_device_index(p): int(gpu)}
    host = p["accelerate"]["max_memory"].get("cpu")
    if cpu and host:
        out["cpu"] = int(host)
    return out


def device_map(plan: dict[str, Any] | None = None) -> dict[str, int | str]:
    """Where each component's weights live between its stages, {name: GPU
    integer or "cpu"}: on the GPU in the beefy mode unless the plan runs it
    on the CPU; in host memory, moved in as needed, in the offloading modes."""
    p = current_plan(plan)
    gpu = torch_device_index(p)
    return {name: ("cpu" if where == "cpu" else gpu) for name, where in _placement(p).items()}


def accelerate_kwargs(plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """from_pretrained(**kwargs) for one model under accelerate or
    transformers: device_map "auto" within max_memory (with room for the
    whole model it all goes on the GPU; with less, the layers that do not
    fit stay on the CPU and are moved in as they run)."""
    p = current_plan(plan)
    return {"device_map": "auto", "max_memory": max_memory(p)}


def _call(obj, name, done, *args, **kwargs):
    fn = getattr(obj, name, None)
    if not callable(fn):
        raise TypeError("vram.apply: %s has no %s(): not a diffusers pipeline of a version that has it"
                        % (type(obj).__name__, name))
    fn(*args, **kwargs)
    shown = ", ".join([repr(a) for a in args] + ["%s=%r" % kv for kv in kwargs.items()])
    done.append("%s(%s)" % (name, shown))


def to_diffusers(pipe: Any, plan: dict[str, Any] | None = None, torch: Any = None) -> Any:
    """Applies the plan to a diffusers pipeline, in the order diffusers
    wants: the dtype first (`pipe.to(dtype=...)`, fp32/bf16/fp16; int8 is a
    checkpoint to load, not a conversion, and is only reported), then the
    memory mode (beefy: `pipe.to("cuda:N")` and the plan's CPU components
    moved back; lightweight: `enable_model_cpu_offload(gpu_id=N)`;
    sequential: `enable_sequential_cpu_offload(gpu_id=N)`), then VAE
    tiling when the plan tiles and VAE slicing when it decodes a batch.
    torch: the torch module (imported when None and a dtype is applied).
    Returns what it did, one line each."""
    p = current_plan(plan)
    done = []
    gpu = torch_device_index(p)
    precision = p.get("precision", "fp32")
    if precision in _DTYPES:
        if torch is None:
            try:
                import torch  # noqa: F811  (the caller's, when it passed none)
            except ImportError:
                torch = None
        if torch is not None:
            _call(pipe, "to", done, dtype=getattr(torch, _DTYPES[precision]))
        else:
            done.append("dtype %s not applied: torch is not importable" % precision)
    else:
        done.append("precision %s: load an 8-bit checkpoint (diffusers does not convert to it)" % precision)
    mode = p["memory"]
    if mode == "beefy":
        _call(pipe, "to", done, "cuda:%d" % gpu)
        for name, where in _placement(p).items():
            part = getattr(pipe, name, None)
            if where == "cpu" and part is not None and callable(getattr(part, "to", None)):
                part.to("cpu")
                done.append("%s.to('cpu')" % name)
    elif mode == "lightweight":
        _call(pipe, "enable_model_cpu_offload", done, gpu_id=gpu)
    else:
        _call(pipe, "enable_sequential_cpu_offload", done, gpu_id=gpu)
    params = p.get("params", {})
    if params.get("vae_tiling") in (True, "on"):
        if callable(getattr(pipe, "enable_vae_tiling", None)):
            _call(pipe, "enable_vae_tiling", done)
        else:
            _call(getattr(pipe, "vae", None), "enable_tiling", done)
    if int(params.get("batch", 1) or 1) > 1:
        if callable(getattr(pipe, "enable_vae_slicing", None)):
            _call(pipe, "enable_vae_slicing", done)
        elif getattr(pipe, "vae", None) is not None:
            _call(pipe.vae, "enable_slicing", done)
    return done
