"""Rendering of the Gaussian map (CPU rasteriser in C++; gsplat on CUDA).

Conventions (gsplat's defaults; every backend follows them):

* Camera: OpenCV optical frame (x right, y down, z forward); ``viewmat`` is the 4x4
  world-to-camera transform; pinhole ``K``; the centre of pixel (row i, column j) is at
  ``(j + 0.5, i + 0.5)``.  Gaussians whose camera depth is < ``near`` (0.01) or > ``far``
  (1e10) are culled.
* Gaussians: means (N, 3) world; quats (N, 4) as (w, x, y, z), normalised internally; scales
  (N, 3) > 0 and opacities (N,) in [0, 1] already activated; sh (N, K, 3) with K >= (d+1)^2.
* EWA projection: ``Sigma = R S S^T R^T``; ``Sigma2D = J W Sigma W^T J^T + 0.3 I`` with the
  pinhole Jacobian at the camera-space mean, x/z and y/z clamped to 1.3x the field of view
  (gsplat); no opacity compensation.
* Radii (gsplat 1.5.3's opacity-aware, per-axis rule): ``extend = min(3.33, sqrt(2 ln(255 o)))``
  (the distance in standard deviations at which ``o exp(-d^2/2)`` falls to 1/255),
  ``radius_x = ceil(extend sqrt(Sigma2D_xx))``, ``radius_y = ceil(extend sqrt(Sigma2D_yy))``;
  Gaussians with opacity < 1/255 or whose radius box misses the image are culled.
* Compositing on 16x16 tiles (a Gaussian reaches the pixels of the tiles its radius box
  ``[x - radius_x, x + radius_x] x [y - radius_y, y + radius_y]`` touches), front to back by camera depth of the mean: ``alpha = min(0.999, o exp(-sigma))``
  with ``sigma = 1/2 d^T Sigma2D^-1 d``, ``d`` = pixel centre - mean2D; alpha < 1/255 is
  skipped; a pixel stops before the Gaussian that would bring T to <= 1e-4.
* Colour: SH of degree 0..3 in gsplat's basis evaluated at the unit direction from the camera
  centre to the mean, then ``max(value + 0.5, 0)``; degree 0: ``max(0.5 + C0 f_dc, 0)``.
* Outputs: rgb = C + T_final * background (black by default); alpha = 1 - T_final;
  depth = sum w_i z_i / alpha (0 where alpha = 0); median depth = depth of the Gaussian where
  T crosses 0.5 (0 if it never does); features composited like colour without background.

Modules, one per stage: :mod:`camera`, :mod:`projection`, :mod:`sh`, :mod:`rasterize_cpu`
(C++ forward/backward, ``csrc/``), :mod:`reference` (brute force, tests), :mod:`api`.
"""

from ros_gs.render.api import BACKENDS, RenderOutput, render, render_tensors, select_backend
from ros_gs.render.camera import Camera
from ros_gs.render.projection import Projected, project_gaussians
from ros_gs.render.sh import eval_sh

__all__ = [
    "BACKENDS",
    "Camera",
    "Projected",
    "RenderOutput",
    "eval_sh",
    "project_gaussians",
    "render",
    "render_tensors",
    "select_backend",
]
