"""camera: CameraInfo -> PinholeCamera (binning, ROI), projection and distortion."""

import math

import numpy as np
import pytest

from ros_gs.errors import SensorDataError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.camera import PinholeCamera, camera_from_info, camera_to_info
from ros_gs.sensors.stamps import make_header, stamp_to_ns

make = MessageFactory()
TYPE = "sensor_msgs/msg/CameraInfo"
K640 = [500.0, 0.0, 320.0, 0.0, 400.0, 240.0, 0.0, 0.0, 1.0]


def info(width=640, height=480, k=K640, p=None, d=(), model="plumb_bob", binning=(0, 0), roi=(0, 0, 0, 0)):
    if p is None:
        p = [k[0], k[1], k[2], -50.0, k[3], k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return make(
        TYPE,
        header=make_header(make, 7, "cam_optical"),
        width=width,
        height=height,
        k=np.array(k, float),
        p=np.array(p, float),
        d=np.array(d, float),
        r=np.eye(3).reshape(-1),
        distortion_model=model,
        binning_x=binning[0],
        binning_y=binning[1],
        roi=make("sensor_msgs/msg/RegionOfInterest", x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3]),
    )


def cam(model="", D=(), w=640, h=480):
    return PinholeCamera(width=w, height=h, K=np.array(K640).reshape(3, 3), distortion_model=model, D=np.array(D))


def test_plain_info():
    c = camera_from_info(info())
    assert (c.width, c.height, c.frame_id) == (640, 480, "cam_optical")
    assert (c.fx, c.fy, c.cx, c.cy) == (500.0, 400.0, 320.0, 240.0)
    assert c.P[0, 3] == -50.0


def test_binning_2_and_roi_hand_computed():
    c = camera_from_info(info(binning=(2, 2), roi=(100, 50, 400, 300)))
    assert (c.width, c.height) == (200, 150)
    assert (c.fx, c.fy) == (250.0, 200.0)
    assert (c.cx, c.cy) == ((320 - 100) / 2, (240 - 50) / 2)
    np.testing.assert_allclose(c.P, [[250, 0, 110, -25], [0, 200, 95, 0], [0, 0, 1, 0]])


def test_binning_x_only():
    c = camera_from_info(info(binning=(4, 1)))
    assert (c.width, c.height, c.fx, c.fy, c.cx, c.cy) == (160, 480, 125.0, 400.0, 80.0, 240.0)


def test_zero_p_and_r_default_from_k():
    msg = info(p=[0.0] * 12)
    msg.r = np.zeros(9)
    c = camera_from_info(msg)
    np.testing.assert_array_equal(c.P[:, :3], c.K)
    np.testing.assert_array_equal(c.R, np.eye(3))


def test_info_round_trip_through_cdr():
    c = camera_from_info(info(d=[0.1, -0.05, 0.001, 0.002, 0.01], binning=(2, 2), roi=(100, 50, 400, 300)))
    msg = camera_to_info(make, c, stamp_ns=123)
    back = make.deserialize(make.serialize(msg, TYPE), TYPE)
    assert stamp_to_ns(back.header.stamp) == 123 and back.binning_x == 0
    c2 = camera_from_info(back)
    assert (c2.width, c2.height, c2.distortion_model, c2.frame_id) == (200, 150, "plumb_bob", "cam_optical")
    for a, b in ((c.K, c2.K), (c.P, c2.P), (c.D, c2.D), (c.R, c2.R)):
        np.testing.assert_array_equal(a, b)


def test_project_hand_computed_and_behind_camera():
    c = cam()
    uv = c.project(np.array([[1.0, 2.0, 10.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [np.nan, 0, 1]]))
    np.testing.assert_allclose(uv[0], [500 * 0.1 + 320, 400 * 0.2 + 240])
    assert np.isnan(uv[1:]).all()


def test_backproject_convention_and_inverse_of_project():
    c = PinholeCamera(width=5, height=4, K=np.array([[2.0, 0, 2.0], [0, 4.0, 1.5], [0, 0, 1]]))
    depth = np.full((4, 5), 2.0, dtype=np.float32)
    depth[0, 0] = np.nan
    pts = c.backproject(depth)
    assert pts.shape == (4, 5, 3) and pts.dtype == np.float32
    # pixel (u=3, v=1) is array index [1, 3]: x = (3 - 2)/2 * 2 = 1, y = (1 - 1.5)/4 * 2 = -0.25
    np.testing.assert_allclose(pts[1, 3], [1.0, -0.25, 2.0])
    np.testing.assert_allclose(pts[2, 2], [0.0, 0.25, 2.0])  # u = cx: x = 0
    assert np.isnan(pts[0, 0]).all()
    uv = c.project(pts.reshape(-1, 3)[1:])
    v, u = np.mgrid[0:4, 0:5]
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], 1)[1:], atol=1e-5)


def test_backproject_wrong_shape():
    with pytest.raises(SensorDataError, match="does not match camera 480x640"):
        cam().backproject(np.ones((640, 480)))


def normalized_to_pixels(xy):
    xy = np.atleast_2d(xy)
    return np.stack([xy[:, 0] * 500 + 320, xy[:, 1] * 400 + 240], 1)


@pytest.mark.parametrize(
    "model, D, xy, expected",
    [
        ("plumb_bob", [0.1, 0, 0, 0, 0], [0.5, 0.0], [0.5 * 1.025, 0.0]),
        ("plumb_bob", [0, 0.2, 0, 0, 0.3], [0.0, 0.5], [0.0, 0.5 * (1 + 0.2 * 0.0625 + 0.3 * 0.015625)]),
        # p1: x' = x + 2 p1 x y,  y' = y + p1 (r2 + 2 y^2); x=0.2, y=0.3, r2=0.13
        ("plumb_bob", [0, 0, 0.01, 0, 0], [0.2, 0.3], [0.2012, 0.3031]),
        # p2: x' = x + p2 (r2 + 2 x^2), y' = y + 2 p2 x y
        ("plumb_bob", [0, 0, 0, 0.02, 0], [0.2, 0.3], [0.2042, 0.3024]),
        ("rational_polynomial", [0.1, 0, 0, 0, 0, 0.05, 0, 0], [0.5, 0.0], [0.5 * 1.025 / 1.0125, 0.0]),
        ("equidistant", [0.1, 0, 0, 0], [1.0, 0.0], [math.pi / 4 * (1 + 0.1 * (math.pi / 4) ** 2), 0.0]),
        ("equidistant", [0, 0, 0, 0.2], [0.0, 0.0], [0.0, 0.0]),
    ],
)
def test_distortion_hand_computed(model, D, xy, expected):
    c = cam(model, D)
    np.testing.assert_allclose(c.distort_points(normalized_to_pixels(xy)), normalized_to_pixels(expected), atol=1e-9)
    np.testing.assert_allclose(c.undistort_points(normalized_to_pixels(expected), normalized=True), [xy], atol=1e-9)


@pytest.mark.parametrize(
    "model, D",
    [
        ("plumb_bob", [-0.28, 0.07, 0.0005, -0.0003, -0.008]),
        ("plumb_bob", [0.12, -0.25, 0.001, 0.002, 0.1]),
        ("rational_polynomial", [0.5, -0.1, 0.001, -0.001, 0.01, 0.8, 0.05, 0.002]),
        ("equidistant", [-0.01, 0.02, -0.005, 0.001]),
        ("equidistant", [0.3, 0.1, -0.02, 0.005]),
    ],
)
def test_undistort_inverts_distort(model, D):
    c = cam(model, D)
    u, v = np.meshgrid(np.linspace(0, 639, 17), np.linspace(0, 479, 13))
    ideal = np.stack([u.ravel(), v.ravel()], 1)
    raw = c.distort_points(ideal)
    assert np.abs(raw - ideal).max() > 1.0  # the model really distorts
    np.testing.assert_allclose(c.undistort_points(raw), ideal, atol=1e-6)


def test_project_with_distortion_matches_distort_points():
    c = cam("plumb_bob", [0.1, -0.05, 0.001, 0.002, 0.01])
    pts = np.array([[0.3, -0.2, 2.0], [1.0, 1.0, 3.0]])
    np.testing.assert_allclose(c.project(pts, distort=True), c.distort_points(c.project(pts)))


def test_no_distortion_is_identity():
    c = cam("", [])
    uv = np.array([[10.0, 20.0], [600.0, 400.0]])
    np.testing.assert_allclose(c.undistort_points(uv), uv, rtol=1e-12)
    np.testing.assert_allclose(c.distort_points(uv), uv, rtol=1e-12)
    np.testing.assert_allclose(cam("plumb_bob", [0, 0, 0, 0, 0]).undistort_points(uv), uv, rtol=1e-12)


def test_equidistant_with_zero_coefficients_is_still_fisheye():
    c = cam("equidistant", [0, 0, 0, 0])
    assert c.has_distortion
    # theta_d = theta = atan(1): a ray at 45 degrees lands at r_d = pi/4, not 1
    np.testing.assert_allclose(c.distort_points(normalized_to_pixels([1.0, 0])), normalized_to_pixels([math.pi / 4, 0]))


def test_plumb_bob_with_four_coefficients():
    c = cam("plumb_bob", [0.1, 0, 0, 0])
    np.testing.assert_allclose(c.distort_points(normalized_to_pixels([0.5, 0])), normalized_to_pixels([0.5125, 0]))


def test_undistort_non_convergent_point_is_nan():
    c = cam("equidistant", [0.0, 0.0, 0.0, 0.0])
    far = normalized_to_pixels([2.0, 0.0])  # theta_d = 2 rad > 90 degrees: no pinhole ray
    assert np.isnan(c.undistort_points(far)).all()


@pytest.mark.parametrize(
    "model, D, words",
    [("fisheye_custom", [0.1], "not supported"), ("plumb_bob", [0.1, 0, 0, 0, 0, 0.3], "takes 5 coefficients")],
)
def test_distortion_rejects(model, D, words):
    with pytest.raises(SensorDataError, match=words):
        cam(model, D).undistort_points([[1.0, 2.0]])


def test_points_shape_rejected():
    with pytest.raises(SensorDataError, match="N x 3"):
        cam().project(np.ones((4, 2)))
    with pytest.raises(SensorDataError, match="N x 2"):
        cam().undistort_points(np.ones((4, 3)))


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(k=[0.0] * 9), "all zeros"),
        (dict(k=[500, 0, 320, 0, float("nan"), 240, 0, 0, 1]), "non-finite"),
        (dict(p=[1.0] * 11 + [float("inf")]), "non-finite"),
        (dict(d=[0.1, float("nan")]), "non-finite"),
        (dict(width=0), "non-zero"),
        (dict(height=0), "non-zero"),
        (dict(roi=(600, 0, 100, 100)), "roi"),
        (dict(roi=(0, 0, 100, 0)), "roi"),
        (dict(binning=(1000, 1)), "binning"),
        (dict(k=[-500, 0, 320, 0, 400, 240, 0, 0, 1]), "fx, fy in"),
        (dict(k=[1e-30, 0, 320, 0, 1e-30, 240, 0, 0, 1]), "fx, fy in"),  # made the mapper's voxel sizes underflow
    ],
)
def test_camera_from_info_rejects(kwargs, words):
    with pytest.raises(SensorDataError, match=words):
        camera_from_info(info(**kwargs))


def test_pinhole_camera_validates_directly():
    with pytest.raises(SensorDataError, match="3, 3"):
        PinholeCamera(width=2, height=2, K=np.eye(2))
    with pytest.raises(SensorDataError, match="non-zero"):
        PinholeCamera(width=0, height=2, K=np.eye(3))
