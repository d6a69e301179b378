"""The CPU tile rasteriser: a torch.autograd.Function over a C++/OpenMP extension.

The extension (``csrc/rasterize_cpu.cpp``, forward and backward kernels, float and double)
is JIT-built with :func:`torch.utils.cpp_extension.load` on first use and cached by torch
(``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``); the first build takes about a
minute and is logged.  The compositing rules are those of :mod:`ros_gs.render.reference`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

_SRC = Path(__file__).resolve().parent / "csrc" / "rasterize_cpu.cpp"
_EXT = None
_LOCK = threading.Lock()


def _extra_cflags() -> list[str]:
    # -fno-trapping-math lets GCC if-convert (and so vectorise) the per-pixel loops; nothing here
    # relies on floating-point exceptions
    flags = ["-O3", "-fopenmp", "-ffp-contract=fast", "-fno-trapping-math"]
    # -march=native by default (the build is cached per machine); ROS_GS_RENDER_PORTABLE=1 off
    if os.environ.get("ROS_GS_RENDER_PORTABLE", "0") != "1":
        flags.append("-march=native")
    return flags


def _cpu_fingerprint() -> str:
    """Short hash of the CPU's feature flags: a -march=native build is cached per CPU type
    (a shared home directory must not hand an AVX-512 build to an AVX2 machine)."""
    import hashlib
    import platform

    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features", "model name")):
                    text += line
                    if line.startswith(("flags", "Features")):
                        break
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def load_extension(verbose: bool = False):
    """Build (first time) and import the C++ extension; later calls return the cached module."""
    global _EXT
    if _EXT is not None:
        return _EXT
    with _LOCK:
        if _EXT is not None:
            return _EXT
        from torch.utils.cpp_extension import load

        flags = _extra_cflags()
        native = "-march=native" in flags
        name = "ros_gs_rasterize_cpu_" + (_cpu_fingerprint() if native else "portable")
        log.info("loading the CPU rasteriser extension %s (the first build takes ~30-60 s) ...", name)
        t0 = time.perf_counter()
        try:
            _EXT = load(
                name=name,
                sources=[str(_SRC)],
                extra_cflags=flags,
                extra_ldflags=["-fopenmp"],
                verbose=verbose,
            )
        except Exception as exc:
            raise RuntimeError(
                f"building the CPU rasteriser ({_SRC.name}) failed: {exc}. It needs a C++20 compiler "
                "with OpenMP (g++), ninja and the torch headers; set ROS_GS_RENDER_PORTABLE=1 to "
                "build without -march=native"
            ) from exc
        log.info("CPU rasteriser extension %s ready in %.1f s", name, time.perf_counter() - t0)
        return _EXT


class _RasterizeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, radii, width, height):
        ext = load_extension()
        out, tfinal, last, median, gauss, boxes, offsets, ids = ext.forward(
            means2d.detach(), conics.detach(), colors.detach(), opacities.detach(),
            depths.detach(), radii, int(width), int(height),
        )
        ctx.save_for_backward(colors, gauss, boxes, offsets, ids, tfinal, last)
        ctx.size = (int(width), int(height))
        ctx.opacity_shape = opacities.shape
        ctx.mark_non_differentiable(median)
        alpha = 1.0 - tfinal
        return out, alpha, median

    @staticmethod
    def backward(ctx, grad_out, grad_alpha, _grad_median):
        colors, gauss, boxes, offsets, ids, tfinal, last = ctx.saved_tensors
        width, height = ctx.size
        if grad_out is None:
            grad_out = torch.zeros(height, width, colors.shape[1], dtype=colors.dtype)
        if grad_alpha is None:
            grad_alpha = torch.zeros(height, width, dtype=colors.dtype)
        g_m2, g_cn, g_col, g_op = load_extension().backward(
            gauss, colors.detach(), boxes, offsets, ids, tfinal, last,
            grad_out.to(colors.dtype), grad_alpha.to(colors.dtype), width, height,
        )
        return g_m2, g_cn, g_col, g_op.reshape(ctx.opacity_shape), None, None, None, None


def rasterize_cpu(
    means2d: Tensor,
    conics: Tensor,
    colors: Tensor,
    opacities: Tensor,
    depths: Tensor,
    radii: Tensor,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Composite N projected Gaussians (see :func:`ros_gs.render.reference.rasterize_reference`).

    Args: means2d (N, 2), conics (N, 3), colors (N, C), opacities (N,), depths (N,) (sort key
    only, not differentiated), radii (N,) int (0 = culled); all float inputs share a dtype
    (float32 or float64) and live on the CPU.
    Returns ``(out (H, W, C), alpha (H, W), median_ids (H, W) int32, -1 where none)``;
    differentiable w.r.t. means2d, conics, colors and opacities.
    """
    dt = means2d.dtype
    if dt not in (torch.float32, torch.float64):
        raise TypeError(f"rasterize_cpu supports float32/float64, got {dt}")
    return _RasterizeCPU.apply(
        means2d.contiguous(),
        conics.to(dt).contiguous(),
        colors.to(dt).contiguous(),
        opacities.to(dt).reshape(-1).contiguous(),
        depths.to(dt).reshape(-1).contiguous(),
        radii.to(torch.int32).reshape(-1).contiguous(),
        int(width),
        int(height),
    )
