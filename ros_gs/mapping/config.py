"""Typed parameters of the online RGB-D Gaussian mapper."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MapperConfig(BaseModel):
    """Every knob of :class:`ros_gs.mapping.Mapper`, with defaults tuned on 7-Scenes at 320x240."""

    model_config = ConfigDict(extra="forbid")

    # input
    target_width: int = Field(320, ge=16, le=4096, description="frames are block-downscaled by the integer factor round(W / target_width) (640 -> 320)")
    depth_min: float = Field(0.1, gt=0.0, description="depth below this (m) is invalid")
    depth_max: float = Field(4.0, gt=0.0, description="depth beyond this (m) is invalid (truncation)")

    # tracking
    tracking: Literal["keyframe", "model", "prior"] = Field("model", description="'keyframe': RGB-D odometry of the frame against the last keyframe; 'model': against the Gaussian map rendered at the predicted pose (frame-to-model), falling back to the keyframe when the render covers too little; 'prior': no tracking, the poses are known (calibrated static cameras, motion capture, arm kinematics) and every frame after the first comes with its motion_prior (pose_graph should then be off, or it moves the known poses)")
    odometry_method: Literal["hybrid", "point_to_plane", "intensity"] = Field("point_to_plane", description="open3d RGB-D odometry residual of tracking (depth-only point-to-plane measured best on 7-Scenes kitchen, 600 frames, colour registered: 2.2 cm ATE vs 3.4 cm for hybrid)")
    odometry_iterations: tuple[int, int, int] = Field((10, 6, 4), description="Gauss-Newton iterations per pyramid level, fine to coarse")
    depth_outlier_trunc: float = Field(0.07, gt=0.0, description="odometry: correspondences further apart than this (m) are dropped")
    constant_velocity: bool = Field(True, description="predict the pose with the last inter-frame motion before tracking")
    min_fitness: float = Field(0.3, ge=0.0, le=1.0, description="tracking with a lower inlier fraction is not ok: the predicted pose is kept")
    model_min_coverage: float = Field(0.5, ge=0.0, le=1.0, description="'model' tracking: rendered alpha > 0.9 on at least this fraction of the observed valid pixels, else track against the keyframe")

    # maps that outlive the run
    update_map: bool = Field(True, description="False: localise only - track in the (loaded) map without adding keyframes or changing Gaussians")
    relocalise: bool = Field(True, description="relocalise in the map (global registration against keyframes) on the first frame after loading a map and after lost_after consecutive tracking failures")
    lost_after: int = Field(3, ge=1, description="consecutive tracking failures after which the camera counts as lost")
    reloc_voxel: float = Field(0.03, gt=0.0, description="relocalisation: voxel size (m) of the FPFH/RANSAC clouds")
    reloc_candidates: int = Field(5, ge=1, le=100, description="relocalisation: keyframes registered, the most similar by thumbnail first")
    reloc_min_fitness: float = Field(0.5, ge=0.0, le=1.0, description="relocalisation: minimum inlier fraction of the frame's cloud")

    refine_iterations: int = Field(0, ge=0, le=200, description="after odometry, Adam steps on the pose through the differentiable renderer (colour L1 + depth L1 against the map); 0 = off")
    refine_scale: int = Field(2, ge=1, le=8, description="refinement renders at the processing resolution divided by this")
    refine_lr: float = Field(1e-3, gt=0.0, description="refinement step size (rad, m)")
    refine_depth_weight: float = Field(1.0, ge=0.0, description="weight of the depth L1 (m) against the colour L1 (sum over RGB) in the refinement")

    fuse_depth: bool = Field(False, description="average every tracked frame's depth into the Gaussians it sees (along their viewing rays, count-weighted). Off by default: with point-to-plane tracking it feeds each frame's pose error back into the map (7-Scenes: 3 cm drift over the first 30 frames, 2.8 vs 2.2 cm ATE over 600)")
    fuse_band: float = Field(0.05, gt=0.0, le=1.0, description="fusion: only Gaussians within this fraction of the observed depth are updated")
    fuse_max_weight: float = Field(20.0, ge=1.0, description="fusion: cap of the per-Gaussian observation count (older observations fade beyond it)")

    # keyframes
    kf_translation: float = Field(0.08, gt=0.0, description="new keyframe after this much translation (m) from the last one")
    kf_rotation_deg: float = Field(8.0, gt=0.0, description="new keyframe after this much rotation (degrees) from the last one")
    kf_max_interval: int = Field(30, ge=1, description="new keyframe at least every this many frames")

    # keyframe pose graph
    pose_graph: bool = Field(True, description="register each keyframe against overlapping earlier keyframes and optimise the keyframe pose graph (open3d); keyframes and their Gaussians move to the optimised poses")
    graph_edges: int = Field(3, ge=0, le=20, description="pairwise registrations per keyframe against recent overlapping keyframes")
    loop_edges: int = Field(1, ge=0, le=20, description="... and against this many overlapping keyframes older than loop_min_separation (loop closures; robustly pruned when wrong)")
    loop_min_separation: int = Field(10, ge=2, description="keyframes at least this many keyframes apart form loop-closure edges")
    graph_radius: float = Field(0.5, gt=0.0, description="candidate keyframes have their camera centre within this distance (m)")
    graph_max_angle_deg: float = Field(35.0, gt=0.0, le=180.0, description="... and their optical axis within this angle")
    graph_method: Literal["hybrid", "point_to_plane", "intensity"] = Field("hybrid", description="open3d RGB-D odometry residual of keyframe-to-keyframe registrations")
    graph_min_fitness: float = Field(0.5, ge=0.0, le=1.0, description="registrations with a lower inlier fraction are not added")
    graph_max_jump: float = Field(0.1, gt=0.0, description="local registrations moving the keyframe further than this (m) from the tracked pose are rejected")
    graph_max_jump_deg: float = Field(10.0, gt=0.0, description="... or turning it more than this (degrees)")

    # map
    max_gaussians: int = Field(200_000, ge=100, description="hard cap of the Gaussian map (evicts lowest opacity)")
    keyframes_in_memory: int = Field(64, ge=0, description="keyframe images kept in memory (the least recently used go to disk, read back on use, ~1 ms); 0 = keep all. Bounds memory on long runs: 0.5 MB per keyframe at 320x240")
    offload_radius: float = Field(12.0, ge=0.0, description="Gaussians seeded by keyframes whose camera centre is farther than this (m) from the camera go to disk (in their keyframe's frame, so pose-graph corrections still apply) and return when the camera comes back; 0 = never. Keep it above twice depth_max (the default is), or Gaussians still in view leave and the view is seeded again")
    offload_hysteresis: float = Field(1.0, ge=0.0, description="off-loaded Gaussians return once their keyframe is within offload_radius minus this (m)")
    offload_dir: str | None = Field(None, description="folder in which a temporary folder (its own, removed at exit) holds the off-loaded keyframe images and Gaussians; None = the system temporary folder (TMPDIR). Put it on a disk, not a tmpfs. Not saved with a map")
    points_voxel: float = Field(0.05, gt=0.0, description="range points (LiDAR, add_points) seed one Gaussian per voxel of this edge (m) where no Gaussian lies within it; sigma = half of it")
    seed_stride: int = Field(2, ge=1, le=16, description="seed one Gaussian per stride x stride pixels of the downscaled frame")
    seed_alpha_below: float = Field(0.5, gt=0.0, le=1.0, description="seed where the rendered alpha is below this (unobserved)")
    seed_depth_ratio: float = Field(0.1, ge=0.0, description="also seed where the observed depth is in front of the rendered by more than this fraction")
    seed_opacity: float = Field(0.7, gt=0.0, lt=1.0, description="initial opacity of seeded Gaussians")
    seed_scale_factor: float = Field(0.7, gt=0.0, description="initial sigma = factor x depth / fx x stride")

    # optimisation
    map_iterations: int = Field(15, ge=0, le=1000, description="Adam iterations per keyframe")
    map_iterations_coarse: int = Field(30, ge=0, le=1000, description="extra Adam iterations per keyframe rendered at half resolution (cheaper), before the full-resolution ones")
    keep_optimizer_state: bool = Field(True, description="carry the Adam moments across keyframes (reset when the map storage is reallocated or repacked)")
    freeze_unseen: bool = Field(True, description="Gaussians that a step's view does not see stay where they are (carried Adam momentum would otherwise keep moving them)")
    window_size: int = Field(5, ge=1, le=100, description="keyframes optimised together: the newest plus randomly drawn older ones")
    ssim_weight: float = Field(0.0, ge=0.0, le=1.0, description="colour loss = (1 - w) L1 + w (1 - SSIM) (3DGS uses 0.2); 0 = L1 only. Off by default: on the 600 kitchen frames 0.2 gave SSIM 0.746 vs 0.730 but ATE 2.48 vs 2.25 cm, PSNR 20.9 vs 21.3 dB and 3.7 vs 5.6 frames/s")
    depth_weight: float = Field(0.5, ge=0.0, description="weight of the depth L1 (m) against the colour L1")
    lr_means: float = Field(2e-4, gt=0.0)
    lr_log_scales: float = Field(5e-3, gt=0.0)
    lr_quats: float = Field(1e-3, gt=0.0)
    lr_opacity: float = Field(5e-2, gt=0.0)
    lr_sh: float = Field(5e-3, gt=0.0)
    prune_opacity: float = Field(0.05, ge=0.0, lt=1.0, description="after optimisation, remove Gaussians less opaque than this")
    prune_max_scale: float = Field(0.3, gt=0.0, description="... and those with a sigma larger than this (m)")
    seed: int = Field(0, description="random seed (keyframe window draws)")

    @model_validator(mode="after")
    def _check_offload(self) -> "MapperConfig":
        if self.offload_radius > 0 and self.offload_hysteresis >= self.offload_radius:
            raise ValueError("offload_hysteresis must be smaller than offload_radius")
        return self
