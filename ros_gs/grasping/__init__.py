"""Language-queried grasps: a text query picks an object by its label, antipodal sampling on the
object's points gives ranked, collision-free parallel-jaw grasps (:class:`GraspPlanner`)."""

from ros_gs.grasping.antipodal import AntipodalConfig, Grasp
from ros_gs.grasping.gripper import ParallelGripper
from ros_gs.grasping.planner import GraspPlanner, GraspPlannerConfig, GraspResult, SceneObject

__all__ = ["AntipodalConfig", "Grasp", "GraspPlanner", "GraspPlannerConfig", "GraspResult", "ParallelGripper", "SceneObject"]
