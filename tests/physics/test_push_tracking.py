"""Visual forces keep our simulation on MuJoCo's push, which our world does not model."""

from __future__ import annotations

import numpy as np

from push_tracking import PUSH_FORCES, record_push, track


def test_visual_forces_track_a_push_the_world_does_not_model() -> None:
    spec, stamps, frames, gts = record_push()
    assert [o.name for o in spec.objects] == ["red_box", "blue_cylinder"]
    moved = np.linalg.norm(gts[stamps[-1]].objects["red_box"][:3, 3] - gts[stamps[0]].objects["red_box"][:3, 3])
    assert moved > 0.15  # MuJoCo's paddle pushes the box across the table
    blind = track(spec, stamps, frames, gts, None)
    assert blind[-1, 0] > 0.8 * moved  # without visual forces our box stays behind
    err = track(spec, stamps, frames, gts, PUSH_FORCES)
    print(f"box error mean {err[:, 0].mean() * 100:.2f} cm, max {err[:, 0].max() * 100:.2f} cm; "
          f"cylinder mean {err[:, 1].mean() * 100:.2f} cm (blind: box {blind[-1, 0] * 100:.1f} cm)")
    assert err[:, 0].mean() < 0.015 and err[:, 0].max() < 0.03 and err[-1, 0] < 0.015
    assert err[:, 1].mean() < 0.015 and err[:, 1].max() < 0.03
