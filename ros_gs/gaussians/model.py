"""The Gaussian map: the data model every mapping, rendering, physics and semantics step uses.

Conventions (fixed; every other module relies on them)
------------------------------------------------------
* All float data is ``torch.float32`` on one device; ids and times are ``torch.int64``.
* ``quats`` are **w, x, y, z** (scalar first), as gsplat and the INRIA 3DGS PLY
  (``rot_0..rot_3``) store them.  ROS messages (and ``ros_gs.quaternion``) use
  x, y, z, w: convert at the boundary.  Stored quaternions are *raw* (the optimiser may
  denormalise them); the ``quats`` property returns them normalised.
* ``log_scales`` are natural logs of the three standard deviations; ``scales`` = exp.
* ``opacity_logits`` are logits; ``opacities`` = sigmoid.
* ``sh`` is (N, K, 3) real spherical-harmonic coefficients, K = (degree+1)^2, coefficient
  major then RGB channel; ``sh[:, 0]`` is the DC term (INRIA ``f_dc_0..2``).  The base colour
  is ``colors_dc = max(0.5 + C0 * sh[:, 0], 0)`` with C0 = 0.28209479177387814.
* ``features`` (N, F) float32 (optional, F = 0 means none), ``ids`` (N,) int64 object or
  instance id (-1 = none; the RGB-D mapper marks Gaussians seeded from range points that no
  camera has seen yet with -2), ``created_ns`` / ``last_seen_ns`` (N,) int64 nanoseconds,
  ``confidence`` (N,) float32.

Storage
-------
Every field lives in a preallocated buffer of ``capacity`` rows.  Rows ``[0, high_water)``
have been written; a boolean ``active`` mask says which of them hold a live Gaussian.
``add`` appends after ``high_water`` (or, when the buffers are full, reuses freed rows), and
grows the buffers geometrically (``growth`` x) only when neither suffices, so a sequence of
adds costs amortised O(batch).  ``remove`` clears ``active`` bits; ``compact`` repacks the
live rows to the front (in place, order kept) once the freed fraction of ``[0, high_water)``
exceeds ``compact_threshold``, so repacking is amortised too.

Everything a user sees is the *active set*, in slot order: properties (``means``, ``scales``,
...), indices given to ``remove`` / ``update`` / ``select`` and the ``indices`` reported by
``add``.  When there are no freed rows, the properties are views of the buffers (no copy):
do not write into them, use ``update``.

Optimisation with autograd
--------------------------
The trainable buffers (means, quats, log_scales, opacity_logits, sh, features) are the
parameters themselves.  ``requires_grad_(True)`` (or ``parameters()``) turns them into leaf
tensors that require grad; the properties are then differentiable functions of them, so::

    opt = torch.optim.Adam(m.parameters().values(), lr=1e-3)
    loss = render_loss(m.means, m.quats, m.scales, m.opacities, m.sh)
    loss.backward(); opt.step()          # updates the map in place: no write-back step

Inactive and spare rows get zero gradient.  ``storage_version`` increases whenever the
buffers are reallocated or rows are moved (growth, compaction); rebuild the optimiser (or
its state) when it changes.  ``add``/``update``/``remove`` write under ``torch.no_grad``.

Capacity cap
------------
``max_gaussians`` is a hard cap.  When ``add`` would exceed it, existing Gaussians are
evicted first, by ``policy``: ``"lowest_opacity"`` (smallest opacity logit),
``"oldest_seen"`` (smallest ``last_seen_ns``) or ``"lowest_confidence"`` (smallest
``confidence``); ties go to the lower slot.  If one batch alone is larger than the cap, only
its best ``max_gaussians`` (same policy) are kept.  Every eviction is reported in the
returned :class:`AddResult` and accumulated in ``evicted_total``; nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ros_gs.errors import ConfigError
from ros_gs.gaussians.spatial_index import as_points
from ros_gs.quaternion import matrix_to_wxyz, wxyz_mul

C0 = 0.28209479177387814
"""Zeroth-order real spherical-harmonic constant: colour = 0.5 + C0 * f_dc."""

POLICIES = ("lowest_opacity", "oldest_seen", "lowest_confidence")
TRAINABLE = ("means", "quats", "log_scales", "opacity_logits", "sh", "features")

# default values for fields ``add`` is not given
DEFAULT_LOG_SCALE = math.log(0.01)  # 1 cm
#: Largest accepted log scale: exp(80) ~ 5.5e34 is finite in float32, exp(89) overflows to inf
#: (an infinite scale is culled by the renderer but turns the camera-pose gradient into NaN).
MAX_LOG_SCALE = 80.0
DEFAULT_OPACITY_LOGIT = math.log(0.1 / 0.9)  # opacity 0.1, the 3DGS initialisation


@dataclass(frozen=True)
class AddResult:
    """What ``GaussianMap.add`` did.

    added: Gaussians of the batch now in the map; evicted: Gaussians dropped to respect
    ``max_gaussians`` (existing ones evicted plus batch members not kept); indices: active-set
    indices of the added Gaussians, valid until the next structural change (int64, in batch
    order of the kept ones).
    """

    added: int
    evicted: int
    indices: torch.Tensor


def _num_coeffs(degree: int) -> int:
    return (degree + 1) ** 2


class GaussianMap:
    """A growable set of 3D Gaussians on one device (see the module docstring)."""

    def __init__(
        self,
        sh_degree: int = 0,
        feature_dim: int = 0,
        *,
        capacity: int = 1024,
        max_gaussians: int | None = None,
        policy: str = "lowest_opacity",
        compact_threshold: float = 0.25,
        auto_compact: bool = True,
        growth: float = 2.0,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(sh_degree, (int, np.integer)) or not 0 <= int(sh_degree) <= 3:
            raise ConfigError(f"sh_degree must be 0..3, got {sh_degree!r}")
        if not isinstance(feature_dim, (int, np.integer)) or int(feature_dim) < 0:
            raise ConfigError(f"feature_dim must be an int >= 0, got {feature_dim!r}")
        if policy not in POLICIES:
            raise ConfigError(f"policy must be one of {POLICIES}, got {policy!r}")
        if max_gaussians is not None and (not isinstance(max_gaussians, (int, np.integer)) or max_gaussians < 1):
            raise ConfigError(f"max_gaussians must be a positive int or None, got {max_gaussians!r}")
        if not 0.0 < float(compact_threshold) < 1.0:
            raise ConfigError(f"compact_threshold must be in (0, 1), got {compact_threshold!r}")
        if not float(growth) > 1.0:
            raise ConfigError(f"growth must be > 1, got {growth!r}")
        if not isinstance(capacity, (int, np.integer)) or capacity < 0:
            raise ConfigError(f"capacity must be an int >= 0, got {capacity!r}")
        self._degree = int(sh_degree)
        self._fdim = int(feature_dim)
        self.max_gaussians = None if max_gaussians is None else int(max_gaussians)
        self.policy = policy
        self.compact_threshold = float(compact_threshold)
        self.auto_compact = bool(auto_compact)
        self.growth = float(growth)
        self._device = torch.device(device)
        cap = int(capacity)
        if self.max_gaussians is not None:
            cap = min(cap, self.max_gaussians)
        self._buf: dict[str, torch.Tensor] = self._alloc(cap)
        self._active = torch.zeros(cap, dtype=torch.bool, device=self._device)
        self._n = 0  # high-water mark: rows [0, _n) have been written
        self._num_active = 0
        self._slots_cache: torch.Tensor | None = None
        self._requires_grad = False
        self.storage_version = 0
        self.evicted_total = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_tensors(
        cls,
        means: Any,
        quats: Any = None,
        log_scales: Any = None,
        opacity_logits: Any = None,
        sh: Any = None,
        *,
        sh_degree: int | None = None,
        features: Any = None,
        ids: Any = None,
        created_ns: Any = 0,
        last_seen_ns: Any = None,
        confidence: Any = 1.0,
        device: str | torch.device = "cpu",
        **kwargs: Any,
    ) -> "GaussianMap":
        """A map holding exactly these Gaussians (capacity = their count).

        ``sh_degree`` defaults to the degree implied by ``sh`` ((N, K, 3) -> K = (d+1)^2;
        (N, 3) or None -> 0).  ``kwargs`` go to the constructor (``max_gaussians``, ...).
        """
        means_t = torch.as_tensor(means)
        if means_t.dim() != 2 or means_t.shape[-1] != 3:
            raise ConfigError(f"means must be (N, 3), got shape {tuple(means_t.shape)}")
        n = int(means_t.shape[0])
        if sh_degree is None:
            sh_degree = 0
            if sh is not None:
                sh_t = torch.as_tensor(sh)
                if sh_t.dim() == 3:
                    d = int(round(math.sqrt(sh_t.shape[1]))) - 1
                    if (d + 1) ** 2 != sh_t.shape[1] or not 0 <= d <= 3:
                        raise ConfigError(f"sh must have K=(d+1)^2 coefficients, d<=3; got K={sh_t.shape[1]}")
                    sh_degree = d
        fdim = 0
        if features is not None:
            ft = torch.as_tensor(features)
            if ft.dim() != 2:
                raise ConfigError(f"features must be (N, F), got shape {tuple(ft.shape)}")
            fdim = int(ft.shape[1])
        kwargs.setdefault("capacity", n)
        m = cls(sh_degree, fdim, device=device, **kwargs)
        m.add(
            means_t,
            quats,
            log_scales,
            opacity_logits,
            sh,
            features=features,
            ids=ids,
            created_ns=created_ns,
            last_seen_ns=last_seen_ns,
            confidence=confidence,
        )
        return m

    def _alloc(self, cap: int) -> dict[str, torch.Tensor]:
        f32, i64, dev = torch.float32, torch.int64, self._device
        k = _num_coeffs(self._degree)
        buf = {
            "means": torch.zeros(cap, 3, dtype=f32, device=dev),
            "quats": torch.zeros(cap, 4, dtype=f32, device=dev),
            "log_scales": torch.zeros(cap, 3, dtype=f32, device=dev),
            "opacity_logits": torch.zeros(cap, dtype=f32, device=dev),
            "sh": torch.zeros(cap, k, 3, dtype=f32, device=dev),
            "features": torch.zeros(cap, self._fdim, dtype=f32, device=dev),
            "ids": torch.full((cap,), -1, dtype=i64, device=dev),
            "created_ns": torch.zeros(cap, dtype=i64, device=dev),
            "last_seen_ns": torch.zeros(cap, dtype=i64, device=dev),
            "confidence": torch.zeros(cap, dtype=f32, device=dev),
        }
        return buf

    # ------------------------------------------------------------------ basic facts
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def sh_degree(self) -> int:
        return self._degree

    @property
    def num_sh_coeffs(self) -> int:
        return _num_coeffs(self._degree)

    @property
    def feature_dim(self) -> int:
        return self._fdim

    @property
    def num_gaussians(self) -> int:
        return self._num_active

    def __len__(self) -> int:
        return self._num_active

    @property
    def capacity(self) -> int:
        return int(self._active.shape[0])

    @property
    def high_water(self) -> int:
        """Rows ever written since the last repack (live + freed)."""
        return self._n

    @property
    def free_fraction(self) -> float:
        """Freed rows / written rows (what ``compact`` compares with its threshold)."""
        return 0.0 if self._n == 0 else (self._n - self._num_active) / self._n

    def __repr__(self) -> str:
        return (
            f"GaussianMap(n={self._num_active}, capacity={self.capacity}, sh_degree={self._degree}, "
            f"feature_dim={self._fdim}, max_gaussians={self.max_gaussians}, policy={self.policy!r}, "
            f"device={self._device})"
        )

    # ------------------------------------------------------------------ active set
    def _contiguous(self) -> bool:
        return self._num_active == self._n

    def active_slots(self) -> torch.Tensor:
        """Buffer rows of the active Gaussians, in active-set order (int64)."""
        if self._slots_cache is None:
            if self._contiguous():
                self._slots_cache = torch.arange(self._n, device=self._device)
            else:
                self._slots_cache = torch.nonzero(self._active[: self._n]).squeeze(1)
        return self._slots_cache

    def _get(self, name: str) -> torch.Tensor:
        b = self._buf[name]
        if self._contiguous():
            return b[: self._n]
        return b[: self._n][self._active[: self._n]]

    def storage(self, name: str) -> torch.Tensor:
        """The whole capacity-sized buffer of a field (rows follow ``active_slots``)."""
        if name not in self._buf:
            raise ConfigError(f"unknown field {name!r}; fields: {sorted(self._buf)}")
        return self._buf[name]

    @property
    def active_mask(self) -> torch.Tensor:
        """(capacity,) bool: which buffer rows hold a live Gaussian."""
        return self._active

    # raw fields of the active set
    @property
    def means(self) -> torch.Tensor:
        return self._get("means")

    @property
    def raw_quats(self) -> torch.Tensor:
        """Quaternions as stored (w, x, y, z, not necessarily unit)."""
        return self._get("quats")

    @property
    def quats(self) -> torch.Tensor:
        """Unit quaternions (w, x, y, z)."""
        q = self._get("quats")
        return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @property
    def log_scales(self) -> torch.Tensor:
        return self._get("log_scales")

    @property
    def scales(self) -> torch.Tensor:
        return torch.exp(self._get("log_scales"))

    @property
    def opacity_logits(self) -> torch.Tensor:
        return self._get("opacity_logits")

    @property
    def opacities(self) -> torch.Tensor:
        return torch.sigmoid(self._get("opacity_logits"))

    @property
    def sh(self) -> torch.Tensor:
        return self._get("sh")

    @property
    def colors_dc(self) -> torch.Tensor:
        """Base RGB colour (N, 3): max(0.5 + C0 * sh[:, 0], 0)."""
        return torch.clamp_min(0.5 + C0 * self._get("sh")[:, 0], 0.0)

    @property
    def features(self) -> torch.Tensor | None:
        return self._get("features") if self._fdim > 0 else None

    @property
    def ids(self) -> torch.Tensor:
        return self._get("ids")

    @property
    def created_ns(self) -> torch.Tensor:
        return self._get("created_ns")

    @property
    def last_seen_ns(self) -> torch.Tensor:
        return self._get("last_seen_ns")

    @property
    def confidence(self) -> torch.Tensor:
        return self._get("confidence")

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, flag: bool = True) -> "GaussianMap":
        """Make the trainable buffers leaf tensors that (do not) require grad."""
        self._requires_grad = bool(flag)
        for name in TRAINABLE:
            b = self._buf[name]
            if b.requires_grad != flag:
                self._buf[name] = b.detach().requires_grad_(flag)
        return self

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    def parameters(self) -> dict[str, torch.Tensor]:
        """The trainable buffers (capacity-sized leaf tensors requiring grad), by name.

        ``features`` is included only when ``feature_dim > 0``.  See the module docstring.
        """
        if not self._requires_grad:
            self.requires_grad_(True)
        return {n: self._buf[n] for n in TRAINABLE if n != "features" or self._fdim > 0}

    def zero_grad(self) -> None:
        for name in TRAINABLE:
            self._buf[name].grad = None

    # ------------------------------------------------------------------ input checking
    def _tensor(self, name: str, x: Any, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        try:
            t = torch.as_tensor(x.detach() if isinstance(x, torch.Tensor) else x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{name}: cannot be made a tensor ({exc})") from None
        if dtype == torch.int64 and t.is_floating_point():
            if not torch.isfinite(t).all() or not torch.equal(t, torch.round(t)):
                raise ConfigError(f"{name} must hold integers")
        if t.dtype == torch.bool:
            raise ConfigError(f"{name} must be numeric, got bool")
        t = t.to(device=self._device, dtype=dtype)
        try:
            t = torch.broadcast_to(t, shape)
        except RuntimeError:
            raise ConfigError(f"{name} must have shape {shape} (or broadcast to it), got {tuple(t.shape)}") from None
        if dtype.is_floating_point and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).reshape(shape[0], -1).any(dim=1).sum()) if shape[0] else 0
            raise ConfigError(f"{name} has non-finite values in {bad} of {shape[0]} rows")
        return t

    def _prepare(self, means: Any, quats: Any, log_scales: Any, opacity_logits: Any, sh: Any,
                 features: Any, ids: Any, created_ns: Any, last_seen_ns: Any, confidence: Any,
                 stamp_ns: int) -> dict[str, torch.Tensor]:
        mt = as_points(means, "means")
        k = int(mt.shape[0])
        f32, i64 = torch.float32, torch.int64
        out = {"means": self._tensor("means", mt, (k, 3), f32)}
        if quats is None:
            q = torch.zeros(k, 4, dtype=f32, device=self._device)
            q[:, 0] = 1.0
        else:
            q = self._tensor("quats", quats, (k, 4), f32)
            if k and bool((q.norm(dim=1) < 1e-12).any()):
                raise ConfigError("quats has zero-norm rows (w, x, y, z expected)")
        out["quats"] = q
        out["log_scales"] = self._tensor(
            "log_scales", DEFAULT_LOG_SCALE if log_scales is None else log_scales, (k, 3), f32)
        big = (out["log_scales"] > MAX_LOG_SCALE).any(dim=1) if k else None
        if big is not None and bool(big.any()):
            raise ConfigError(
                f"log_scales above {MAX_LOG_SCALE} (exp overflows float32) in {int(big.sum())} of {k} rows; "
                "log_scales are natural logs of standard deviations in metres")
        out["opacity_logits"] = self._tensor(
            "opacity_logits", DEFAULT_OPACITY_LOGIT if opacity_logits is None else opacity_logits, (k,), f32)
        kc = self.num_sh_coeffs
        if sh is None:
            out["sh"] = torch.zeros(k, kc, 3, dtype=f32, device=self._device)
        else:
            st = torch.as_tensor(sh.detach() if isinstance(sh, torch.Tensor) else sh)
            if st.dim() == 2:
                st = st.unsqueeze(1)
            if st.dim() != 3 or st.shape[0] != k or st.shape[2] != 3:
                raise ConfigError(f"sh must be (N, K, 3) or (N, 3) with N={k}, got shape {tuple(torch.as_tensor(sh).shape)}")
            if st.shape[1] > kc:
                raise ConfigError(f"sh has {st.shape[1]} coefficients but the map holds degree {self._degree} (K={kc})")
            st = self._tensor("sh", st, tuple(st.shape), f32)
            if st.shape[1] < kc:
                st = torch.cat([st, torch.zeros(k, kc - st.shape[1], 3, dtype=f32, device=self._device)], 1)
            out["sh"] = st
        if features is None:
            out["features"] = torch.zeros(k, self._fdim, dtype=f32, device=self._device)
        else:
            if self._fdim == 0:
                raise ConfigError("features given but the map has feature_dim=0")
            out["features"] = self._tensor("features", features, (k, self._fdim), f32)
        out["ids"] = self._tensor("ids", -1 if ids is None else ids, (k,), i64)
        out["created_ns"] = self._tensor("created_ns", stamp_ns if created_ns is None else created_ns, (k,), i64)
        out["last_seen_ns"] = self._tensor(
            "last_seen_ns", stamp_ns if last_seen_ns is None else last_seen_ns, (k,), i64)
        out["confidence"] = self._tensor("confidence", 1.0 if confidence is None else confidence, (k,), f32)
        return out

    def _to_active_indices(self, mask_or_indices: Any, what: str) -> torch.Tensor:
        """Active-set indices (int64, on device) from a bool mask or an index list."""
        n = self._num_active
        if isinstance(mask_or_indices, (int, np.integer)):
            mask_or_indices = [int(mask_or_indices)]
        try:
            t = torch.as_tensor(mask_or_indices)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{what}: not a mask or index list ({exc})") from None
        t = t.to(self._device)
        if t.dtype == torch.bool:
            if t.shape != (n,):
                raise ConfigError(f"{what}: bool mask must have shape ({n},), got {tuple(t.shape)}")
            return torch.nonzero(t).squeeze(1)
        if t.numel() == 0:
            return torch.zeros(0, dtype=torch.int64, device=self._device)
        if t.is_floating_point() or t.is_complex() or t.dim() != 1:
            raise ConfigError(f"{what}: indices must be a 1-D integer sequence, got {t.dtype} {tuple(t.shape)}")
        t = t.long()
        if int(t.min()) < 0 or int(t.max()) >= n:
            raise ConfigError(f"{what}: indices must be in [0, {n}), got range [{int(t.min())}, {int(t.max())}]")
        return t

    # ------------------------------------------------------------------ mutation
    def _invalidate(self) -> None:
        self._slots_cache = None

    def _write(self, slots: torch.Tensor, fields: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, v in fields.items():
                self._buf[name][slots] = v

    def _rank(self, logits: torch.Tensor, last_seen: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
        """Order (worst first, stable) under the eviction policy."""
        if self.policy == "lowest_opacity":
            key = logits
        elif self.policy == "oldest_seen":
            key = last_seen
        else:
            key = conf
        return torch.argsort(key.detach(), stable=True)

    def _reallocate(self, cap: int) -> None:
        """New buffers of ``cap`` rows holding the active set packed at the front."""
        slots = self.active_slots()
        new = self._alloc(cap)
        with torch.no_grad():
            for name, b in self._buf.items():
                new[name][: self._num_active] = b[slots]
        self._buf = new
        if self._requires_grad:
            self.requires_grad_(True)
        self._active = torch.zeros(cap, dtype=torch.bool, device=self._device)
        self._active[: self._num_active] = True
        self._n = self._num_active
        self.storage_version += 1
        self._invalidate()

    def _allocate(self, k: int) -> torch.Tensor:
        """Rows for k new Gaussians (may repack or grow)."""
        cap = self.capacity
        holes = self._n - self._num_active
        if self._n + k <= cap:
            slots = torch.arange(self._n, self._n + k, device=self._device)
            self._n += k
            return slots
        if holes and self.free_fraction > self.compact_threshold:
            self.compact(force=True)
            if self._n + k <= cap:
                return self._allocate(k)
            holes = 0
        if holes + (cap - self._n) >= k:  # reuse freed rows, then the tail
            tail = cap - self._n
            reuse = torch.nonzero(~self._active[: self._n]).squeeze(1)[: k - tail]
            slots = torch.cat([reuse, torch.arange(self._n, cap, device=self._device)])
            self._n = cap
            return slots
        need = self._num_active + k
        new_cap = max(need, int(math.ceil(max(cap, 8) * self.growth)))
        if self.max_gaussians is not None:
            new_cap = min(new_cap, self.max_gaussians)
        self._reallocate(new_cap)
        return self._allocate(k)

    def add(
        self,
        means: Any,
        quats: Any = None,
        log_scales: Any = None,
        opacity_logits: Any = None,
        sh: Any = None,
        *,
        features: Any = None,
        ids: Any = None,
        created_ns: Any = None,
        last_seen_ns: Any = None,
        confidence: Any = None,
        stamp_ns: int = 0,
    ) -> AddResult:
        """Append a batch of Gaussians; returns what was added and evicted.

        means (M, 3); quats (M, 4) w,x,y,z (default identity); log_scales (M, 3) (default
        log 0.01); opacity_logits (M,) (default logit 0.1); sh (M, K', 3) with K' <= K, or
        (M, 3) DC only, zero-padded (default 0 = grey 0.5); features (M, F); ids (M,)
        (default -1); created_ns / last_seen_ns (default ``stamp_ns``); confidence (default 1).
        Scalars broadcast.  Bad shapes or non-finite values raise ConfigError.
        """
        fields = self._prepare(means, quats, log_scales, opacity_logits, sh, features, ids,
                               created_ns, last_seen_ns, confidence, int(stamp_ns))
        k = int(fields["means"].shape[0])
        evicted = 0
        if k == 0:
            return AddResult(0, 0, torch.zeros(0, dtype=torch.int64, device=self._device))
        cap_max = self.max_gaussians
        if cap_max is not None:
            if k > cap_max:  # the batch alone overflows: keep its best cap_max, in batch order
                order = self._rank(fields["opacity_logits"], fields["last_seen_ns"], fields["confidence"])
                keep = torch.sort(order[k - cap_max:]).values
                fields = {n: v[keep] for n, v in fields.items()}
                evicted += k - cap_max
                k = cap_max
            over = self._num_active + k - cap_max
            if over > 0:
                slots = self.active_slots()
                order = self._rank(self._buf["opacity_logits"][slots], self._buf["last_seen_ns"][slots],
                                   self._buf["confidence"][slots])
                victims = slots[order[:over]]
                self._active[victims] = False
                self._num_active -= over
                self._invalidate()
                evicted += over
        slots = self._allocate(k)
        self._write(slots, fields)
        self._active[slots] = True
        self._num_active += k
        self._invalidate()
        self.evicted_total += evicted
        if self._contiguous():
            indices = slots.clone()
        else:
            rank = torch.cumsum(self._active[: self._n].to(torch.int64), 0) - 1
            indices = rank[slots]
        return AddResult(k, evicted, indices)

    def remove(self, mask_or_indices: Any) -> int:
        """Remove Gaussians (active-set bool mask or indices); returns how many were removed.

        Slots are only marked free; with ``auto_compact`` the map then repacks if the freed
        fraction exceeds ``compact_threshold``.
        """
        idx = self._to_active_indices(mask_or_indices, "remove")
        if idx.numel() == 0:
            return 0
        slots = self.active_slots()[torch.unique(idx)]
        self._active[slots] = False
        removed = int(slots.numel())
        self._num_active -= removed
        self._invalidate()
        if self._num_active == 0:
            self._n = 0
        if self.auto_compact:
            self.compact()
        return removed

    def transform_groups_(self, group: Any, rotations: Any, translations: Any) -> int:
        """Move Gaussians rigidly, in place, one rigid transform per group.

        ``group`` (N,) int64 over the active set: which of the K transforms moves each Gaussian
        (-1 = stays); ``rotations`` (K, 3, 3) and ``translations`` (K, 3) map old world
        coordinates to new ones.  Means become ``R mu + t`` and rotations ``R * q``, so the
        covariance turns with the frame.  Used when a keyframe pose is corrected (the Gaussians it
        seeded follow it) and, later, when bodies carry their Gaussians.  Returns how many moved.
        """
        g = torch.as_tensor(group, dtype=torch.int64, device=self._device)
        R = torch.as_tensor(rotations, dtype=torch.float64, device=self._device).reshape(-1, 3, 3)
        t = torch.as_tensor(translations, dtype=torch.float64, device=self._device).reshape(-1, 3)
        if g.shape != (self._num_active,):
            raise ConfigError(f"group must have one entry per Gaussian ({self._num_active}), got {tuple(g.shape)}")
        if R.shape[0] != t.shape[0] or bool(((g < -1) | (g >= R.shape[0])).any()):
            raise ConfigError("group indices must be -1 or index the given transforms")
        if not (torch.isfinite(R).all() and torch.isfinite(t).all()):
            raise ConfigError("transforms must be finite")
        sel = g >= 0
        if not bool(sel.any()):
            return 0
        slots = self.active_slots()[sel]
        gi = g[sel]
        qR = torch.as_tensor(matrix_to_wxyz(R.cpu().numpy()), dtype=torch.float64, device=self._device)
        with torch.no_grad():
            mu = self._buf["means"][slots].to(torch.float64)
            self._buf["means"][slots] = (torch.einsum("nij,nj->ni", R[gi], mu) + t[gi]).to(self._buf["means"].dtype)
            q = self._buf["quats"][slots].to(torch.float64)
            self._buf["quats"][slots] = wxyz_mul(qR[gi], q).to(self._buf["quats"].dtype)
        return int(slots.numel())

    def compact(self, force: bool = False) -> bool:
        """Repack live rows to the front (in place, order kept) if the freed fraction exceeds
        ``compact_threshold`` (or any row is freed and ``force``).  Returns whether it did."""
        holes = self._n - self._num_active
        if holes == 0 or (not force and self.free_fraction <= self.compact_threshold):
            return False
        slots = self.active_slots()
        k = self._num_active
        with torch.no_grad():
            for b in self._buf.values():
                b[:k] = b[slots]
        self._active[:k] = True
        self._active[k: self._n] = False
        self._n = k
        self.storage_version += 1
        self._invalidate()
        return True

    def update(self, mask_or_indices: Any, **fields: Any) -> None:
        """Overwrite fields of some active Gaussians, e.g. ``update(idx, last_seen_ns=t)``.

        Field names are the stored ones: means, quats, log_scales, opacity_logits, sh,
        features, ids, created_ns, last_seen_ns, confidence.  Values broadcast.
        """
        idx = self._to_active_indices(mask_or_indices, "update")
        k = int(idx.numel())
        shapes = {
            "means": ((k, 3), torch.float32), "quats": ((k, 4), torch.float32),
            "log_scales": ((k, 3), torch.float32), "opacity_logits": ((k,), torch.float32),
            "sh": ((k, self.num_sh_coeffs, 3), torch.float32),
            "features": ((k, self._fdim), torch.float32), "ids": ((k,), torch.int64),
            "created_ns": ((k,), torch.int64), "last_seen_ns": ((k,), torch.int64),
            "confidence": ((k,), torch.float32),
        }
        checked = {}
        for name, value in fields.items():
            if name not in shapes:
                raise ConfigError(f"update: unknown field {name!r}; fields: {sorted(shapes)}")
            shape, dtype = shapes[name]
            checked[name] = self._tensor(name, value, shape, dtype)
        if k:
            self._write(self.active_slots()[idx], checked)

    def select(self, mask_or_indices: Any) -> "GaussianMap":
        """A new map (a copy, no grad) holding the chosen active Gaussians, same settings."""
        idx = self._to_active_indices(mask_or_indices, "select")
        slots = self.active_slots()[idx]
        out = self._empty_like(int(idx.numel()))
        k = int(idx.numel())
        with torch.no_grad():
            for name, b in self._buf.items():
                out._buf[name][:k] = b[slots].detach()
        out._active[:k] = True
        out._n = out._num_active = k
        return out

    def _empty_like(self, capacity: int, device: torch.device | None = None) -> "GaussianMap":
        return GaussianMap(
            self._degree, self._fdim, capacity=capacity, max_gaussians=self.max_gaussians,
            policy=self.policy, compact_threshold=self.compact_threshold,
            auto_compact=self.auto_compact, growth=self.growth,
            device=self._device if device is None else device,
        )

    def clone(self) -> "GaussianMap":
        """A deep copy (buffers, capacity, free slots, counters, requires_grad)."""
        return self._copy_to(self._device)

    def to(self, device: str | torch.device) -> "GaussianMap":
        """This map on ``device``: self when already there, else a copy."""
        device = torch.device(device)
        if device == self._device:
            return self
        return self._copy_to(device)

    def _copy_to(self, device: torch.device) -> "GaussianMap":
        out = self._empty_like(0, device)
        out._buf = {n: b.detach().to(device).clone() for n, b in self._buf.items()}
        out._active = self._active.to(device).clone()
        out._n, out._num_active = self._n, self._num_active
        out.storage_version = self.storage_version
        out.evicted_total = self.evicted_total
        if self._requires_grad:
            out.requires_grad_(True)
        return out
