"""A parallel-jaw gripper as boxes, in the grasp frame.

Grasp frame (as GraspNet and most ROS grasp planners): origin at the tool centre point midway
between the fingertips' pads, x the closing axis (finger to finger), z the approach direction
(from the gripper into the object), y = z cross x.  Each finger is a box spanning
``|x| in [opening/2, opening/2 + finger_thickness]``, ``|y| <= finger_width/2`` and
``z in [-finger_length/2, finger_length/2]``; the palm is a box behind the fingers,
``z in [-finger_length/2 - palm_depth, -finger_length/2]`` across both fingers.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class ParallelGripper(BaseModel):
    """Dimensions (m) of a parallel-jaw gripper; defaults near a Franka Hand's."""

    model_config = ConfigDict(extra="forbid")

    max_opening: float = Field(0.08, gt=0.0, description="widest the fingers open")
    finger_length: float = Field(0.045, gt=0.0, description="pad length along the approach")
    finger_thickness: float = Field(0.012, gt=0.0, description="finger size along the closing axis")
    finger_width: float = Field(0.02, gt=0.0, description="finger size along y")
    palm_depth: float = Field(0.03, gt=0.0, description="palm size along the approach, behind the fingers")
    clearance: float = Field(0.004, ge=0.0, description="each finger opens this far beyond its contact (m)")

    def boxes(self, opening: float) -> np.ndarray:
        """(3, 2, 3) min/max corners of the left finger, right finger and palm in the grasp frame."""
        o, t, w, L, p = opening / 2, self.finger_thickness, self.finger_width / 2, self.finger_length / 2, self.palm_depth
        return np.array([
            [[-o - t, -w, -L], [-o, w, L]],
            [[o, -w, -L], [o + t, w, L]],
            [[-o - t, -w, -L - p], [o + t, w, -L]],
        ])

    def corners(self, opening: float) -> np.ndarray:
        """(24, 3) corners of the three boxes in the grasp frame."""
        b = self.boxes(opening)
        idx = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        return np.concatenate([np.stack([box[idx[:, 0], 0], box[idx[:, 1], 1], box[idx[:, 2], 2]], axis=1) for box in b])

    def points_inside(self, points_grasp: np.ndarray, opening: float, margin: float = 0.0) -> np.ndarray:
        """(N,) bool: which points (grasp frame) lie inside a finger or the palm (boxes grown by ``margin``)."""
        inside = np.zeros(len(points_grasp), dtype=bool)
        for lo, hi in self.boxes(opening):
            inside |= np.all((points_grasp >= lo - margin) & (points_grasp <= hi + margin), axis=1)
        return inside
