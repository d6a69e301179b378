"""The object scene a grasp planner or a physics world starts from: the support, the objects
found in the views and their descriptions as one reference camera shows them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros_gs.objects.description import ObjectDescription, describe, describe_scene
from ros_gs.objects.discovery import FoundObject, ObjectFinder, View
from ros_gs.objects.support import SupportPlane


@dataclass
class ObjectScene:
    support: SupportPlane
    objects: list[FoundObject]
    descriptions: list[ObjectDescription]


def find_objects(finder: ObjectFinder, views: list[View], up: np.ndarray | None = None, reference: int = 0) -> ObjectScene:
    """Objects in ``views`` (one time step) with stable ids, described as ``views[reference]``
    shows them (left/right and front/back are that camera's)."""
    objects = finder.update(views, up)
    descs = [describe(o.id, o.points, o.lab, finder.support, o.label) for o in objects]
    T = np.asarray(views[reference].T_world_cam, dtype=np.float64)
    describe_scene(descs, finder.support, T[:3, 3], T[:3, 0], T[:3, 1])
    return ObjectScene(finder.support, objects, descs)
