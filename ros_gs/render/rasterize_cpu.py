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

from ros_gs.errors import ConfigError
from ros_gs.render.reference import as_radii2

log = logging.getLogger(__name__)

#: Default memory budget (bytes) for the per-(tile, Gaussian) intersection buffers of one
#: render: the tile lists (4 bytes per intersection) plus, when a gradient is needed, the
#: backward's per-intersection gradient slots ((6 + C) values each).  Override with the
#: environment variable ``ROS_GS_RENDER_MAX_BYTES`` (read at every call) or by assigning this
#: module constant.  Exceeding it raises :class:`ros_gs.errors.ConfigError` before allocating.
MAX_BYTES: int = 2 * 1024**3


def max_bytes() -> int:
    """The intersection-buffer budget in bytes (``ROS_GS_RENDER_MAX_BYTES`` or :data:`MAX_BYTES`)."""
    env = os.environ.get("ROS_GS_RENDER_MAX_BYTES")
    if env is None or env.strip() == "":
        return int(MAX_BYTES)
    try:
        value = int(float(env))
    except ValueError as exc:
        raise ConfigError(f"ROS_GS_RENDER_MAX_BYTES={env!r} is not a number of bytes") from exc
    if value <= 0:
        raise ConfigError(f"ROS_GS_RENDER_MAX_BYTES={env!r} must be positive")
    return value


def bytes_per_intersection(n_channels: int, dtype: torch.dtype, needs_grad: bool) -> int:
    """Bytes one tile intersection costs: the int32 tile-list entry, plus the backward's
    (6 + C) gradient slot values when a gradient is needed."""
    elsize = torch.empty((), dtype=dtype).element_size()
    return 4 + ((6 + int(n_channels)) * elsize if needs_grad else 0)



_SRC = Path(__file__).resolve().parent / "csrc" / "rasterize_cpu.cpp"
_EXT = None
_LOCK = threading.Lock()


def _extra_cflags() -> list[str]:
    # -fno-trapping-math lets GCC if-convert (and so vectorise) the per-pixel loops; nothing here
    # relies on floating-point exceptions
    # -std=c++20 (std::bit_cast): older torch cpp_extension passes -std=c++17; a later flag wins.
    flags = ["-std=c++20", "-O3", "-fopenmp", "-ffp-contract=fast", "-fno-trapping-math"]
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
        radii = as_radii2(radii).to(torch.int32).reshape(-1, 2).contiguous()
        bpi = bytes_per_intersection(colors.shape[-1], colors.dtype, any(ctx.needs_input_grad[:4]))
        limit = max_bytes()
        res = ext.forward(
            means2d.detach(), conics.detach(), colors.detach(), opacities.detach(),
            # capped below int32: the kernel indexes intersections with int32 (a larger budget
            # must still end in this budget path, not in the kernel's own overflow check)
            depths.detach(), radii, int(width), int(height), int(min(limit // bpi, 2**31 - 2)),
        )
        if len(res) == 1:  # over the budget: the extension returns the intersection count alone
            n = int(res[0])
            raise ConfigError(
                f"rendering {means2d.shape[0]} Gaussians at {int(width)}x{int(height)} needs {n} "
                f"tile intersections x {bpi} bytes = {n * bpi / 2**30:.2f} GiB of rasteriser "
                f"buffers, over the budget of {limit / 2**30:.2f} GiB. Use fewer or smaller "
                "Gaussians (large Gaussians near the camera cover many 16x16 tiles), a lower "
                "resolution, or raise the budget (environment ROS_GS_RENDER_MAX_BYTES or "
                "ros_gs.render.rasterize_cpu.MAX_BYTES) if the memory is there"
            )
        out, tfinal, last, median, gauss, boxes, offsets, ids = res
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
    only, not differentiated), radii (N, 2) int (radius_x, radius_y; 0 = culled) or (N,)
    (square); all float inputs share a dtype
    (float32 or float64) and live on the CPU.
    Raises :class:`ros_gs.errors.ConfigError` (before allocating) when the tile-intersection
    buffers would exceed :func:`max_bytes` (see :data:`MAX_BYTES`).
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
        as_radii2(radii).to(torch.int32).reshape(-1, 2).contiguous(),
        int(width),
        int(height),
    )
