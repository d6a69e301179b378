"""Attribute descriptions of objects computed from their points: colour names, size, shape class
and where each stands relative to the others, as a camera sees them.

Sizes are measured in the support's frame: ``length`` >= ``width`` along the footprint's
principal axes, ``height`` above the support.  Shape classes come from those extents and the
footprint (convex hull) and top: a box has a rectangular footprint and a flat top, a cylinder a
round footprint and a flat top, a sphere a round footprint and a domed top as high as it is
wide; ``elongated`` and ``flat`` go by extent ratios; anything else is ``irregular``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ros_gs.objects.colors import name_colours
from ros_gs.objects.support import SupportPlane

SHAPES = ("box", "cylinder", "sphere", "elongated", "flat", "irregular")


@dataclass
class ObjectDescription:
    """What an object looks like and where it is. ``centre`` (3,) world, on the support under the
    object; ``extents`` (length, width, height) m; ``colours`` [(name, share)]; ``position``
    (right, forward) m from the reference camera's view, along the support (+right, +away)."""

    id: int
    colours: list[tuple[str, float]]
    extents: tuple[float, float, float]
    shape: str
    centre: np.ndarray
    position: tuple[float, float]
    distance: float  # from the reference camera (m)
    label: str = ""
    relations: list[str] = field(default_factory=list)

    @property
    def volume(self) -> float:
        return float(np.prod(self.extents))

    def text(self) -> str:
        """One line, e.g. ``red box, 16 x 6 x 21 cm, left, back, biggest``."""
        col = " and ".join(c for c, _ in self.colours)
        shape = {"elongated": "elongated object", "flat": "flat object", "irregular": "object"}.get(self.shape, self.shape)
        size = " x ".join(f"{e * 100:.0f}" for e in self.extents)
        words = [f"{col} {shape}".strip(), f"{size} cm"] + self.relations
        return (f"{self.label}: " if self.label else "") + ", ".join(words)


def _hull_stats(xy: np.ndarray) -> tuple[float, float]:
    """(area, perimeter) of the 2D convex hull."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(xy)
    except (QhullError, ValueError):
        return 0.0, 0.0
    return float(hull.volume), float(hull.area)


def shape_class(length: float, width: float, height: float, circularity: float, top_flat: float,
                centre_height: float = 1.0) -> str:
    """The shape class from extents (m), the footprint's ``circularity`` (4 pi area /
    perimeter^2 of its convex hull: 1 for a disc, 0.79 for a square) and ``top_flat`` (of the
    points in the upper half of the height, the share within 10 % of the top: a sphere's area
    is spread evenly over height (Archimedes), so about 0.2-0.35 for its cap (smoothing widens the band); a flat top holds more)
    and ``centre_height`` (the median height of the footprint's middle over the height: low for
    an open cup or bowl, whose rim stands above its inside)."""
    if length > 2.2 * max(width, height):
        return "elongated"
    if height < 0.35 * width:
        return "flat"
    round_fp = circularity > 0.88
    if circularity > 0.8 and centre_height < 0.8:
        # open: a cup, a bowl, a pot (a handle makes the footprint less round: a mug 0.86-0.88,
        # its inside 0.62-0.75 of its height seen by three cameras; balls and lids 0.97-1.0)
        return "cylinder"
    if top_flat > 0.42:  # seed 0: spheres 0.32-0.35, boxes and cylinders 0.50-0.89
        return "cylinder" if round_fp else "box"
    if round_fp and 0.6 < height / max(length, 1e-9) < 1.5:
        return "sphere"
    return "irregular"


def describe(obj_id: int, points: np.ndarray, lab: np.ndarray, support: SupportPlane, label: str = "") -> ObjectDescription:
    """Colours, extents and shape of one object's points (world, (N, 3)) with colours ``lab``
    (N, 3) CIELAB (NaN rows: no colour).  ``position`` and ``distance`` are filled in by
    :func:`describe_scene`."""
    B = support.basis()
    pts = np.asarray(points, dtype=np.float64)
    local = pts @ B.T
    local[:, 2] += support.offset  # height above the support
    xy = local[:, :2]
    c = xy.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov((xy - c).T) + 1e-12 * np.eye(2))
    axes = evecs[:, ::-1]
    proj = (xy - c) @ axes
    lo, hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
    length, width = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    height = float(np.percentile(local[:, 2], 99))
    area, perim = _hull_stats(proj)
    circ = 4 * math.pi * area / max(perim * perim, 1e-12)
    upper = local[:, 2] > 0.5 * height
    top_flat = float(np.mean(local[upper, 2] > 0.9 * height)) if height > 0 and upper.any() else 0.0
    r = np.hypot(*((proj - (lo + hi) / 2) / np.maximum((hi - lo) / 2, 1e-9)).T)
    inner = r < 0.4
    centre_height = float(np.median(local[inner, 2]) / height) if height > 0 and inner.sum() >= 5 else 1.0
    shape = shape_class(length, width, height, circ, top_flat, centre_height)
    mid = c + axes @ ((lo + hi) / 2)
    centre = B.T @ np.array([mid[0], mid[1], -support.offset])
    good = np.isfinite(lab).all(axis=1) if len(lab) else np.zeros(0, bool)
    colours = name_colours(lab[good]) if good.any() else []
    return ObjectDescription(obj_id, colours, (length, width, max(height, 0.0)), shape, centre, (0.0, 0.0), 0.0, label)


def describe_scene(descs: list[ObjectDescription], support: SupportPlane, viewpoint: np.ndarray,
                   view_right: np.ndarray, view_down: np.ndarray) -> list[ObjectDescription]:
    """Fills in where each object is as the reference camera shows it (centre ``viewpoint``,
    image right ``view_right`` and image down ``view_down``, world): right and forward along
    the support (forward = up the image, as a person reads a picture: for a camera looking
    ahead and down that is away from it), distance, and relation words (left, right, front,
    back, biggest, smallest, tallest, nearest)."""
    n = support.normal

    def along_support(v):
        v = np.asarray(v, dtype=np.float64)
        v = v - (v @ n) * n
        return v / max(np.linalg.norm(v), 1e-12)

    r = along_support(view_right)
    fwd = -along_support(view_down)
    vp = np.asarray(viewpoint, dtype=np.float64)
    for d in descs:
        rel = d.centre - vp
        d.position = (float(rel @ r), float(rel @ fwd))
        d.distance = float(np.linalg.norm(rel))
        d.relations = []
    if len(descs) >= 2:
        xs = np.array([d.position[0] for d in descs])
        ys = np.array([d.position[1] for d in descs])
        span_x, span_y = np.ptp(xs), np.ptp(ys)
        for d in descs:
            x, y = d.position
            if span_x > 0.05:
                t = (x - xs.min()) / span_x
                d.relations += ["left"] if t < 0.34 else (["right"] if t > 0.66 else [])
            if span_y > 0.05:
                t = (y - ys.min()) / span_y
                d.relations += ["front"] if t < 0.34 else (["back"] if t > 0.66 else [])
        for key, words in ((lambda d: d.volume, ("biggest", "smallest")), (lambda d: d.extents[2], ("tallest", None)),
                           (lambda d: -d.distance, ("nearest", None))):
            vals = [key(d) for d in descs]
            descs[int(np.argmax(vals))].relations.append(words[0])
            if words[1]:
                descs[int(np.argmin(vals))].relations.append(words[1])
    return descs
