"""The closed-form quaternion helpers against scipy's Rotation (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from ros_gs.sensors.quaternion import quat_conj, quat_mul, quat_rotate, quat_slerp, quat_to_matrix

RNG = np.random.default_rng(7)
QUATS = Rotation.random(20, random_state=3).as_quat()


@pytest.mark.parametrize("i", range(0, 20, 2))
def test_against_scipy(i: int) -> None:
    a, b = QUATS[i], QUATS[i + 1]
    ra, rb = Rotation.from_quat(a), Rotation.from_quat(b)
    assert np.allclose(quat_to_matrix(a), ra.as_matrix())
    assert np.allclose(quat_to_matrix(quat_mul(a, b)), (ra * rb).as_matrix())
    assert np.allclose(quat_to_matrix(quat_conj(a)), ra.inv().as_matrix())
    v = RNG.normal(size=(5, 3))
    assert np.allclose(quat_rotate(a, v), ra.apply(v))
    for alpha in (0.0, 0.3, 0.5, 1.0):
        want = Slerp([0, 1], Rotation.from_quat([a, b]))([alpha]).as_matrix()[0]
        assert np.allclose(quat_to_matrix(quat_slerp(a, b, alpha)), want, atol=1e-9)


def test_slerp_nearly_equal_and_opposite_sign() -> None:
    a = QUATS[0]
    b = Rotation.from_rotvec([1e-6, 0, 0]) * Rotation.from_quat(a)
    mid = quat_slerp(a, -b.as_quat(), 0.5)  # -q is the same rotation: shorter arc is taken
    assert np.isclose(np.linalg.norm(mid), 1.0)
    assert (Rotation.from_quat(mid).inv() * Rotation.from_quat(a)).magnitude() < 1e-6
