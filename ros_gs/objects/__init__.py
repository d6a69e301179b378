"""Objects from sensor data without simulator masks: the support plane, instances by geometry and
colour (or an upstream detector's masks), stable ids, attribute descriptions (colour, size,
shape, position) and text queries grounded in them.

``find_objects(ObjectFinder(config), views) -> ObjectScene``; ``ground(query, descriptions,
colours) -> Grounding``.
"""

from ros_gs.objects.description import ObjectDescription, describe, describe_scene
from ros_gs.objects.discovery import FoundObject, ObjectFinder, ObjectFinderConfig, View
from ros_gs.objects.grounding import Grounding, ground
from ros_gs.objects.scene import ObjectScene, find_objects
from ros_gs.objects.segmentation import SegmentationConfig, segment_view
from ros_gs.objects.support import SupportConfig, SupportPlane, fit_support

__all__ = ["FoundObject", "Grounding", "ObjectDescription", "ObjectFinder", "ObjectFinderConfig", "ObjectScene",
           "SegmentationConfig", "SupportConfig", "SupportPlane", "View", "describe", "describe_scene", "find_objects",
           "fit_support", "ground", "segment_view"]
