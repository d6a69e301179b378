"""The object tests use the MuJoCo gripper and tabletop recording of the grasp tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grasping"))
