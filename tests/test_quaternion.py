"""The closed-form quaternion helpers against scipy's Rotation (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from ros_gs.quaternion import quat_conj, quat_mul, quat_rotate, quat_slerp, quat_to_matrix

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


def test_the_gaussians_wxyz_helpers_agree_with_scipy() -> None:
    """The batched (w, x, y, z) helpers the Gaussians use: matrix -> quaternion, product and
    quaternion -> matrix, each against scipy (which stores x, y, z, w)."""
    import torch

    from ros_gs.quaternion import matrix_to_wxyz, quat_to_rotmat, wxyz_mul

    a, b = Rotation.random(50, random_state=1), Rotation.random(50, random_state=2)
    qa = matrix_to_wxyz(a.as_matrix())
    assert np.allclose(np.abs((qa[:, [1, 2, 3, 0]] * a.as_quat()).sum(axis=1)), 1.0)  # the same rotation (up to sign)
    qb = torch.as_tensor(matrix_to_wxyz(b.as_matrix()))
    prod = wxyz_mul(torch.as_tensor(qa), qb).numpy()
    assert np.allclose(Rotation.from_quat(prod[:, [1, 2, 3, 0]]).as_matrix(), (a * b).as_matrix(), atol=1e-12)
    scaled = torch.as_tensor(qa * 3.0, dtype=torch.float64)  # any norm: normalised first
    assert np.allclose(quat_to_rotmat(scaled).numpy(), a.as_matrix(), atol=1e-12)
