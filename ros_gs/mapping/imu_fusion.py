"""LiDAR-inertial fusion: IMU preintegration between registered scans in a fixed-lag factor graph.

``ImuFusion(config, T_sensor_imu)`` takes IMU samples (:meth:`ImuFusion.add_imu`) and the poses
LiDAR registration gives (:meth:`ImuFusion.update`); it answers, for any later time, the sensor
pose the IMU predicts from the last fused state (:meth:`ImuFusion.predict`: the ICP initial
guess) and the sensor's motion inside a scan (:meth:`ImuFusion.point_motion`: deskewing).

Why a factor graph (GTSAM, the library LIO-SAM and most LiDAR-inertial systems use) rather than
the gyroscope alone: the accelerometer says how the velocity changes between scans, so the
prediction survives turns, accelerations and scans that cannot be registered (a LiDAR outage, a
degenerate corridor), where a constant-velocity guess drifts quadratically; and the biases are
estimated instead of being integrated into the pose.

Per registered scan k: a state (pose ``X(k)`` of the IMU in the odometry world, velocity ``V(k)``,
bias ``B(k)``), an IMU factor with the samples between scans k-1 and k, a bias random-walk
factor, and a pose prior from the registration.  ``gtsam.BatchFixedLagSmoother`` marginalises
states older than ``lag_s``.  The gravity direction is one more variable (a ``Unit3`` shared by
all IMU factors, ``gtsam.ImuFactorWithGravityDirection``), kept out of marginalisation: the
alignment below cannot tell gravity from the accelerometer bias, the smoother can once the
sensor has turned.  Fixing it instead (``gravity_prior: 0``) left 0.15 m/s^2 of tilt on the
walkthrough, and 15.6 instead of 1.2 cm of drift over a 1 s LiDAR outage 8 s in.

Initialisation (why no "hold still" phase is needed): the odometry world is the first scan's
frame, not gravity-aligned, and the rig may already move.  From the first ``init_scans``
registered poses and the gravity-free preintegrated IMU deltas between them, the velocities and
the gravity vector solve a linear least-squares problem (the visual-inertial alignment of
VINS-Mono, without scale since LiDAR is metric):

    p_j = p_i + v_i dt + g dt^2 / 2 + R_i dP_ij,      v_j = v_i + g dt + R_i dV_ij

then g is rescaled to ``gravity`` m/s^2 and the velocities are solved again with it fixed (biases
are taken as zero here: the smoother estimates them, and refines g, afterwards).

No ROS imports: plain numpy/scipy/gtsam.
"""

from __future__ import annotations

from collections import deque

import gtsam
import numpy as np
from gtsam.symbol_shorthand import B, V, X
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.mapping.trajectory import interpolate_poses

__all__ = ["ImuFusion", "ImuFusionConfig"]

G = gtsam.symbol("g", 0)  # the gravity direction (Unit3), shared by every IMU factor


class ImuFusionConfig(BaseModel):
    """Every knob of :class:`ImuFusion` (noise densities are continuous-time, per sqrt(Hz))."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="fuse accelerometer and gyroscope (False: the gyroscope's rotation only)")
    gravity: float = Field(9.81, gt=0.0, description="magnitude of gravity (m/s^2); its direction is estimated")
    accel_noise_density: float = Field(1e-2, gt=0.0, description="accelerometer white noise (m/s^2/sqrt(Hz))")
    gyro_noise_density: float = Field(1e-3, gt=0.0, description="gyroscope white noise (rad/s/sqrt(Hz))")
    accel_bias_random_walk: float = Field(1e-3, gt=0.0, description="accelerometer bias drift (m/s^3/sqrt(Hz))")
    gyro_bias_random_walk: float = Field(1e-4, gt=0.0, description="gyroscope bias drift (rad/s^2/sqrt(Hz))")
    accel_bias_prior: float = Field(0.1, gt=0.0, description="prior std of the accelerometer bias (m/s^2)")
    gyro_bias_prior: float = Field(0.01, gt=0.0, description="prior std of the gyroscope bias (rad/s)")
    velocity_prior: float = Field(0.1, gt=0.0, description="prior std of the initial velocity from the alignment (m/s)")
    pose_sigma_rotation: float = Field(0.005, gt=0.0, description="std of a registered scan's rotation (rad)")
    pose_sigma_translation: float = Field(0.01, gt=0.0, description="std of a registered scan's position (m)")
    min_fitness: float = Field(0.3, ge=0.0, le=1.0, description="registered scans with a lower ICP fitness (inlier share) are not fused")
    gravity_prior: float = Field(0.05, ge=0.0, description="std (rad) of the aligned gravity direction, which the smoother keeps estimating (0 = fixed after the alignment)")
    reset_translation: float = Field(0.2, gt=0.0, description="a pose further than this (m) from the IMU's prediction restarts the fusion from it (a relocalisation, a loop closure, a registration failure)")
    reset_rotation_deg: float = Field(10.0, gt=0.0, description="... or turned more than this (deg) from it")
    init_scans: int = Field(8, ge=3, description="registered scans used to estimate gravity and velocity before fusing")
    lag_s: float = Field(2.0, gt=0.0, description="the smoother keeps states this recent (s)")
    max_gap_s: float = Field(0.05, gt=0.0, description="a longer gap between IMU samples breaks the integration (predictions return None)")
    max_extrapolation_s: float = Field(0.15, ge=0.0, description="samples are held this long past the newest one when a scan ends later")
    max_samples: int = Field(20_000, ge=100, description="IMU samples kept")


class ImuFusion:
    """See the module docstring.  ``T_sensor_imu``: the IMU's pose in the sensor (LiDAR) frame."""

    def __init__(self, config: ImuFusionConfig | None = None, T_sensor_imu: np.ndarray | None = None) -> None:
        self.config = cfg = config or ImuFusionConfig()
        self.T_sensor_imu = np.eye(4) if T_sensor_imu is None else T_sensor_imu
        self._t: deque[int] = deque(maxlen=cfg.max_samples)
        self._m: deque[np.ndarray] = deque(maxlen=cfg.max_samples)  # (gyro, accel) stacked, (6,)
        self.out_of_order = 0
        self._init: list[tuple[int, np.ndarray]] = []  # (stamp, T_world_imu) before alignment
        self.gravity: np.ndarray | None = None  # world frame, m/s^2 (points down)
        self._params: gtsam.PreintegrationParams | None = None
        self._smoother: gtsam.BatchFixedLagSmoother | None = None
        self._k = -1  # index of the newest state
        self._stamp: int | None = None  # its stamp
        self._state: gtsam.NavState | None = None
        self._bias = gtsam.imuBias.ConstantBias()
        self.updates = 0
        self.resets = 0  # restarts because a pose disagreed with the IMU's prediction
        self.failed_alignments = 0  # alignments that found no gravity (no accelerometer, bad poses)

    @property
    def T_sensor_imu(self) -> np.ndarray:
        return self._T_sensor_imu

    @T_sensor_imu.setter
    def T_sensor_imu(self, T: np.ndarray) -> None:
        """The extrinsic may be set late (TF arrives after the first samples), before the first update."""
        self._T_sensor_imu = np.asarray(T, dtype=np.float64).reshape(4, 4).copy()
        self.T_imu_sensor = np.linalg.inv(self._T_sensor_imu)

    # ------------------------------------------------------------------ samples
    def add_imu(self, stamp_ns: int, gyro: np.ndarray, accel: np.ndarray) -> bool:
        """Add one sample (IMU frame: rad/s, specific force m/s^2); a sample not newer than the
        last or not finite is dropped (counted in ``out_of_order``) and False is returned."""
        m = np.concatenate([np.asarray(gyro, dtype=np.float64).reshape(3), np.asarray(accel, dtype=np.float64).reshape(3)])
        if not np.isfinite(m).all() or (self._t and int(stamp_ns) <= self._t[-1]):
            self.out_of_order += 1
            return False
        self._t.append(int(stamp_ns))
        self._m.append(m)
        return True

    @property
    def newest_sample_ns(self) -> int | None:
        return self._t[-1] if self._t else None

    def _grid(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Stamps from t0 to t1 (the samples inside plus both ends) and the measurements
        interpolated at them; None when the samples do not cover [t0, t1] (up to the hold)."""
        cfg = self.config
        if len(self._t) < 2 or t1 < t0:
            return None
        t = np.fromiter(self._t, dtype=np.int64)
        gap = cfg.max_gap_s * 1e9
        if t[0] > t0 + gap or t[-1] < t1 - max(gap, cfg.max_extrapolation_s * 1e9):
            return None
        grid = np.unique(np.concatenate([[t0], t[(t > t0) & (t < t1)], [t1]]))
        inside = np.concatenate([[max(t0, t[0])], t[(t > t0) & (t < t1)], [min(t1, t[-1])]])
        if len(inside) > 1 and np.diff(inside).max() > gap:
            return None
        m = np.array(self._m)
        ms = np.stack([np.interp(grid, t, m[:, k]) for k in range(6)], axis=1)  # held past the ends
        return grid, ms

    def _preintegrate(self, grid: np.ndarray, ms: np.ndarray, params: gtsam.PreintegrationParams,
                      bias: gtsam.imuBias.ConstantBias, state: gtsam.NavState | None = None):
        """Preintegrated measurements over the grid; with ``state``, also the predicted NavState
        at every grid stamp.  Each step takes the sample at its start (gtsam's convention: exact
        for a constant body rate and world acceleration; the midpoint was off by O(dt))."""
        pim = gtsam.PreintegratedImuMeasurements(params, bias)
        states = [state] if state is not None else []
        for i in range(len(grid) - 1):
            dt = (grid[i + 1] - grid[i]) * 1e-9
            if dt <= 0:
                continue
            pim.integrateMeasurement(ms[i, 3:], ms[i, :3], dt)
            if state is not None:
                states.append(pim.predict(state, bias))
        return pim, states

    def _make_params(self, gravity: np.ndarray) -> gtsam.PreintegrationParams:
        cfg = self.config
        p = gtsam.PreintegrationParams(np.asarray(gravity, dtype=np.float64))
        p.setAccelerometerCovariance(np.eye(3) * cfg.accel_noise_density**2)
        p.setGyroscopeCovariance(np.eye(3) * cfg.gyro_noise_density**2)
        p.setIntegrationCovariance(np.eye(3) * 1e-8)
        return p

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """Gravity and velocity are known: predictions are available."""
        return self._state is not None

    @property
    def velocity(self) -> np.ndarray | None:
        """World-frame velocity of the IMU at the newest state."""
        return None if self._state is None else np.asarray(self._state.velocity())

    @property
    def stamp_ns(self) -> int | None:
        """Stamp of the newest fused state."""
        return self._stamp if self._state is not None else None

    def reset(self) -> None:
        """Forget the fused states (the pose being fused jumped: relocalisation, a loop closure);
        the IMU samples stay, and the next updates align again."""
        self._reset([])

    @property
    def bias(self) -> tuple[np.ndarray, np.ndarray]:
        """(gyroscope, accelerometer) bias estimates."""
        return np.asarray(self._bias.gyroscope()), np.asarray(self._bias.accelerometer())

    def _propagate(self, stamps: np.ndarray) -> list[np.ndarray] | None:
        """T_world_sensor at each stamp (sorted, all >= the newest state's) from the newest state."""
        if self._state is None:
            return None
        t1 = int(stamps[-1])
        g = self._grid(self._stamp, max(t1, self._stamp))
        if g is None:
            return None
        grid, ms = g
        _, states = self._preintegrate(grid, ms, self._params, self._bias, self._state)
        Ts = np.stack([s.pose().matrix() @ self.T_imu_sensor for s in states])
        s = np.asarray(stamps, dtype=np.int64)
        R, P = interpolate_poses((grid - grid[0]) * 1e-9, Ts, (s - grid[0]) * 1e-9)
        out = []
        for i in range(len(s)):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R[i], P[i]
            out.append(T)
        return out

    def predict(self, stamp_ns: int) -> np.ndarray | None:
        """T_world_sensor at ``stamp_ns`` (>= the newest fused scan) propagated with the IMU; None
        before initialisation or when the samples do not cover the interval."""
        if self._stamp is None or stamp_ns < self._stamp:
            return None
        Ts = self._propagate(np.array([stamp_ns]))
        return None if Ts is None else Ts[0]

    def point_motion(self, stamp_ns: int, t: np.ndarray):
        """For points measured at ``stamp_ns + t`` (seconds, any sign): ``(R, p)`` with
        ``R[i] @ x + p[i]`` taking point i from the sensor frame at its time into the sensor frame
        at ``stamp_ns``; None when :meth:`predict` cannot answer, which includes points older than
        the newest fused state (an end-of-scan stamp right after the last scan): the caller then
        deskews another way."""
        if self._stamp is None or len(t) == 0:
            return None
        tt = np.asarray(t, dtype=np.float64)
        # 64 knots along the scan, then per-point interpolation between them
        knots = np.unique(np.round(np.linspace(tt.min(), tt.max(), 64) * 1e9).astype(np.int64) + int(stamp_ns))
        stamps = np.unique(np.concatenate([knots, [int(stamp_ns)]]))
        if stamps[0] < self._stamp:
            return None
        Ts = self._propagate(stamps)
        if Ts is None:
            return None
        Ts = np.stack(Ts)
        T0_inv = np.linalg.inv(Ts[np.searchsorted(stamps, int(stamp_ns))])
        rel = T0_inv[None] @ Ts  # T_stamp_knot
        return interpolate_poses((stamps - int(stamp_ns)) * 1e-9, rel, tt)

    # ------------------------------------------------------------------ fusion
    def update(self, stamp_ns: int, T_world_sensor: np.ndarray) -> bool:
        """Fuse one registered scan pose; returns True once fused (False while initialising or
        when the IMU does not cover the interval since the last scan: the smoother restarts)."""
        T_imu = np.asarray(T_world_sensor, dtype=np.float64) @ self.T_sensor_imu
        stamp = int(stamp_ns)
        if self._state is None:
            if self._init and stamp <= self._init[-1][0]:
                return False  # not newer than the last pose: nothing to align with
            self._init.append((stamp, T_imu))
            if len(self._init) >= self.config.init_scans:
                return self._align()
            return False
        if stamp <= self._stamp:
            return False
        g = self._grid(self._stamp, stamp)
        if g is None:  # the IMU broke off: start again from this pose
            self._reset([(stamp, T_imu)])
            return False
        pim, _ = self._preintegrate(*g, self._params, self._bias)
        pred = pim.predict(self._state, self._bias)
        P = pred.pose().matrix()
        dR = P[:3, :3].T @ T_imu[:3, :3]
        angle = np.degrees(np.arccos(np.clip((np.trace(dR) - 1.0) / 2.0, -1.0, 1.0)))
        if np.linalg.norm(P[:3, 3] - T_imu[:3, 3]) > self.config.reset_translation or angle > self.config.reset_rotation_deg:
            self.resets += 1  # the pose jumped: fusing it would tear the smoother; start again from it
            self._reset([(stamp, T_imu)])
            return False
        self._add_state(stamp, T_imu, pred.velocity(), pim)
        return True

    def _reset(self, init: list[tuple[int, np.ndarray]]) -> None:
        self._state, self._smoother, self._stamp, self._init = None, None, None, init

    def _pose_noise(self) -> gtsam.noiseModel.Base:
        c = self.config
        return gtsam.noiseModel.Diagonal.Sigmas(np.r_[[c.pose_sigma_rotation] * 3, [c.pose_sigma_translation] * 3])

    def _align(self) -> bool:
        """Gravity and velocities from the first registered poses (module docstring)."""
        cfg = self.config
        poses = self._init
        zero = self._make_params(np.zeros(3))
        deltas = []
        for (t0, T0), (t1, _) in zip(poses[:-1], poses[1:]):
            g = self._grid(t0, t1)
            if g is None:
                self._reset(poses[-1:])
                return False
            pim, _ = self._preintegrate(*g, zero, self._bias)  # zero, or what a previous run learned
            deltas.append(((t1 - t0) * 1e-9, T0[:3, :3] @ pim.deltaPij(), T0[:3, :3] @ pim.deltaVij()))
        n = len(poses)

        def solve(gravity: np.ndarray | None) -> np.ndarray:
            cols = 3 * n + (3 if gravity is None else 0)
            A, b = [], []
            for i, (dt, dP, dV) in enumerate(deltas):
                rp, rv = np.zeros((3, cols)), np.zeros((3, cols))
                rp[:, 3 * i:3 * i + 3] = np.eye(3) * dt
                rv[:, 3 * i:3 * i + 3], rv[:, 3 * i + 3:3 * i + 6] = -np.eye(3), np.eye(3)
                bp = poses[i + 1][1][:3, 3] - poses[i][1][:3, 3] - dP
                bv = dV.copy()
                if gravity is None:
                    rp[:, -3:], rv[:, -3:] = np.eye(3) * 0.5 * dt**2, -np.eye(3) * dt
                else:
                    bp, bv = bp - 0.5 * gravity * dt**2, bv + gravity * dt
                A += [rp / dt, rv]  # positions weighted per unit time, like the velocities
                b += [bp / dt, bv]
            return np.linalg.lstsq(np.concatenate(A), np.concatenate(b), rcond=None)[0]

        x = solve(None)
        g = x[-3:]
        if not np.isfinite(x).all() or not 0.5 * cfg.gravity < np.linalg.norm(g) < 1.5 * cfg.gravity:
            # no accelerometer (zeros), wrong units, or poses that disagree with the IMU: no
            # gravity to align to; try again from the newest pose
            self.failed_alignments += 1
            self._reset(poses[-1:])
            return False
        gravity = g / np.linalg.norm(g) * cfg.gravity
        v = solve(gravity).reshape(n, 3)
        self.gravity = gravity
        self._params = self._make_params(gravity)
        self._smoother = gtsam.BatchFixedLagSmoother(cfg.lag_s)
        graph, values = gtsam.NonlinearFactorGraph(), gtsam.Values()
        stamp, T = poses[-1]
        self._k = 0
        graph.add(gtsam.PriorFactorPose3(X(0), gtsam.Pose3(T), self._pose_noise()))
        graph.add(gtsam.PriorFactorVector(V(0), v[-1], gtsam.noiseModel.Isotropic.Sigma(3, cfg.velocity_prior)))
        if cfg.gravity_prior > 0:
            graph.add(gtsam.PriorFactorUnit3(G, gtsam.Unit3(gravity), gtsam.noiseModel.Isotropic.Sigma(2, cfg.gravity_prior)))
            values.insert(G, gtsam.Unit3(gravity))
        graph.add(gtsam.PriorFactorConstantBias(B(0), self._bias,
                  gtsam.noiseModel.Diagonal.Sigmas(np.r_[[cfg.accel_bias_prior] * 3, [cfg.gyro_bias_prior] * 3])))
        values.insert(X(0), gtsam.Pose3(T))
        values.insert(V(0), v[-1])
        values.insert(B(0), self._bias)
        self._optimise(graph, values, stamp)
        self._init = []
        return True

    def _add_state(self, stamp: int, T_imu: np.ndarray, v_guess: np.ndarray, pim) -> None:
        cfg = self.config
        k, dt = self._k + 1, (stamp - self._stamp) * 1e-9
        graph, values = gtsam.NonlinearFactorGraph(), gtsam.Values()
        if cfg.gravity_prior > 0:
            graph.add(gtsam.ImuFactorWithGravityDirection(X(k - 1), V(k - 1), X(k), V(k), B(k - 1), G, pim, cfg.gravity))
        else:
            graph.add(gtsam.ImuFactor(X(k - 1), V(k - 1), X(k), V(k), B(k - 1), pim))
        rw = np.r_[[cfg.accel_bias_random_walk] * 3, [cfg.gyro_bias_random_walk] * 3] * np.sqrt(max(dt, 1e-6))
        graph.add(gtsam.BetweenFactorConstantBias(B(k - 1), B(k), gtsam.imuBias.ConstantBias(), gtsam.noiseModel.Diagonal.Sigmas(rw)))
        graph.add(gtsam.PriorFactorPose3(X(k), gtsam.Pose3(T_imu), self._pose_noise()))
        values.insert(X(k), gtsam.Pose3(T_imu))
        values.insert(V(k), np.asarray(v_guess, dtype=np.float64))
        values.insert(B(k), self._bias)
        self._k = k
        self._optimise(graph, values, stamp)

    def _optimise(self, graph, values, stamp: int) -> None:
        k = self._k
        stamps = {X(k): stamp * 1e-9, V(k): stamp * 1e-9, B(k): stamp * 1e-9}
        if self.config.gravity_prior > 0:
            stamps[G] = stamp * 1e-9  # never marginalised
        self._smoother.update(graph, values, stamps)
        est = self._smoother.calculateEstimate()
        if self.config.gravity_prior > 0:
            self.gravity = est.atUnit3(G).point3() * self.config.gravity
            self._params = self._make_params(self.gravity)
        self._state = gtsam.NavState(est.atPose3(X(k)), est.atVector(V(k)))
        self._bias = est.atConstantBias(B(k))
        self._stamp = stamp
        self.updates += 1
