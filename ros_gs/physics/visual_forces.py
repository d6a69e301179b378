"""Visual forces: the difference between the images the simulator predicts and the images the
cameras see becomes forces on the particles (Abou-Chakra et al. 2024, "Physically Embodied
Gaussian Splatting").

The bodies' Gaussians are posed by the simulator (:class:`~ros_gs.physics.binding.GaussianBinding`)
and rendered from each observing camera; the photometric loss is differentiated with respect to
the Gaussians' means, and each Gaussian pushes its nearest particle with
``-gain * dL/dmean``, plus a drag on the particles that keeps the correction from overshooting.
The loss is the summed squared RGB error: its gradient fades as the images agree (an L1 loss's
does not, and the bodies chattered around the right pose).  :meth:`ros_gs.physics.world.World.step` turns the particle forces into one
wrench per body, so a body moves and turns towards where the images put it while contacts,
gravity and friction keep it physical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from ros_gs.errors import ConfigError
from ros_gs.physics.binding import GaussianBinding
from ros_gs.physics.world import World
from ros_gs.render import Camera, render_tensors


class VisualForceConfig(BaseModel):
    """How image error becomes force."""

    model_config = ConfigDict(extra="forbid")

    gain: float = Field(3e-3, ge=0.0, description="newtons per unit gradient of the summed squared RGB error (per camera) with respect to a Gaussian's mean (m). Scene dependent: 3e-3 (with damping 30) tracks MuJoCo's push scene from 160x120 segmentation codes (one colour per object: only silhouettes pull); a cube with six differently coloured faces seen at 96x72 pulls harder and needs 2e-4 (damping 10), being unstable at 3e-3")
    damping: float = Field(30.0, ge=0.0, description="with the visual force, a drag on every particle (1/s) that takes the share 1 - exp(-damping dt) of its velocity over a step dt (about -damping * m * v for small steps; summed over a body, -damping * (m v, I w)): a spring without it overshoots")
    max_force: float = Field(1.0, gt=0.0, description="a particle's visual force is clipped to this many newtons")
    backend: str = Field("auto", description="render backend (see ros_gs.render)")


@dataclass
class Observation:
    """One camera's image: ``rgb`` (H, W, 3) in [0, 1] seen by ``camera``; ``mask`` (H, W) bool
    marks the pixels that count (default all)."""

    camera: Camera
    rgb: Tensor
    mask: Tensor | None = None


@dataclass
class Appearance:
    """What the simulator does not move: activated ``scales`` (N, 3), ``opacities`` (N,), ``sh`` (N, K, 3)."""

    scales: Tensor
    opacities: Tensor
    sh: Tensor


def visual_forces(world: World, binding: GaussianBinding, appearance: Appearance,
                  observations: list[Observation], config: VisualForceConfig | None = None,
                  dt: float | None = None) -> tuple[np.ndarray, float]:
    """Particle forces (P, 3) in newtons for ``world.step(dt, forces)`` and the summed squared
    image error (mean over cameras) of the world's current state.

    ``dt``: the step the forces will be held for.  The drag then takes away exactly the share
    ``1 - exp(-damping dt)`` of each particle's velocity, which is stable for any step (a drag
    of ``-damping m v`` held for ``dt`` reverses the velocity once ``damping dt > 1``, and grows
    it beyond 2); without ``dt`` the plain ``-damping m v`` is used (small steps only)."""
    cfg = config or VisualForceConfig()
    if not observations:
        raise ConfigError("visual_forces: no observations")
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise ConfigError(f"visual_forces: dt must be a positive number, got {dt}")
    if binding.num_particles != world.num_particles:
        raise ConfigError(f"binding has {binding.num_particles} particles, the world {world.num_particles}")
    means, quats = binding.posed(world.poses())
    means = means.detach().requires_grad_(True)
    total = 0.0
    for obs in observations:
        cam = obs.camera
        rgb = torch.as_tensor(obs.rgb, dtype=torch.float32)
        if rgb.shape != (cam.height, cam.width, 3):
            raise ConfigError(f"observation image {tuple(rgb.shape)} does not match its camera ({cam.height}, {cam.width}, 3)")
        if not bool(torch.isfinite(rgb).all()):
            raise ConfigError("observation image holds NaN or inf")
        out = render_tensors(means, quats, appearance.scales, appearance.opacities, appearance.sh, cam, backend=cfg.backend)
        err = ((out.rgb - rgb.to(out.rgb.device)) ** 2).sum(dim=-1)
        if obs.mask is not None:
            mask = torch.as_tensor(obs.mask)
            if tuple(mask.shape) != (cam.height, cam.width):
                raise ConfigError(f"observation mask {tuple(mask.shape)} does not match its camera ({cam.height}, {cam.width})")
            err = err * mask.to(device=err.device, dtype=err.dtype)
        loss = err.sum() / len(observations)
        loss.backward()
        total += float(loss.detach())
    if means.grad is None:  # no Gaussian in any view: the images say nothing about the bodies
        g = np.zeros((len(binding), 3))
    else:
        g = means.grad.detach().cpu().numpy().astype(np.float64)
    f = -cfg.gain * g
    forces = np.zeros((binding.num_particles, 3))
    np.add.at(forces, binding.particle, f)
    norm = np.linalg.norm(forces, axis=1, keepdims=True)
    forces *= np.minimum(1.0, cfg.max_force / np.maximum(norm, 1e-12))
    return forces + drag_forces(world, cfg.damping, dt), total


def drag_forces(world: World, damping: float, dt: float | None = None, reference: np.ndarray | None = None) -> np.ndarray:
    """(P, 3) the drag of :func:`visual_forces` for the world's current velocities: held over
    ``dt`` it removes the share ``1 - exp(-damping dt)`` of each particle's velocity (``dt``
    None: ``-damping m v``), or of its difference from ``reference`` (B, 3), a linear velocity
    per body the motion is drawn towards instead of rest (the velocity the cameras see).
    Recompute it for every step the forces are held over: a drag from the velocity of the first
    of several steps removes that share again and again."""
    rate = damping if dt is None else -math.expm1(-damping * dt) / dt
    v = world.particle_velocities()
    if reference is not None:
        v = v - np.concatenate([np.repeat(np.asarray(reference[i], float)[None], bd.stop - bd.start, axis=0)
                                for i, bd in enumerate(world.bodies)])
    return -rate * world.particle_masses()[:, None] * v
