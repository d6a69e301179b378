"""Physics bound to Gaussians: rigid objects as particle systems on Newton (Warp), Gaussians that
ride on them, and visual forces that pull the simulation towards what the cameras see.

* :mod:`bodies`: particle centres filling an object (from its points, or a box);
* :mod:`world`: :class:`World` (model / state / control on Newton's XPBD solver), ``World.step``;
* :mod:`binding`: :class:`GaussianBinding`, Gaussians posed by their bodies;
* :mod:`visual_forces`: image error -> particle forces;
* :mod:`prediction`: :func:`rollout`, the world ahead without visual forces (and "what if" pushes).
"""

from ros_gs.physics.binding import GaussianBinding
from ros_gs.physics.bodies import box_particles, voxel_particles
from ros_gs.physics.visual_forces import Appearance, Observation, VisualForceConfig, drag_forces, visual_forces
from ros_gs.physics.prediction import Push, Rollout, rollout
from ros_gs.physics.world import World, WorldConfig, WorldState

__all__ = ["Appearance", "GaussianBinding", "Observation", "Push", "Rollout", "VisualForceConfig", "World", "WorldConfig",
           "WorldState", "box_particles", "drag_forces", "rollout", "visual_forces", "voxel_particles"]
