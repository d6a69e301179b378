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
import zipfile
from dataclasses import InitVar, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ros_gs.errors import InputError
from ros_gs.gaussians.model import C0, AddResult, GaussianMap
from ros_gs.mapping.config import MapperConfig
from ros_gs.mapping.evaluation import ssim_torch
from ros_gs.mapping.frames import RgbdFrame, backproject, downscale, project, render_K
from ros_gs.mapping.offload import FrameStore, GaussianStore, check_writable_dir
from ros_gs.mapping.photometric import refine_pose
from ros_gs.mapping.relocalisation import Relocaliser
from ros_gs.mapping.pose_graph import KeyframePoseGraph, view_overlap_candidates
from ros_gs.mapping.tracking import information_matrix, rgbd_odometry, to_o3d_rgbd
from ros_gs.render import Camera, RenderOutput, render_tensors


@dataclass
class PoseEstimate:
    stamp_ns: int
    T_world_cam: np.ndarray
    keyframe: bool
    num_gaussians: int
    fitness: float
    ok: bool
    ref_keyframe: int = -1  # keyframe this pose is expressed against (moves with it when the graph corrects it)
    T_kf_cam: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Keyframe:
    """A keyframe holds its frame compactly (uint8 colour, float32 metres depth, at the
    processing resolution) in a :class:`FrameStore`, which may keep it on disk until used; the
    float tensors the optimiser fits and the open3d image that registration needs are built on
    use (~1 ms), so a 320x240 keyframe costs ~0.5 MB while resident, not the ~3.5 MB of keeping
    every form: keyframe memory is what grows on long sequences."""

    index: int  # frame counter (unique in a run: the key of its image in the store)
    stamp_ns: int
    T_world_cam: np.ndarray
    image: InitVar[RgbdFrame]
    store: FrameStore | None = field(default=None, repr=False)
    K: np.ndarray = field(init=False, repr=False)
    width: int = field(init=False)
    height: int = field(init=False)

    def __post_init__(self, image: RgbdFrame) -> None:
        if self.store is None:
            self.store = FrameStore()
        self.store.put(self.index, image)
        self.K, self.width, self.height = image.K, image.width, image.height

    @property
    def frame(self) -> RgbdFrame:
        """The keyframe's image (read back from disk when it was spilled)."""
        return self.store.get(self.index)

    def peek_frame(self) -> RgbdFrame:
        """The image without making it the most recently used (passes over every keyframe)."""
        return self.store.get(self.index, promote=False)

    @property
    def rgb(self) -> torch.Tensor:
        """(H, W, 3) float [0, 1]."""
        return torch.from_numpy(self.frame.rgb.astype(np.float32) / 255.0)

    @property
    def depth(self) -> torch.Tensor:
        """(H, W) metres, 0 = invalid (shares memory with the frame)."""
        return torch.from_numpy(self.frame.depth)

    @property
    def o3d(self):
        """open3d RGBDImage for keyframe registration."""
        return to_o3d_rgbd(self.frame.rgb, self.frame.depth)

    def target(self, coarse: bool) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Colour, depth and K the map is fitted to, at full or half resolution."""
        if not coarse:
            return self.rgb, self.depth, self.K
        h = downscale(self.frame, 2)
        return torch.from_numpy(h.rgb.astype(np.float32) / 255.0), torch.from_numpy(h.depth), h.K


# per-Gaussian fields an off-loaded keyframe keeps on disk (features too, when the map has them);
# ``quats`` is the raw buffer (normalised on use), so a round trip is exact
_STORED = ("means", "quats", "log_scales", "opacity_logits", "sh", "ids", "created_ns", "last_seen_ns", "confidence")

# ``ids`` of Gaussians seeded from range points (add_points) that no keyframe has seen yet: they
# complete the map where the cameras did not look, but tracking, seeding and the photometric
# optimisation use only camera Gaussians, and a keyframe that sees their place replaces them
RANGE_SEEDED = -2

# optimisation steps take the Gaussians whose centres project within this fraction of the image
# size around a window keyframe (wide Gaussians just outside still reach into the image)
_WINDOW_MARGIN = 0.15


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


def _to_world(gmap: GaussianMap, res: AddResult, T_world_kf: np.ndarray) -> None:
    """Move the rows ``gmap.add`` just added (``res``), stored in a keyframe's camera frame, into
    the world with the keyframe's pose ``T_world_kf``."""
    group = torch.full((len(gmap),), -1, dtype=torch.int64)
    group[res.indices] = 0
    gmap.transform_groups_(group, T_world_kf[None, :3, :3], T_world_kf[None, :3, 3])


class Mapper:
    """Online RGB-D Gaussian mapper (tracking + mapping), CPU."""

    def __init__(self, config: MapperConfig | None = None, initial_pose: np.ndarray | None = None) -> None:
        self.config = config or MapperConfig()
        self.initial_pose = np.eye(4) if initial_pose is None else orthonormalize(initial_pose)
        self.map = GaussianMap(0, capacity=4096, max_gaussians=self.config.max_gaussians)
        self.keyframes: list[Keyframe] = []
        self.trajectory: list[PoseEstimate] = []
        self.saved_trajectory: list[np.ndarray] = []  # a loaded map's trajectory (see load)
        self._rng = np.random.default_rng(self.config.seed)
        self._frames = 0
        self._ref_kf = -1  # keyframe that 'keyframe' tracking (and the fallback) registers against
        self._lost = False  # True: the next frame is relocalised (set on load and after lost tracking)
        self._failures = 0
        self._relocaliser = Relocaliser(self.config.reloc_voxel, self.config.reloc_candidates,
                                        self.config.reloc_min_fitness, self.config.seed)
        self.relocalisations = {"tried": 0, "succeeded": 0}
        # Adam moments of every buffer row (name -> (exp_avg, exp_avg_sq, step)), valid while the
        # map storage is not reallocated or repacked (storage_version)
        self._moments: dict[str, tuple[torch.Tensor, torch.Tensor, float]] | None = None
        self._opt_version = -1
        self.graph = KeyframePoseGraph(self.config.depth_outlier_trunc)
        self.graph_stats = {"edges": 0, "loop_edges": 0, "rejected": 0, "optimisations": 0}
        self.timing: dict[str, float] = {"track": 0.0, "seed": 0.0, "optimise": 0.0, "graph": 0.0, "offload": 0.0}
        # bounded memory: keyframe images beyond keyframes_in_memory and the Gaussians of
        # keyframes beyond offload_radius live on disk (see offload.py)
        if self.config.offload_dir is not None:
            check_writable_dir(self.config.offload_dir, "offload_dir")
        self.frame_store = FrameStore(self.config.keyframes_in_memory, self.config.offload_dir)
        self.offloaded = GaussianStore(self.config.offload_dir)

    # ------------------------------------------------------------------ rendering
    def render(self, T_world_cam: np.ndarray, K: np.ndarray, width: int, height: int,
               everything: bool = False) -> RenderOutput:
        """Render the map from camera pose ``T_world_cam`` with OpenCV ``K`` (integer pixel centres).

        Only the Gaussians whose centre projects into the view (with the optimisation window's
        margin) are rendered, so tracking and seeding cost what the view holds, not the whole map.
        ``everything``: the whole map, off-loaded and range-seeded Gaussians included (views for
        people); otherwise the resident camera Gaussians that tracking and seeding compare with."""
        cam = Camera.from_pose(torch.as_tensor(render_K(K), dtype=torch.float32),
                               torch.as_tensor(T_world_cam, dtype=torch.float32), width, height)
        m = self.full_map() if everything else self.map
        sel = self._in_view(m.means.detach().double().numpy(), T_world_cam, K, width, height) if len(m) else None
        if sel is not None and not everything:
            sel = sel[m.ids[sel] != RANGE_SEEDED]
        with torch.no_grad():
            if sel is None or len(sel) == 0:
                z = torch.zeros(height, width)
                return RenderOutput(torch.zeros(height, width, 3), z, z.clone(), None, None, "cpu")
            return render_tensors(m.means[sel], m.quats[sel], m.scales[sel], m.opacities[sel], m.sh[sel], cam, backend="cpu")

    @staticmethod
    def _in_view(means: np.ndarray, T_world_cam: np.ndarray, K: np.ndarray, width: int, height: int) -> torch.Tensor:
        """Indices of the points in front of the camera that project into the image or its margin."""
        _, u, v, front = project(means, T_world_cam, K, near=0.01)
        mx, my = _WINDOW_MARGIN * width, _WINDOW_MARGIN * height
        return torch.from_numpy(np.nonzero(front & (u > -mx) & (u < width + mx) & (v > -my) & (v < height + my))[0])

    # ------------------------------------------------------------------ the entry
    def prepare(self, frame: RgbdFrame) -> RgbdFrame:
        """Downscale and depth-truncate a frame to the processing resolution."""
        cfg = self.config
        factor = max(1, int(round(frame.width / cfg.target_width)))
        f = downscale(frame, factor)
        d = f.depth
        d[(d < cfg.depth_min) | (d > cfg.depth_max)] = 0.0
        return f

    def process(self, frame: RgbdFrame, motion_prior: np.ndarray | None = None) -> PoseEstimate:
        """Track one frame (relocalise it when lost), fuse its depth into the map, and make it a
        keyframe when it moved far enough: the one entry of the mapper.

        ``motion_prior``: the camera's motion since the previously processed frame
        (``T_prev_cur``, 4x4), e.g. from wheel or inertial odometry; it replaces the
        constant-velocity prediction as the initial guess of tracking."""
        cfg = self.config
        if motion_prior is not None:
            motion_prior = np.asarray(motion_prior, dtype=np.float64)
            if motion_prior.shape != (4, 4) or not np.isfinite(motion_prior).all():
                raise InputError(f"motion_prior must be a finite 4x4 matrix, got shape {motion_prior.shape}")
        f = self.prepare(frame)
        src = to_o3d_rgbd(f.rgb, f.depth)
        fitness, ok = 1.0, True
        if self.trajectory and not self._lost:
            self.page(self.current_pose(-1)[:3, 3])
        t0 = time.perf_counter()
        if self._lost:
            T, fitness, ok = self._relocalise(f, src)
        elif not self.trajectory:
            T = self.initial_pose.copy()
        elif cfg.tracking == "prior":
            if motion_prior is None:
                raise InputError("tracking='prior' needs the motion_prior of every frame after the first")
            T = self.current_pose(-1) @ orthonormalize(motion_prior)
        else:
            T_prev = self.current_pose(-1)
            T_pred = T_prev.copy()
            if motion_prior is not None:
                T_pred = T_prev @ orthonormalize(motion_prior)
            elif cfg.constant_velocity and len(self.trajectory) >= 2 and self.trajectory[-2].ok:
                T_pp = self.current_pose(-2)
                T_pred = T_prev @ (_inv(T_pp) @ T_prev)
            T, fitness = self._track(f, src, T_pred)
            T = orthonormalize(T)
            ok = fitness >= cfg.min_fitness and np.isfinite(T).all()
            if ok and cfg.refine_iterations > 0:
                T = orthonormalize(self._refine(f, T))
            if not ok:
                T = T_pred
                self._failures += 1
                if cfg.relocalise and self.keyframes and self._failures >= cfg.lost_after:
                    self._lost = True  # the next frame is relocalised in the map
            else:
                self._failures = 0
        self.timing["track"] += time.perf_counter() - t0
        if ok and cfg.fuse_depth and cfg.update_map and self.map.num_gaussians and not self._lost:
            self.fuse_depth(f, T)
        is_kf = ok and cfg.update_map and self._is_keyframe(T)
        if is_kf:
            self._add_keyframe(f, src, T)
            T = self.keyframes[-1].T_world_cam.copy()  # the pose graph may have corrected it
        self._frames += 1
        ref = self._ref_kf if self.keyframes else -1
        rel = _inv(self.keyframes[ref].T_world_cam) @ T if ref >= 0 else None
        est = PoseEstimate(int(frame.stamp_ns), T, bool(is_kf), self.map.num_gaussians, float(fitness), bool(ok),
                           ref, rel)
        self.trajectory.append(est)
        return est

    def _relocalise(self, f: RgbdFrame, src) -> tuple[np.ndarray, float, bool]:
        """Pose of a frame with no usable prior: global registration against the keyframes, then
        the usual tracking from there.  Returns (pose, fitness, ok)."""
        cfg = self.config
        self.relocalisations["tried"] += 1
        r = self._relocaliser.locate(self.keyframes, f.rgb, f.depth, f.K)
        last = self.trajectory[-1].T_world_cam if self.trajectory else self.initial_pose
        if r is None:
            return last.copy(), 0.0, False
        self._ref_kf = r.keyframe
        self.page(r.T_world_cam[:3, 3])  # the map around the new pose comes back before tracking
        T, fitness = self._track(f, src, r.T_world_cam)
        T = orthonormalize(T)
        ok = fitness >= cfg.min_fitness and bool(np.isfinite(T).all())
        if not ok:
            return last.copy(), fitness, False
        self._lost, self._failures = False, 0
        self.relocalisations["succeeded"] += 1
        return T, fitness, True

    @property
    def lost(self) -> bool:
        """True while the camera has no pose in the map (the next frame will be relocalised)."""
        return self._lost

    def current_pose(self, i: int) -> np.ndarray:
        """Pose of processed frame ``i`` as the map now has it: relative to its keyframe, which
        the pose graph may have moved since (``trajectory[i].T_world_cam`` is the pose published
        then)."""
        p = self.trajectory[i]
        if p.ref_keyframe < 0 or p.T_kf_cam is None or p.ref_keyframe >= len(self.keyframes):
            return p.T_world_cam
        return self.keyframes[p.ref_keyframe].T_world_cam @ p.T_kf_cam

    def optimised_trajectory(self) -> np.ndarray:
        """(N, 4, 4) every processed frame's pose after the keyframe corrections so far."""
        return np.array([self.current_pose(i) for i in range(len(self.trajectory))])

    # ------------------------------------------------------------------ tracking
    def _odometry_kwargs(self, method: str) -> dict:
        cfg = self.config
        return dict(method=method, iterations=cfg.odometry_iterations, depth_max=cfg.depth_max,
                    depth_outlier_trunc=cfg.depth_outlier_trunc)

    def _track(self, f: RgbdFrame, src, T_pred: np.ndarray) -> tuple[np.ndarray, float]:
        cfg = self.config
        kw = self._odometry_kwargs(cfg.odometry_method)
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
                # judged on the part of the frame the map covers: a view turning into unmapped
                # space is not a tracking failure (it lost 10 Hz walkthrough tracking at 0.9 cm error)
                return T_pred @ res.T_target_source, min(1.0, res.fitness / cover)
        kf = self.keyframes[self._ref_kf]
        init = _inv(kf.T_world_cam) @ T_pred
        res = rgbd_odometry(src, kf.o3d, f.K, init, **kw)
        return kf.T_world_cam @ res.T_target_source, res.fitness

    def fuse_depth(self, f: RgbdFrame, T: np.ndarray) -> int:
        """Average every tracked frame's depth into the Gaussians it sees (surfel-style fusion:
        the mean slides along its viewing ray to the running, count-weighted mean of the
        observed depths), so the geometry that tracking renders is smoothed over many frames
        rather than one keyframe's noisy depth.  Returns how many Gaussians moved."""
        cfg = self.config
        with torch.no_grad():
            slots = self.map.active_slots()[self.map.ids != RANGE_SEEDED]
            mu = self.map.storage("means")[slots].double().numpy()
            R, t = T[:3, :3], T[:3, 3]
            pc, u, v, front = project(mu, T, f.K)
            z = pc[:, 2]
            u, v = np.round(u).astype(int), np.round(v).astype(int)
            inside = front & (u >= 0) & (u < f.width) & (v >= 0) & (v < f.height)
            idx = np.nonzero(inside)[0]
            d = f.depth[v[idx], u[idx]]
            near = (d > 0) & (np.abs(d - z[idx]) < cfg.fuse_band * z[idx])
            idx, d = idx[near], d[near]
            if len(idx) == 0:
                return 0
            conf = self.map.storage("confidence")
            c = conf[slots[idx]].double().numpy()
            z_new = (c * z[idx] + d) / (c + 1.0)
            pc_new = pc[idx] * (z_new / z[idx])[:, None]
            self.map.storage("means")[slots[idx]] = torch.as_tensor(pc_new @ R.T + t, dtype=torch.float32)
            conf[slots[idx]] = torch.as_tensor(np.minimum(c + 1.0, cfg.fuse_max_weight), dtype=conf.dtype)
        return int(len(idx))

    def _refine(self, f: RgbdFrame, T: np.ndarray) -> np.ndarray:
        """Photometric + depth refinement of a tracked pose through the renderer (reduced size)."""
        cfg = self.config
        h = downscale(f, cfg.refine_scale) if cfg.refine_scale > 1 else f
        return refine_pose(self.map, T, h.rgb, h.depth, h.K, iterations=cfg.refine_iterations, lr=cfg.refine_lr,
                           depth_weight=cfg.refine_depth_weight)

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
        kf = Keyframe(self._frames, int(f.stamp_ns), T.copy(), f, self.frame_store)
        self.keyframes.append(kf)
        self._ref_kf = len(self.keyframes) - 1
        if self.config.pose_graph:
            tg = time.perf_counter()
            self._update_graph(src)
            self.timing["graph"] += time.perf_counter() - tg
            t0 += time.perf_counter() - tg
        self.seed(kf)
        t1 = time.perf_counter()
        self.optimise(self.config.map_iterations)
        self.timing["seed"] += t1 - t0
        self.timing["optimise"] += time.perf_counter() - t1

    def _update_graph(self, src) -> None:
        """Register the newest keyframe (``src``: its open3d image, already built for tracking)
        against overlapping earlier ones, optimise the pose graph and move keyframes (and the
        Gaussians they seeded) to the optimised poses."""
        cfg = self.config
        k = len(self.keyframes) - 1
        new = self.keyframes[k]
        self.graph.add_node(new.T_world_cam)
        if k == 0:
            return
        kw = self._odometry_kwargs(cfg.graph_method)
        # the tracked motion from the previous keyframe keeps the graph connected
        prev = self.keyframes[k - 1]
        T_seq = _inv(prev.T_world_cam) @ new.T_world_cam
        self.graph.add_edge(k, k - 1, T_seq, information_matrix(src, prev.o3d, new.K, T_seq, cfg), False)
        poses = [kf.T_world_cam for kf in self.keyframes]
        cands = view_overlap_candidates(poses, k, cfg.graph_radius, cfg.graph_max_angle_deg)
        local = [j for j in cands if k - j < cfg.loop_min_separation][: cfg.graph_edges]
        loops = [j for j in cands if k - j >= cfg.loop_min_separation][: cfg.loop_edges]
        added = False
        for j in local + loops:
            is_loop = k - j >= cfg.loop_min_separation
            init = _inv(poses[j]) @ poses[k]
            target = self.keyframes[j].o3d  # built on use: once per candidate
            res = rgbd_odometry(src, target, new.K, init, **kw)
            d = _inv(init) @ res.T_target_source
            far = np.linalg.norm(d[:3, 3]) > cfg.graph_max_jump or _rot_angle_deg(d[:3, :3]) > cfg.graph_max_jump_deg
            if res.fitness < cfg.graph_min_fitness or not np.isfinite(res.T_target_source).all() or (far and not is_loop):
                self.graph_stats["rejected"] += 1
                continue
            info = information_matrix(src, target, new.K, res.T_target_source, cfg)
            self.graph.add_edge(k, j, res.T_target_source, info, uncertain=is_loop)
            self.graph_stats["edges"] += 1
            self.graph_stats["loop_edges"] += int(is_loop)
            added = True
        if not added:
            return
        old = [kf.T_world_cam.copy() for kf in self.keyframes]
        newposes = self.graph.optimise()
        self.graph_stats["optimisations"] += 1
        self._move_keyframes(old, newposes)

    def _move_keyframes(self, old: list[np.ndarray], new: list[np.ndarray]) -> None:
        """Set keyframe poses to ``new`` and carry each keyframe's Gaussians (anchored by their
        creation stamp) along with it."""
        deltas = []
        for kf, To, Tn in zip(self.keyframes, old, new):
            Tn = orthonormalize(Tn)
            kf.T_world_cam = Tn
            deltas.append(Tn @ _inv(To))
        if self.map.num_gaussians == 0:
            return
        stamps = np.array([kf.stamp_ns for kf in self.keyframes], np.int64)
        order = np.argsort(stamps, kind="stable")
        created = self.map.created_ns.cpu().numpy()
        pos = np.clip(np.searchsorted(stamps[order], created), 0, len(order) - 1)
        group = np.where(stamps[order][pos] == created, order[pos], -1)
        D = np.array(deltas)
        self.map.transform_groups_(torch.from_numpy(group), torch.from_numpy(D[:, :3, :3]),
                                   torch.from_numpy(D[:, :3, 3]))

    # ------------------------------------------------------------------ bounded memory
    def _group_mask(self, kf: Keyframe) -> torch.Tensor:
        """Active-set mask of the Gaussians keyframe ``kf`` seeded (anchored by creation stamp)."""
        return self.map.created_ns == kf.stamp_ns

    def page(self, position: np.ndarray) -> tuple[int, int]:
        """Move the Gaussians of keyframes whose camera centre is farther than
        ``offload_radius`` from ``position`` to disk, and bring back those of keyframes now
        within ``offload_radius - offload_hysteresis``.  Off-loaded Gaussians are stored in
        their keyframe's camera frame, so pose-graph corrections made meanwhile apply to them
        when they return.  Returns (keyframes off-loaded, keyframes restored)."""
        cfg = self.config
        if cfg.offload_radius <= 0 or not self.keyframes:
            return 0, 0
        t0 = time.perf_counter()
        centres = np.array([kf.T_world_cam[:3, 3] for kf in self.keyframes])
        d = np.linalg.norm(centres - np.asarray(position, np.float64)[None], axis=1)
        back = [i for i in self.offloaded.counts if d[i] < cfg.offload_radius - cfg.offload_hysteresis]
        away = [i for i in np.nonzero(d > cfg.offload_radius)[0].tolist() if i not in self.offloaded]
        for i in away:  # first: the room they free keeps the restored ones from evicting at the cap
            self._offload(i)
        for i in back:
            self._restore(i)
        self.timing["offload"] += time.perf_counter() - t0
        return len(away), len(back)

    def _offload(self, i: int) -> None:
        kf = self.keyframes[i]
        mask = self._group_mask(kf)
        sub = self.map.select(mask)
        T_cam_world = _inv(kf.T_world_cam)
        sub.transform_groups_(torch.zeros(len(sub), dtype=torch.int64), T_cam_world[None, :3, :3], T_cam_world[None, :3, 3])
        fields = {n: sub.storage(n)[: len(sub)].detach().cpu().numpy() for n in _STORED}
        if sub.features is not None:
            fields["features"] = sub.features.detach().cpu().numpy()
        self.offloaded.put(i, fields)
        self._remove(torch.nonzero(mask).squeeze(1))

    def _restore(self, i: int) -> None:
        fields = self.offloaded.peek(i)
        if len(fields["means"]):
            _to_world(self.map, self._add(**{k: torch.from_numpy(v) for k, v in fields.items()}), self.keyframes[i].T_world_cam)
        self.offloaded.drop(i)  # only once they are back in the map

    def _add(self, means: torch.Tensor, **fields) -> AddResult:
        """``self.map.add`` whose new rows (freed rows reused, or rows the cap's evictions freed)
        start with zero Adam moments."""
        res = self.map.add(means, **fields)
        self._forget_moments(self.map.active_slots()[res.indices])
        return res

    def _remove(self, idx: torch.Tensor) -> int:
        """``self.map.remove`` of active-set indices, their Adam moments zeroed first."""
        if len(idx) == 0:
            return 0
        self._forget_moments(self.map.active_slots()[idx])
        return self.map.remove(idx)

    def _seen_by(self, kf: Keyframe, points: np.ndarray) -> np.ndarray:
        """Indices of the world points the keyframe's depth sees: projected inside its image,
        at or in front of the observed surface (5% + ``points_voxel``)."""
        pc, u, v, front = project(points, kf.T_world_cam, kf.K)
        ui, vi = np.round(u).astype(int), np.round(v).astype(int)
        inside = np.nonzero(front & (ui >= 0) & (ui < kf.width) & (vi >= 0) & (vi < kf.height))[0]
        d = kf.frame.depth[vi[inside], ui[inside]]
        return inside[(d > 0) & (pc[inside, 2] < d + 0.05 * d + self.config.points_voxel)]

    def _forget_moments(self, slots: torch.Tensor) -> None:
        """Zero the carried Adam moments of buffer rows being freed or newly filled."""
        if self._moments is None or self._opt_version != self.map.storage_version:
            return
        for avg, avg_sq, _ in self._moments.values():
            avg[slots] = 0.0
            avg_sq[slots] = 0.0

    def full_map(self) -> GaussianMap:
        """The resident Gaussians plus the off-loaded ones (at their keyframes' current poses)."""
        if not self.offloaded.counts:
            return self.map
        out = self.map.clone()
        out.max_gaussians = None  # the cap bounds what is resident, not what was mapped
        for i in list(self.offloaded.counts):
            fields = self.offloaded.peek(i)
            if len(fields["means"]) == 0:
                continue
            _to_world(out, out.add(**{k: torch.from_numpy(v) for k, v in fields.items()}), self.keyframes[i].T_world_cam)
        return out

    def _drop_range_seeded(self, kf: Keyframe) -> int:
        """Remove the range-seeded Gaussians that the keyframe's depth sees (at or in front of
        the observed surface): its camera Gaussians take their place.  Returns how many."""
        rng = self.map.ids == RANGE_SEEDED
        if not bool(rng.any()):
            return 0
        idx = torch.nonzero(rng).squeeze(1)
        return self._remove(idx[torch.from_numpy(self._seen_by(kf, self.map.means[idx].detach().double().numpy()))])

    def _make_room(self, n: int, position: np.ndarray) -> int:
        """At the cap, range-seeded Gaussians (farthest from ``position`` first) leave before
        the map's own eviction policy drops camera Gaussians for ``n`` new ones.  Returns how
        many were removed."""
        cap = self.map.max_gaussians
        over = 0 if cap is None else len(self.map) + n - cap
        rng = torch.nonzero(self.map.ids == RANGE_SEEDED).squeeze(1) if over > 0 else None
        if rng is None or len(rng) == 0:
            return 0
        d = (self.map.means[rng].detach().double() - torch.as_tensor(position, dtype=torch.float64)).norm(dim=1)
        return self._remove(rng[torch.argsort(d, descending=True)[:over]])

    def seed(self, kf: Keyframe) -> int:
        """Add Gaussians on the keyframe's depth pixels the map does not explain; returns how many."""
        cfg = self.config
        s = cfg.seed_stride
        self._drop_range_seeded(kf)
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
        self._make_room(n, kf.T_world_cam[:3, 3])
        self._add(
            torch.as_tensor(means, dtype=torch.float32),
            log_scales=torch.as_tensor(np.log(sigma), dtype=torch.float32)[:, None].expand(n, 3),
            opacity_logits=torch.full((n,), logit),
            sh=torch.as_tensor((colors - 0.5) / C0),
            stamp_ns=kf.stamp_ns,
        )
        return n

    def add_points(self, points_world: np.ndarray) -> int:
        """Complete the map with range points (e.g. a deskewed LiDAR scan in the map frame) where
        the cameras did not look: one grey, isotropic Gaussian per ``points_voxel`` voxel (the
        centroid of its points, open3d's voxel down-sampling) that has no Gaussian within that
        distance and that the newest keyframe's depth does not see.  They are marked
        ``ids == RANGE_SEEDED`` and belong to the newest keyframe (its creation stamp), so
        pose-graph corrections and off-loading move them with it; tracking, seeding and the
        optimisation use only camera Gaussians (sparse range Gaussians rendered into the
        tracking target cost 25 cm of drift on the walkthrough), and a keyframe that sees their
        place replaces them with its own.  Returns how many were added (0 before the first
        keyframe, or in localisation).  Non-finite points are dropped, and with off-loading on,
        points farther from the newest keyframe than ``offload_radius - offload_hysteresis -
        depth_max`` (7 m by default)."""
        import open3d as o3d

        cfg = self.config
        pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if not self.keyframes or len(pts) == 0 or not cfg.update_map:
            return 0
        if cfg.offload_radius > 0:
            # beyond this, camera Gaussians may be off-loaded (the check below would not see
            # them) and these would not be off-loaded with their keyframe: keep memory bounded
            reach = max(cfg.offload_radius - cfg.offload_hysteresis - cfg.depth_max, cfg.points_voxel)
            pts = pts[np.linalg.norm(pts - self.keyframes[-1].T_world_cam[:3, 3], axis=1) <= reach]
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        pts = np.asarray(pc.voxel_down_sample(cfg.points_voxel).points)
        if len(self.map):
            from ros_gs.gaussians.spatial_index import VoxelIndex

            index = VoxelIndex.build(self.map.means.detach(), cfg.points_voxel)
            pts = pts[~index.occupied(torch.from_numpy(pts), radius=cfg.points_voxel).numpy()]
        if len(pts) == 0:
            return 0
        kf = self.keyframes[-1]
        pts = np.delete(pts, self._seen_by(kf, pts), axis=0)  # what the newest keyframe's camera mapped
        n = len(pts)
        if n == 0:
            return 0
        logit = math.log(cfg.seed_opacity / (1.0 - cfg.seed_opacity))
        return self._add(torch.as_tensor(pts, dtype=torch.float32),
                         log_scales=torch.full((n, 3), math.log(0.5 * cfg.points_voxel)),
                         opacity_logits=torch.full((n,), logit), ids=RANGE_SEEDED, stamp_ns=kf.stamp_ns).added

    def _window_slots(self, window: list[int]) -> torch.Tensor:
        """Buffer rows of the Gaussians whose centre projects into (a margin around) one of the
        window's keyframes: the only ones a step over that window can see."""
        slots = self.map.active_slots()[self.map.ids != RANGE_SEEDED]
        mu = self.map.storage("means")[slots].detach().double().numpy()
        vis = torch.zeros(len(slots), dtype=torch.bool)
        for i in window:
            kf = self.keyframes[i]
            vis[self._in_view(mu, kf.T_world_cam, kf.K, kf.width, kf.height)] = True
        return slots[vis]

    def optimise(self, iterations: int) -> None:
        """Adam on colour L1 + depth L1 over a window of keyframes (newest every other step).

        Only the Gaussians the window sees are optimised (and rendered): a step costs what the
        visible part of the map costs, not the whole map.  Their Adam moments are gathered from
        and scattered back to map-sized buffers, so the rest of the map keeps its moments."""
        cfg = self.config
        if iterations <= 0 or self.map.num_gaussians == 0 or not self.keyframes:
            return
        # keyframes whose Gaussians are on disk would pull the resident ones towards their view
        older = [i for i in range(len(self.keyframes) - 1) if i not in self.offloaded]
        k = min(cfg.window_size - 1, len(older))
        window = [len(self.keyframes) - 1] + (list(self._rng.choice(older, size=k, replace=False)) if k else [])
        m = self.map
        m.requires_grad_(False)
        sub = self._window_slots(window)
        if len(sub) == 0:
            return
        lrs = {"means": cfg.lr_means, "log_scales": cfg.lr_log_scales, "quats": cfg.lr_quats,
               "opacity_logits": cfg.lr_opacity, "sh": cfg.lr_sh}
        params = {n: m.storage(n)[sub].clone().requires_grad_(True) for n in lrs}
        opt = torch.optim.Adam([{"params": [params[n]], "lr": lr} for n, lr in lrs.items()], eps=1e-15)
        carried = cfg.keep_optimizer_state and self._moments is not None and self._opt_version == m.storage_version
        if carried:
            for n, p in params.items():
                avg, avg_sq, step = self._moments[n]
                opt.state[p] = {"step": torch.tensor(step), "exp_avg": avg[sub].clone(), "exp_avg_sq": avg_sq[sub].clone()}
        cams: dict = {}
        targets: dict = {}
        total = iterations + cfg.map_iterations_coarse
        for it in range(total):
            coarse = it < cfg.map_iterations_coarse
            j = it if coarse else it - cfg.map_iterations_coarse
            i = window[0] if j % 2 == 0 or len(window) == 1 else window[1 + (j // 2) % (len(window) - 1)]
            kf = self.keyframes[i]
            key = (i, coarse)
            if key not in targets:
                targets[key] = kf.target(coarse)
            rgb, depth, K = targets[key]
            if key not in cams:
                cams[key] = Camera.from_pose(torch.as_tensor(render_K(K), dtype=torch.float32),
                                             torch.as_tensor(kf.T_world_cam, dtype=torch.float32),
                                             rgb.shape[1], rgb.shape[0])
            q = params["quats"]
            out = render_tensors(params["means"], q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12),
                                 torch.exp(params["log_scales"]), torch.sigmoid(params["opacity_logits"]), params["sh"],
                                 cams[key], backend="cpu")
            loss = (out.rgb - rgb).abs().mean()
            if cfg.ssim_weight > 0:  # 3DGS's (1 - w) L1 + w D-SSIM
                dssim = 1.0 - ssim_torch(out.rgb.permute(2, 0, 1)[None], rgb.permute(2, 0, 1)[None])
                loss = (1.0 - cfg.ssim_weight) * loss + cfg.ssim_weight * dssim
            valid = depth > 0
            if cfg.depth_weight > 0 and bool(valid.any()):
                loss = loss + cfg.depth_weight * (out.depth[valid] - depth[valid]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.freeze_unseen:
                # Adam's momentum would keep moving Gaussians this view does not see: keep them
                seen = params["means"].grad.abs().sum(dim=1) > 0
                keep = {n: p.detach()[~seen].clone() for n, p in params.items()}
            opt.step()
            if cfg.freeze_unseen:
                with torch.no_grad():
                    for n, p in params.items():
                        p[~seen] = keep[n]
        with torch.no_grad():
            for n, p in params.items():
                m.storage(n)[sub] = p.detach()
            if cfg.keep_optimizer_state:
                if not carried:
                    cap = m.storage("means").shape[0]
                    self._moments = {n: (torch.zeros((cap, *p.shape[1:])), torch.zeros((cap, *p.shape[1:])), 0.0)
                                     for n, p in params.items()}
                for n, p in params.items():
                    st = opt.state[p]
                    avg, avg_sq, _ = self._moments[n]
                    avg[sub], avg_sq[sub] = st["exp_avg"], st["exp_avg_sq"]
                    self._moments[n] = (avg, avg_sq, float(st["step"]))
                self._opt_version = m.storage_version
            self._prune()

    def _prune(self) -> int:
        """Remove near-transparent and huge Gaussians; returns how many.  The carried Adam
        moments follow their rows (a removal may repack the map: row j then holds the j-th
        survivor) and freed rows get fresh ones for the Gaussians that will reuse them."""
        cfg, m = self.config, self.map
        bad = (m.opacities < cfg.prune_opacity) | (m.scales.max(dim=1).values > cfg.prune_max_scale)
        removed = 0
        valid = self._moments is not None and self._opt_version == m.storage_version
        if bool(bad.any()):
            survivors = m.active_slots()[~bad]
            version = m.storage_version
            removed = m.remove(bad)
            if valid and m.storage_version != version:  # compacted in place: survivor j -> row j
                k = len(survivors)
                for avg, avg_sq, _ in self._moments.values():
                    avg[:k], avg_sq[:k] = avg[survivors].clone(), avg_sq[survivors].clone()
                self._opt_version = m.storage_version
        if valid:  # freed rows start fresh for the Gaussians that reuse them
            self._forget_moments(torch.nonzero(~m.active_mask).squeeze(1))
        return removed

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write a map folder that :meth:`load` restores: ``map.ply`` (INRIA 3DGS PLY, opens in
        splat viewers; off-loaded Gaussians included), ``gaussians.npz`` (each Gaussian's
        creation and last-seen stamps: which keyframe it moves with; its id: range-seeded or not), ``keyframes.json`` (config, keyframe poses/K/stamps, pose-graph edges,
        the trajectory as optimised now) and ``keyframes/NNNNN.png`` + ``NNNNN_depth.png``
        (colour and 16-bit millimetre depth at the processing resolution), so a later run can
        relocalise against the keyframes, track in the map and resume mapping."""
        import os
        import shutil

        from ros_gs.errors import ConfigError

        path = Path(path)
        if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or (path / "keyframes.json").is_file())):
            raise ConfigError(f"{path} exists and is not a ros_gs map folder: refusing to replace it")
        # written whole into a fresh folder beside it, then swapped in: a failed save leaves the
        # old map as it was, and a saved map holds no keyframe images of an older one
        tmp = path.with_name(f".{path.name}.saving-{os.getpid()}")
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            self._write_map(tmp)
            if path.exists():
                path.rename(old)
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not path.exists():
                old.rename(path)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return path

    def _write_map(self, path: Path) -> None:
        from PIL import Image

        from ros_gs.gaussians.ply import write_ply

        (path / "keyframes").mkdir(parents=True, exist_ok=True)
        full = self.full_map()
        write_ply(full, path / "map.ply")
        # which keyframe seeded each Gaussian (PLY row order), so a resumed run's pose-graph
        # corrections and off-loading still move them with their keyframes
        np.savez(path / "gaussians.npz", created_ns=full.created_ns.cpu().numpy(), last_seen_ns=full.last_seen_ns.cpu().numpy(),
                 ids=full.ids.cpu().numpy())
        for i, k in enumerate(self.keyframes):
            f = k.peek_frame()
            Image.fromarray(f.rgb).save(path / "keyframes" / f"{i:05d}.png")
            mm = np.clip(np.round(np.nan_to_num(f.depth) * 1000.0), 0, 65535).astype(np.uint16)
            Image.fromarray(mm).save(path / "keyframes" / f"{i:05d}_depth.png")
        traj = self.optimised_trajectory() if self.trajectory else []
        meta = {
            "format": "ros_gs.map/1",
            "config": self.config.model_dump(mode="json") | {"offload_dir": None},  # a machine's folder
            "keyframes": [
                {"index": k.index, "stamp_ns": k.stamp_ns, "T_world_cam": k.T_world_cam.tolist(), "K": k.K.tolist(),
                 "width": k.width, "height": k.height}
                for k in self.keyframes
            ],
            "edges": [{"source": e.source, "target": e.target, "T_target_source": e.T_target_source.tolist(),
                       "information": e.information.tolist(), "uncertain": e.uncertain} for e in self.graph.edges],
            "trajectory": [
                {"stamp_ns": p.stamp_ns, "T_world_cam": T.tolist(), "keyframe": bool(p.keyframe),
                 "fitness": p.fitness, "ok": p.ok}
                for p, T in zip(self.trajectory, traj)
            ],
        }
        (path / "keyframes.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: str | Path, config: MapperConfig | None = None) -> "Mapper":
        """A mapper holding a saved map: Gaussians, keyframes (images included) and pose graph.
        Its next :meth:`process` call relocalises the frame in the map (``config.relocalise``),
        and poses come out in the saved map's frame.  ``config`` overrides the saved one (e.g.
        ``update_map=False`` to localise only).  The saved run's trajectory is in
        ``saved_trajectory``.  Raises DatasetError for a missing or damaged map folder."""
        from PIL import Image

        from ros_gs.errors import DatasetError
        from ros_gs.gaussians.ply import read_ply

        path = Path(path)
        try:
            meta = json.loads((path / "keyframes.json").read_text())
            cfg = config or MapperConfig(**meta["config"])
            m = cls(cfg)
            m.map = read_ply(path / "map.ply")  # uncapped until the stamps are set: may hold off-loaded Gaussians
            if (path / "gaussians.npz").exists():
                with np.load(path / "gaussians.npz") as z:
                    created, seen = z["created_ns"], z["last_seen_ns"]
                    ids = z["ids"] if "ids" in z.files else np.full(len(created), -1)
                if not len(created) == len(seen) == len(ids) == len(m.map):
                    raise DatasetError(f"{path / 'gaussians.npz'} has {len(created)} rows, map.ply {len(m.map)}")
                m.map.update(torch.arange(len(m.map)), created_ns=torch.from_numpy(created), last_seen_ns=torch.from_numpy(seen),
                             ids=torch.from_numpy(ids))
            m.map.max_gaussians = cfg.max_gaussians  # later adds respect the cap; page() off-loads what is far
            for i, k in enumerate(meta["keyframes"]):
                rgb = np.asarray(Image.open(path / "keyframes" / f"{i:05d}.png").convert("RGB"))
                depth = np.asarray(Image.open(path / "keyframes" / f"{i:05d}_depth.png"), dtype=np.float32) / 1000.0
                T = orthonormalize(np.asarray(k["T_world_cam"], np.float64))
                f = RgbdFrame(int(k["stamp_ns"]), rgb, depth, np.asarray(k["K"], np.float64))
                m.keyframes.append(Keyframe(int(k["index"]), f.stamp_ns, T, f, m.frame_store))
                m.graph.add_node(T)
            for e in meta.get("edges", []):
                if not (0 <= int(e["source"]) < len(m.keyframes) and 0 <= int(e["target"]) < len(m.keyframes)):
                    raise DatasetError(f"{path / 'keyframes.json'}: pose-graph edge between unknown keyframes")
                m.graph.add_edge(e["source"], e["target"], np.asarray(e["T_target_source"]), np.asarray(e["information"]),
                                 bool(e["uncertain"]))
            m.saved_trajectory = [np.asarray(p["T_world_cam"], np.float64) for p in meta["trajectory"]]
        except DatasetError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile) as err:
            raise DatasetError(f"cannot load the map in {str(path)!r}: {type(err).__name__}: {err}") from err
        m._frames = max([k.index for k in m.keyframes], default=-1) + 1
        m._ref_kf = len(m.keyframes) - 1
        m._lost = bool(m.keyframes) and cfg.relocalise
        return m
