"""Online Gaussian mapping from RGB-D frames: :class:`Mapper` with one entry, :meth:`Mapper.process`.

Per frame: downscale (integer factor to ~``target_width``), predict the pose (constant
velocity), track it with open3d RGB-D odometry against the Gaussian map rendered at the
prediction (frame-to-model; the last keyframe when the render covers too little of the view).
On keyframes (motion or interval thresholds): seed Gaussians on the depth pixels the map does
not explain (rendered alpha low, or observed surface in front of the rendered one), then a few
Adam iterations of colour L1 + depth L1 over a window of keyframes through the differentiable
CPU renderer, then prune near-transparent / huge Gaussians.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ros_gs.gaussians.model import C0, GaussianMap
from ros_gs.mapping.config import MapperConfig
from ros_gs.mapping.frames import RgbdFrame, backproject, downscale, render_K
from ros_gs.mapping.tracking import rgbd_odometry, to_o3d_rgbd
from ros_gs.render import Camera, RenderOutput, render_tensors


@dataclass
class PoseEstimate:
    stamp_ns: int
    T_world_cam: np.ndarray
    keyframe: bool
    num_gaussians: int
    fitness: float
    ok: bool


@dataclass
class Keyframe:
    index: int  # frame counter
    stamp_ns: int
    T_world_cam: np.ndarray
    rgb: torch.Tensor  # (H, W, 3) float [0, 1]
    depth: torch.Tensor  # (H, W) metres, 0 invalid
    K: np.ndarray  # OpenCV K of the processing resolution
    frame: RgbdFrame = field(repr=False)
    half: tuple | None = field(default=None, repr=False)  # half-resolution (rgb, depth, K), lazily


def _rot_angle_deg(R: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


def orthonormalize(T: np.ndarray) -> np.ndarray:
    """Nearest rigid transform (SVD projection of the rotation block); dataset poses such as
    7-Scenes' are not exactly orthonormal, which breaks rigid inverses and angle tests."""
    T = np.asarray(T, np.float64)
    U, _, Vt = np.linalg.svd(T[:3, :3])
    R = U @ Vt
    if np.linalg.det(R) < 0:
        R = U @ np.diag([1.0, 1.0, -1.0]) @ Vt
    out = np.eye(4)
    out[:3, :3] = R
    out[:3, 3] = T[:3, 3]
    return out


def _inv(T: np.ndarray) -> np.ndarray:
    Ti = np.eye(4)
    Ti[:3, :3] = T[:3, :3].T
    Ti[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return Ti


class Mapper:
    """Online RGB-D Gaussian mapper (tracking + mapping), CPU."""

    def __init__(self, config: MapperConfig | None = None, initial_pose: np.ndarray | None = None) -> None:
        self.config = config or MapperConfig()
        self.initial_pose = np.eye(4) if initial_pose is None else orthonormalize(initial_pose)
        self.map = GaussianMap(0, capacity=4096, max_gaussians=self.config.max_gaussians)
        self.keyframes: list[Keyframe] = []
        self.trajectory: list[PoseEstimate] = []
        self._rng = np.random.default_rng(self.config.seed)
        self._frames = 0
        self._kf_o3d = None
        self._opt_state: dict | None = None
        self._opt_version = -1
        self.timing: dict[str, float] = {"track": 0.0, "seed": 0.0, "optimise": 0.0}

    # ------------------------------------------------------------------ rendering
    def render(self, T_world_cam: np.ndarray, K: np.ndarray, width: int, height: int) -> RenderOutput:
        """Render the map from camera pose ``T_world_cam`` with OpenCV ``K`` (integer pixel centres)."""
        cam = Camera.from_pose(torch.as_tensor(render_K(K), dtype=torch.float32),
                               torch.as_tensor(T_world_cam, dtype=torch.float32), width, height)
        m = self.map
        with torch.no_grad():
            if m.num_gaussians == 0:
                z = torch.zeros(height, width)
                return RenderOutput(torch.zeros(height, width, 3), z, z.clone(), None, None, "cpu")
            return render_tensors(m.means, m.quats, m.scales, m.opacities, m.sh, cam, backend="cpu")

    # ------------------------------------------------------------------ the entry
    def prepare(self, frame: RgbdFrame) -> RgbdFrame:
        """Downscale and depth-truncate a frame to the processing resolution."""
        cfg = self.config
        factor = max(1, int(round(frame.width / cfg.target_width)))
        f = downscale(frame, factor)
        d = f.depth
        d[(d < cfg.depth_min) | (d > cfg.depth_max)] = 0.0
        return f

    def process(self, frame: RgbdFrame) -> PoseEstimate:
        cfg = self.config
        f = self.prepare(frame)
        src = to_o3d_rgbd(f.rgb, f.depth)
        fitness, ok = 1.0, True
        t0 = time.perf_counter()
        if not self.trajectory:
            T = self.initial_pose.copy()
        else:
            T_prev = self.trajectory[-1].T_world_cam
            T_pred = T_prev.copy()
            if cfg.constant_velocity and len(self.trajectory) >= 2:
                T_pp = self.trajectory[-2].T_world_cam
                T_pred = T_prev @ (_inv(T_pp) @ T_prev)
            T, fitness = self._track(f, src, T_pred)
            T = orthonormalize(T)
            ok = fitness >= cfg.min_fitness and np.isfinite(T).all()
            if not ok:
                T = T_pred
        self.timing["track"] += time.perf_counter() - t0
        is_kf = self._is_keyframe(T) and ok
        if is_kf:
            self._add_keyframe(f, src, T)
        self._frames += 1
        est = PoseEstimate(int(frame.stamp_ns), T, bool(is_kf), self.map.num_gaussians, float(fitness), bool(ok))
        self.trajectory.append(est)
        return est

    # ------------------------------------------------------------------ tracking
    def _track(self, f: RgbdFrame, src, T_pred: np.ndarray) -> tuple[np.ndarray, float]:
        cfg = self.config
        kw = dict(method=cfg.odometry_method, iterations=cfg.odometry_iterations, depth_max=cfg.depth_max,
                  depth_outlier_trunc=cfg.depth_outlier_trunc)
        if cfg.tracking == "model" and self.map.num_gaussians > 0:
            out = self.render(T_pred, f.K, f.width, f.height)
            alpha = out.alpha.numpy()
            valid = f.depth > 0
            good = alpha > 0.9
            cover = float((good & valid).sum()) / max(1, int(valid.sum()))
            if cover >= cfg.model_min_coverage:
                depth = np.where(good, out.depth.numpy(), 0.0).astype(np.float32)
                rgb = out.rgb.clamp(0, 1).numpy().astype(np.float32)
                res = rgbd_odometry(src, to_o3d_rgbd(rgb, depth), f.K, np.eye(4), **kw)
                return T_pred @ res.T_target_source, res.fitness
        kf = self.keyframes[-1]
        init = _inv(kf.T_world_cam) @ T_pred
        res = rgbd_odometry(src, self._kf_o3d, f.K, init, **kw)
        return kf.T_world_cam @ res.T_target_source, res.fitness

    def _is_keyframe(self, T: np.ndarray) -> bool:
        if not self.keyframes:
            return True
        cfg = self.config
        kf = self.keyframes[-1]
        rel = _inv(kf.T_world_cam) @ T
        return (
            np.linalg.norm(rel[:3, 3]) > cfg.kf_translation
            or _rot_angle_deg(rel[:3, :3]) > cfg.kf_rotation_deg
            or self._frames - kf.index >= cfg.kf_max_interval
        )

    # ------------------------------------------------------------------ mapping
    def _add_keyframe(self, f: RgbdFrame, src, T: np.ndarray) -> None:
        t0 = time.perf_counter()
        kf = Keyframe(self._frames, int(f.stamp_ns), T.copy(), torch.from_numpy(f.rgb.astype(np.float32) / 255.0),
                      torch.from_numpy(f.depth.copy()), f.K.copy(), f)
        self.seed(kf)
        self.keyframes.append(kf)
        self._kf_o3d = src
        t1 = time.perf_counter()
        self.optimise(self.config.map_iterations)
        self.timing["seed"] += t1 - t0
        self.timing["optimise"] += time.perf_counter() - t1

    def seed(self, kf: Keyframe) -> int:
        """Add Gaussians on the keyframe's depth pixels the map does not explain; returns how many."""
        cfg = self.config
        s = cfg.seed_stride
        f = kf.frame
        pts, rc = backproject(f.depth, f.K, s)
        if len(pts) == 0:
            return 0
        if self.map.num_gaussians > 0:
            out = self.render(kf.T_world_cam, f.K, f.width, f.height)
            a = out.alpha.numpy()[rc[:, 0], rc[:, 1]]
            rd = out.depth.numpy()[rc[:, 0], rc[:, 1]]
            z = pts[:, 2]
            need = (a < cfg.seed_alpha_below) | (rd - z > cfg.seed_depth_ratio * z)
            pts, rc = pts[need], rc[need]
            if len(pts) == 0:
                return 0
        R, t = kf.T_world_cam[:3, :3], kf.T_world_cam[:3, 3]
        means = pts @ R.T + t
        colors = f.rgb[rc[:, 0], rc[:, 1]].astype(np.float32) / 255.0
        sigma = cfg.seed_scale_factor * pts[:, 2] / f.K[0, 0] * s
        n = len(means)
        logit = math.log(cfg.seed_opacity / (1.0 - cfg.seed_opacity))
        self.map.add(
            torch.as_tensor(means, dtype=torch.float32),
            log_scales=torch.as_tensor(np.log(sigma), dtype=torch.float32)[:, None].expand(n, 3),
            opacity_logits=torch.full((n,), logit),
            sh=torch.as_tensor((colors - 0.5) / C0),
            stamp_ns=kf.stamp_ns,
        )
        return n

    def optimise(self, iterations: int) -> None:
        """Adam on colour L1 + depth L1 over a window of keyframes (newest every other step)."""
        cfg = self.config
        if iterations <= 0 or self.map.num_gaussians == 0 or not self.keyframes:
            return
        older = list(range(len(self.keyframes) - 1))
        k = min(cfg.window_size - 1, len(older))
        window = [len(self.keyframes) - 1] + (list(self._rng.choice(older, size=k, replace=False)) if k else [])
        m = self.map
        params = m.parameters()
        lrs = {"means": cfg.lr_means, "log_scales": cfg.lr_log_scales, "quats": cfg.lr_quats,
               "opacity_logits": cfg.lr_opacity, "sh": cfg.lr_sh}
        opt = torch.optim.Adam([{"params": [params[n]], "lr": lr} for n, lr in lrs.items()], eps=1e-15)
        if cfg.keep_optimizer_state and self._opt_state is not None and self._opt_version == m.storage_version:
            opt.load_state_dict(self._opt_state)
        cams: dict = {}
        total = iterations + cfg.map_iterations_coarse
        for it in range(total):
            coarse = it < cfg.map_iterations_coarse
            j = it if coarse else it - cfg.map_iterations_coarse
            i = window[0] if j % 2 == 0 or len(window) == 1 else window[1 + (j // 2) % (len(window) - 1)]
            kf = self.keyframes[i]
            rgb, depth, K = self._kf_target(kf, coarse)
            key = (i, coarse)
            if key not in cams:
                cams[key] = Camera.from_pose(torch.as_tensor(render_K(K), dtype=torch.float32),
                                             torch.as_tensor(kf.T_world_cam, dtype=torch.float32),
                                             rgb.shape[1], rgb.shape[0])
            out = render_tensors(m.means, m.quats, m.scales, m.opacities, m.sh, cams[key], backend="cpu")
            loss = (out.rgb - rgb).abs().mean()
            valid = depth > 0
            if cfg.depth_weight > 0 and bool(valid.any()):
                loss = loss + cfg.depth_weight * (out.depth[valid] - depth[valid]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        m.requires_grad_(False)
        with torch.no_grad():
            bad = (m.opacities < cfg.prune_opacity) | (m.scales.max(dim=1).values > cfg.prune_max_scale)
            if bool(bad.any()):
                m.remove(bad)
            if cfg.keep_optimizer_state:
                # freed rows get fresh moments when reused by later seeds
                dead = ~m.active_mask
                for st in opt.state.values():
                    for name in ("exp_avg", "exp_avg_sq"):
                        if name in st and st[name].shape[0] == dead.shape[0]:
                            st[name][dead] = 0.0
                self._opt_state = opt.state_dict()
                self._opt_version = m.storage_version

    def _kf_target(self, kf: Keyframe, coarse: bool) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Colour, depth and K a keyframe is fitted to, at full or half resolution (cached)."""
        if not coarse:
            return kf.rgb, kf.depth, kf.K
        if kf.half is None:
            h = downscale(kf.frame, 2)
            kf.half = (torch.from_numpy(h.rgb.astype(np.float32) / 255.0), torch.from_numpy(h.depth.copy()), h.K)
        return kf.half

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``path/map.ply`` (INRIA 3DGS PLY) and ``path/keyframes.json`` (poses, K, size)."""
        from ros_gs.gaussians.ply import write_ply

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_ply(self.map, path / "map.ply")
        meta = {
            "config": self.config.model_dump(mode="json"),
            "keyframes": [
                {"index": k.index, "stamp_ns": k.stamp_ns, "T_world_cam": k.T_world_cam.tolist(), "K": k.K.tolist(),
                 "width": int(k.rgb.shape[1]), "height": int(k.rgb.shape[0])}
                for k in self.keyframes
            ],
            "trajectory": [
                {"stamp_ns": p.stamp_ns, "T_world_cam": p.T_world_cam.tolist(), "keyframe": bool(p.keyframe),
                 "fitness": p.fitness, "ok": p.ok}
                for p in self.trajectory
            ],
        }
        (path / "keyframes.json").write_text(json.dumps(meta))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Mapper":
        """A mapper holding the saved map and trajectory (keyframe images are not stored, so
        further mapping only optimises on keyframes added after loading)."""
        from ros_gs.gaussians.ply import read_ply

        path = Path(path)
        meta = json.loads((path / "keyframes.json").read_text())
        cfg = MapperConfig(**meta["config"])
        m = cls(cfg)
        loaded = read_ply(path / "map.ply", max_gaussians=cfg.max_gaussians)
        m.map = loaded
        m.trajectory = [PoseEstimate(p["stamp_ns"], np.asarray(p["T_world_cam"]), p["keyframe"], loaded.num_gaussians,
                                     p["fitness"], p["ok"]) for p in meta["trajectory"]]
        m.saved_keyframes = meta["keyframes"]
        return m
