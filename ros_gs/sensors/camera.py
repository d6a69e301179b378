"""Pinhole camera model from ``sensor_msgs/CameraInfo``: projection, back-projection, distortion.

Conventions:

* A :class:`PinholeCamera` describes the image **as delivered**: ``camera_from_info`` folds
  the CameraInfo's ROI and binning into ``K``/``P`` and ``width``/``height`` (as
  image_geometry does), so no consumer has to know about them.  ROI and binning are
  given in full-resolution sensor pixels (CameraInfo.msg): the ROI offset is subtracted
  from ``cx, cy`` and then ``fx, fy, cx, cy`` (and ``P``'s Tx, Ty) are divided by the
  binning.  (For ``P`` the same shift is applied, which is exact for rectified images.)
* Pixel coordinates: ``u`` is the column, ``v`` the row; the **centre** of pixel
  ``(u, v)`` (integer array indices) is at ``(u, v)``, i.e. OpenCV/ROS.  A point
  ``(x, y, z)`` in the optical frame (z forward, x right, y down) lies at
  ``u = fx * x / z + cx``; conversely ``x = (u - cx) / fx * z``.
* Distortion models are OpenCV's: ``plumb_bob`` (k1, k2, p1, p2, k3 radial-tangential),
  ``rational_polynomial`` (k1, k2, p1, p2, k3, k4, k5, k6) and ``equidistant`` (fisheye
  k1..k4 on the angle theta).  ``project``/``backproject`` use the ideal pinhole (distortion
  ignored: depth images are normally registered/rectified); use ``distort_points`` /
  ``undistort_points`` to move between raw and ideal pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ros_gs.errors import SensorDataError
from ros_gs.sensors._util import as_int, float_array
from ros_gs.sensors.stamps import Make, make_header

#: Distortion models and how many coefficients each uses.
DISTORTION_MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}



#: focal lengths a real camera can have, in pixels (a 1 px focal length is a 90-degree field of
#: view over 2 pixels; 1e-30 made the mapper's voxel sizes underflow)
MIN_FOCAL_PX, MAX_FOCAL_PX = 1.0, 1e7

@dataclass(eq=False)  # fields are arrays: compare them explicitly
class PinholeCamera:
    """Intrinsics of one delivered image (see module docstring)."""

    width: int
    height: int
    K: np.ndarray  # 3x3
    distortion_model: str = ""
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    P: np.ndarray | None = None  # 3x4; None -> [K | 0]
    frame_id: str = ""
    R: np.ndarray = field(default_factory=lambda: np.eye(3))  # rectification rotation

    def __post_init__(self) -> None:
        self.width = as_int(self.width, "camera width")
        self.height = as_int(self.height, "camera height")
        if self.width == 0 or self.height == 0:
            raise SensorDataError(f"camera size must be non-zero, got {self.width}x{self.height}")
        self.K = float_array(self.K, (3, 3), "camera K")
        if not np.any(self.K):
            raise SensorDataError("camera K is all zeros (camera not calibrated)")
        if not (MIN_FOCAL_PX <= self.K[0, 0] <= MAX_FOCAL_PX and MIN_FOCAL_PX <= self.K[1, 1] <= MAX_FOCAL_PX):
            raise SensorDataError(f"camera K needs fx, fy in [{MIN_FOCAL_PX}, {MAX_FOCAL_PX:.0e}] pixels, "
                                  f"got fx={self.K[0, 0]}, fy={self.K[1, 1]}")
        self.D = float_array(self.D, (np.size(self.D),), "camera D")
        if self.P is None or not np.any(np.asarray(self.P, dtype=float)):
            self.P = np.hstack([self.K, np.zeros((3, 1))])
        self.P = float_array(self.P, (3, 4), "camera P")
        self.R = float_array(self.R, (3, 3), "camera R")
        if not isinstance(self.distortion_model, str):
            raise SensorDataError(f"distortion model must be a string, got {self.distortion_model!r}")

    # -- intrinsics ----------------------------------------------------------------------------
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def has_distortion(self) -> bool:
        """True if raw pixels differ from ideal pinhole pixels.

        A fisheye (equidistant) lens is never a pinhole, even with all-zero coefficients.
        """
        return self.distortion_model == "equidistant" or bool(np.any(self.D))

    # -- pinhole -------------------------------------------------------------------------------
    def project(self, points_cam: np.ndarray, distort: bool = False) -> np.ndarray:
        """``N x 3`` optical-frame points -> ``N x 2`` pixels ``(u, v)``.

        Points with ``z <= 0`` (behind the camera) or non-finite coordinates give NaN.
        With ``distort=True`` the pixels are those of the raw (distorted) image.
        """
        pts = _points(points_cam, 3, "points_cam")
        z = pts[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = pts[:, :2] / z[:, None]
        xy[~((z > 0) & np.isfinite(pts).all(axis=1))] = np.nan
        if distort:
            xy = self._distort(xy)
        return self._to_pixels(xy)

    def backproject(self, depth: np.ndarray) -> np.ndarray:
        """``H x W`` depth in metres -> ``H x W x 3`` optical-frame points (NaN depth -> NaN point).

        Pixel ``(u, v)`` = array index ``[v, u]``: ``x = (u - cx) / fx * z``, ``y = (v - cy) / fy * z``.
        """
        depth = np.asarray(depth)
        if depth.shape != (self.height, self.width):
            raise SensorDataError(f"depth shape {depth.shape} does not match camera {self.height}x{self.width} (HxW)")
        dtype = depth.dtype if depth.dtype in (np.float32, np.float64) else np.float32
        z = depth.astype(dtype, copy=False)
        u = ((np.arange(self.width) - self.cx) / self.fx).astype(dtype)
        v = ((np.arange(self.height) - self.cy) / self.fy).astype(dtype)
        out = np.empty((self.height, self.width, 3), dtype=dtype)
        out[..., 0] = u[None, :] * z
        out[..., 1] = v[:, None] * z
        out[..., 2] = z
        return out

    # -- distortion ----------------------------------------------------------------------------
    def distort_points(self, pixels: np.ndarray) -> np.ndarray:
        """Ideal pinhole pixels (``N x 2``, same K) -> raw distorted pixels."""
        return self._to_pixels(self._distort(self._to_normalized(pixels)))

    def undistort_points(self, pixels: np.ndarray, normalized: bool = False, iterations: int = 30) -> np.ndarray:
        """Raw distorted pixels (``N x 2``) -> ideal pinhole pixels (same K) or, with
        ``normalized=True``, normalised coordinates ``(x/z, y/z)``.

        The inverse is iterative (Newton); points where it does not converge to 1e-9 in
        normalised units (far outside the calibrated field) are NaN.
        """
        xy_d = self._to_normalized(pixels)
        model = self._model()
        if model is None:
            xy = xy_d
        elif model == "equidistant":
            xy = _undistort_equidistant(xy_d, self._coeffs(), iterations)
        else:
            xy = _undistort_newton(xy_d, lambda p: self._distort(p), iterations)
        if model is not None:
            with np.errstate(invalid="ignore"):
                bad = ~(np.abs(self._distort(xy) - xy_d).max(axis=1) < 1e-9)
            xy[bad] = np.nan
        return xy if normalized else self._to_pixels(xy)

    def _model(self) -> str | None:
        """The distortion model to apply, or None for none (no coefficients)."""
        if not self.has_distortion:
            return None
        model = self.distortion_model
        if model not in DISTORTION_MODELS:
            raise SensorDataError(
                f"distortion model {model!r} is not supported; supported: {', '.join(DISTORTION_MODELS)}"
            )
        return model

    def _coeffs(self) -> np.ndarray:
        n = DISTORTION_MODELS[self.distortion_model]
        if self.D.size > n and np.any(self.D[n:]):
            raise SensorDataError(f"{self.distortion_model} takes {n} coefficients, D has {self.D.size}: {self.D}")
        out = np.zeros(n)
        out[: min(n, self.D.size)] = self.D[:n]
        return out

    def _distort(self, xy: np.ndarray) -> np.ndarray:
        model = self._model()
        if model is None:
            return xy.copy()
        c = self._coeffs()
        if model == "equidistant":
            return _distort_equidistant(xy, c)
        return _distort_radtan(xy, c)

    def _to_normalized(self, pixels: np.ndarray) -> np.ndarray:
        uv = _points(pixels, 2, "pixels")
        return np.stack([(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy], axis=1)

    def _to_pixels(self, xy: np.ndarray) -> np.ndarray:
        return np.stack([xy[:, 0] * self.fx + self.cx, xy[:, 1] * self.fy + self.cy], axis=1)


def _points(values: Any, dims: int, what: str) -> np.ndarray:
    pts = np.array(values, dtype=np.float64)
    if pts.ndim == 1 and pts.size == dims:
        pts = pts[None, :]
    if pts.ndim != 2 or pts.shape[1] != dims:
        raise SensorDataError(f"{what} must be N x {dims}, got shape {pts.shape}")
    return pts


def _distort_radtan(xy: np.ndarray, c: np.ndarray) -> np.ndarray:
    """OpenCV radial-tangential (plumb_bob; rational_polynomial with 8 coefficients)."""
    k1, k2, p1, p2, k3 = c[:5]
    k4, k5, k6 = c[5:8] if c.size == 8 else (0.0, 0.0, 0.0)
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=1)


def _distort_equidistant(xy: np.ndarray, c: np.ndarray) -> np.ndarray:
    """OpenCV fisheye: theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)."""
    r = np.hypot(xy[:, 0], xy[:, 1])
    theta = np.arctan(r)
    t2 = theta * theta
    theta_d = theta * (1 + t2 * (c[0] + t2 * (c[1] + t2 * (c[2] + t2 * c[3]))))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(r > 1e-12, theta_d / r, 1.0)
    return xy * scale[:, None]


def _undistort_newton(xy_d: np.ndarray, distort, iterations: int) -> np.ndarray:
    """Solve distort(xy) = xy_d per point by Newton with a central-difference Jacobian."""
    xy = xy_d.copy()
    eps = 1e-7
    for _ in range(iterations):
        f = distort(xy) - xy_d
        if not np.any(np.abs(f) > 1e-14):
            break
        jx = (distort(xy + [eps, 0]) - distort(xy - [eps, 0])) / (2 * eps)
        jy = (distort(xy + [0, eps]) - distort(xy - [0, eps])) / (2 * eps)
        a, b, c, d = jx[:, 0], jy[:, 0], jx[:, 1], jy[:, 1]
        det = a * d - b * c
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = (d * f[:, 0] - b * f[:, 1]) / det
            dy = (-c * f[:, 0] + a * f[:, 1]) / det
        step = np.stack([dx, dy], axis=1)
        step[~np.isfinite(step)] = 0.0
        xy = xy - step
    return xy


def _undistort_equidistant(xy_d: np.ndarray, c: np.ndarray, iterations: int) -> np.ndarray:
    """Invert the fisheye model: Newton on theta for each theta_d (as OpenCV does)."""
    theta_d = np.hypot(xy_d[:, 0], xy_d[:, 1])
    theta = theta_d.copy()
    for _ in range(iterations):
        t2 = theta * theta
        f = theta * (1 + t2 * (c[0] + t2 * (c[1] + t2 * (c[2] + t2 * c[3])))) - theta_d
        df = 1 + t2 * (3 * c[0] + t2 * (5 * c[1] + t2 * (7 * c[2] + 9 * t2 * c[3])))
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(df != 0, f / df, 0.0)
        theta = theta - step
        if not np.any(np.abs(step) > 1e-15):
            break
    theta[(theta < 0) | (theta >= np.pi / 2)] = np.nan  # beyond 90 degrees: not a pinhole ray
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(theta_d > 1e-12, np.tan(theta) / theta_d, 1.0)
    return xy_d * scale[:, None]


def camera_from_info(msg: Any) -> PinholeCamera:
    """A :class:`PinholeCamera` for the image delivered with this ``sensor_msgs/CameraInfo``."""
    width = as_int(msg.width, "CameraInfo width")
    height = as_int(msg.height, "CameraInfo height")
    if width == 0 or height == 0:
        raise SensorDataError(f"CameraInfo size must be non-zero, got {width}x{height} (uncalibrated camera?)")
    K = float_array(msg.k, (3, 3), "CameraInfo k")
    P = float_array(msg.p, (3, 4), "CameraInfo p")
    R = float_array(msg.r, (3, 3), "CameraInfo r")
    D = float_array(msg.d, (len(msg.d),), "CameraInfo d")
    if not np.any(R):
        R = np.eye(3)
    if not np.any(K):
        raise SensorDataError("CameraInfo k is all zeros (camera not calibrated)")
    if not np.any(P):
        P = np.hstack([K, np.zeros((3, 1))])
    bin_x = max(as_int(msg.binning_x, "CameraInfo binning_x"), 1)
    bin_y = max(as_int(msg.binning_y, "CameraInfo binning_y"), 1)
    roi = msg.roi
    x_off, y_off = as_int(roi.x_offset, "roi.x_offset"), as_int(roi.y_offset, "roi.y_offset")
    roi_w, roi_h = as_int(roi.width, "roi.width"), as_int(roi.height, "roi.height")
    if roi_w == 0 and roi_h == 0:  # all-zero ROI means the full image
        roi_w, roi_h = width, height
    if roi_w == 0 or roi_h == 0 or x_off + roi_w > width or y_off + roi_h > height:
        raise SensorDataError(
            f"CameraInfo roi (x={x_off}, y={y_off}, {roi_w}x{roi_h}) does not fit the {width}x{height} image"
        )
    out_w, out_h = roi_w // bin_x, roi_h // bin_y
    if out_w == 0 or out_h == 0:
        raise SensorDataError(f"binning {bin_x}x{bin_y} leaves no pixels of the {roi_w}x{roi_h} image")
    for M in (K, P):  # shift the origin to the ROI corner, then scale by the binning
        M[0] -= x_off * M[2]
        M[1] -= y_off * M[2]
        M[0] /= bin_x
        M[1] /= bin_y
    return PinholeCamera(
        width=out_w,
        height=out_h,
        K=K,
        distortion_model=str(msg.distortion_model),
        D=D,
        P=P,
        frame_id=str(msg.header.frame_id),
        R=R,
    )


def camera_to_info(make: Make, cam: PinholeCamera, stamp_ns: int = 0) -> Any:
    """A ``sensor_msgs/CameraInfo`` describing ``cam`` directly (no binning, full-image ROI)."""
    return make(
        "sensor_msgs/msg/CameraInfo",
        header=make_header(make, stamp_ns, cam.frame_id),
        height=cam.height,
        width=cam.width,
        distortion_model=cam.distortion_model,
        d=np.asarray(cam.D, dtype=np.float64).reshape(-1),
        k=np.asarray(cam.K, dtype=np.float64).reshape(-1),
        r=np.asarray(cam.R, dtype=np.float64).reshape(-1),
        p=np.asarray(cam.P, dtype=np.float64).reshape(-1),
        binning_x=0,
        binning_y=0,
    )
