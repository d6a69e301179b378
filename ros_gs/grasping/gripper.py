"""A parallel-jaw gripper as boxes, in the grasp frame, with presets of real grippers.

Grasp frame (as GraspNet and most ROS grasp planners): origin at the tool centre point midway
between the fingertips' pads, x the closing axis (finger to finger), z the approach direction
(from the gripper into the object), y = z cross x.  Each finger is a box spanning
``|x| in [opening/2, opening/2 + finger_thickness]``, ``|y| <= finger_width/2`` and
``z in [-finger_length/2, finger_length/2]``; the palm is a box behind the fingers,
``z in [-finger_length/2 - palm_depth, -finger_length/2]`` across both fingers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ros_gs.errors import ConfigError

#: the preset a gripper with no ``preset`` takes its unset dimensions from
DEFAULT_PRESET = "franka"
#: the dimensions a preset sets (every field but ``preset``)
DIMENSIONS = ("max_opening", "finger_length", "finger_thickness", "finger_width", "palm_depth", "clearance")


class ParallelGripper(BaseModel):
    """Dimensions (m) of a parallel-jaw gripper, as a named preset and/or explicit numbers.

    Every dimension left unset (or ``None``, YAML ``null``) comes from the preset named by
    ``preset`` (:data:`GRIPPER_PRESETS`; none named: ``"franka"``); dimensions given explicitly
    override the preset's.  So ``ParallelGripper()`` is the Franka Hand as before,
    ``ParallelGripper(preset="robotiq_2f85")`` or ``ParallelGripper.preset("robotiq_2f85")`` a
    Robotiq 2F-85, ``ParallelGripper(preset="robotiq_2f85", finger_length=0.05)`` a 2F-85 with
    longer fingertips, and a ROS parameter file says ``gripper: {preset: robotiq_2f85}``
    (flat: ``planner.gripper.preset: robotiq_2f85``).  Why unset rather than Franka numbers as
    the fields' defaults: rclpy declares every field with its default and hands all of them
    back, so a numeric default could not be told from a number the file gave, and would
    silently override the preset; an unset default is declared without a value.  After
    validation every dimension is a number and ``preset`` holds the preset's name.

    ``ParallelGripper.preset(name)`` (on the class) builds a preset; ``gripper.preset`` (on an
    instance) is the name of the preset its unset dimensions came from.  An unknown name is a
    :class:`~ros_gs.errors.ConfigError` listing the known ones (inside a model validation, a
    pydantic ``ValidationError`` with that message, which parameter loading turns into one
    ``ConfigError``).  Add a gripper with ``GRIPPER_PRESETS["mine"] = ParallelGripper(...)``.
    """

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="named gripper (franka, robotiq_2f85) whose dimensions fill those left null; null: franka")
    max_opening: float = Field(None, gt=0.0, description="widest the fingers open (m); null: the preset's")
    finger_length: float = Field(None, gt=0.0, description="pad length along the approach (m); null: the preset's")
    finger_thickness: float = Field(None, gt=0.0, description="finger size along the closing axis (m); null: the preset's")
    finger_width: float = Field(None, gt=0.0, description="finger size along y (m); null: the preset's")
    palm_depth: float = Field(None, gt=0.0, description="palm size along the approach, behind the fingers (m); null: the preset's")
    clearance: float = Field(None, ge=0.0, description="each finger opens this far beyond its contact (m); null: the preset's")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # a ParallelGripper already (validated when built)
        name = data.get("preset")
        name = DEFAULT_PRESET if name is None else name
        if not isinstance(name, str) or name not in GRIPPER_PRESETS:
            raise ConfigError(f"unknown gripper preset {name!r}; known: {', '.join(sorted(GRIPPER_PRESETS))}")
        base = GRIPPER_PRESETS[name]
        filled = {f: getattr(base, f) for f in DIMENSIONS}
        filled.update({k: v for k, v in data.items() if v is not None})
        filled["preset"] = name
        return filled

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


def _preset(cls: type[ParallelGripper], name: str) -> ParallelGripper:
    """The gripper preset ``name`` (a fresh copy; :data:`GRIPPER_PRESETS` holds the names)."""
    if not isinstance(name, str) or name not in GRIPPER_PRESETS:
        raise ConfigError(f"unknown gripper preset {name!r}; known: {', '.join(sorted(GRIPPER_PRESETS))}")
    return cls(preset=name)


# set after the class body: inside it, ``preset`` is the field's name (pydantic keeps field
# values in the instance's __dict__, which wins over this non-data descriptor on instances)
ParallelGripper.preset = classmethod(_preset)  # type: ignore[assignment,method-assign]

#: Named grippers (m).  Built without validation (the validator reads this table).
GRIPPER_PRESETS: dict[str, ParallelGripper] = {
    # Franka Hand, as the planner always had it: 80 mm stroke, fingertips ~20 mm wide and ~45 mm
    # of pad along the approach, ~12 mm thick fingers, a shallow palm (the hand's body)
    "franka": ParallelGripper.model_construct(
        preset="franka", max_opening=0.08, finger_length=0.045, finger_thickness=0.012, finger_width=0.02,
        palm_depth=0.03, clearance=0.004),
    # Robotiq 2F-85, in its parallel (fingertip) grip: 85 mm stroke (Robotiq's datasheet); the
    # fingertip pad is 22 mm wide and 37.5 mm long (MuJoCo Menagerie's robotiq_2f85, from
    # Robotiq's CAD: two pad boxes 22 x 8 x 18.75 mm each); ~10 mm thick with the silicone and
    # the follower link behind the pad; from the pads' back edge to the gripper body is ~50 mm of
    # four-bar linkage, modelled as a solid palm (conservative: the linkages leave the middle
    # open)
    "robotiq_2f85": ParallelGripper.model_construct(
        preset="robotiq_2f85", max_opening=0.085, finger_length=0.0375, finger_thickness=0.010, finger_width=0.022,
        palm_depth=0.05, clearance=0.004),
}
