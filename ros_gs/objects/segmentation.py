"""Object instances in one RGB-D view without masks: what stands on the support, split where the
surface breaks.

Pixels become foreground when their depth lies above the support plane or, where depth is poor
(thin, dark or shiny objects: GraspNet's banana reads 9 mm tall), when their colour differs
from the support's.  Neighbouring foreground pixels are linked unless a depth jump, a concave
crease (the convexity test of LCCP: normals turning towards each other) or, for pixels known by
colour alone, a colour edge lies between them; the linked components are the instances.  Why
not plane + DBSCAN on the cloud: touching objects merge at any radius (GraspNet's table: 7 of 9
objects in one cluster at 1 cm).  Why not colour as the main cut: printed objects shatter.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ros_gs.errors import SensorDataError
from ros_gs.objects.colors import rgb_to_lab
from ros_gs.objects.support import SupportPlane


class SegmentationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_width: int = Field(640, ge=32, le=8192, description="views wider than this are segmented at a stride (labels are upsampled back)")
    min_height: float = Field(0.007, gt=0.0, description="foreground: depth at least this far above the support (m)")
    max_height: float = Field(0.45, gt=0.0, description="and at most this far (m): higher is no object on this support")
    table_tolerance: float = Field(0.006, gt=0.0, description="pixels this close to the plane are the support (m)")
    jump_abs: float = Field(0.006, ge=0.0, description="a depth jump cuts a link when the neighbours differ by more than jump_abs + jump_rel * depth (m)")
    jump_rel: float = Field(0.02, ge=0.0, description="see jump_abs")
    crease_deg: float = Field(28.0, gt=0.0, le=180.0, description="a concave crease sharper than this (normals compared across 2 x crease_stride pixels) cuts a link")
    crease_stride: int = Field(2, ge=1, le=8, description="pixels on each side of a link whose normals are compared")
    normal_window: int = Field(5, ge=3, le=15, description="the points are box-filtered over this window (pixels) before normals are taken")
    use_colour: bool = Field(True, description="also take pixels whose colour differs from the support's (needs the colour image)")
    colour_distance: float = Field(28.0, gt=0.0, description="CIELAB distance (L counted half) from the support's median colour that makes a pixel foreground")
    colour_edge: float = Field(18.0, gt=0.0, description="CIELAB difference that cuts a link touching a colour-only pixel")
    min_area_cm2: float = Field(2.0, gt=0.0, description="instances covering less surface (cm^2, from depth) are dropped")
    min_colour_area_cm2: float = Field(6.0, gt=0.0, description="instances seen by colour alone must cover at least this (cm^2)")
    merge_area_cm2: float = Field(12.0, ge=0.0, description="fragments smaller than this join the neighbour they share the most border with (no depth jump there)")
    merge_thin_m: float = Field(0.02, ge=0.0, description="so do upright fragments thinner than this (m) across and more than twice as tall: they cannot stand alone (a mug's handle, which the concave creases where it meets the wall cut off; not longer than 3 x this)")
    merge_gap_m: float = Field(0.03, ge=0.0, description="a thin upright fragment joins a neighbour up to this far away across the image (m at its depth): a handle's arms are too thin to keep, its grip bar stands apart")


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera-frame points of a depth image (metres; NaN where depth is not > 0)."""
    h, w = depth.shape
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float64)
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=-1)


def _smooth(points: np.ndarray, window: int, rel: float = 0.02, absolute: float = 0.01) -> np.ndarray:
    """Points averaged over a ``window`` x ``window`` neighbourhood, taking only neighbours whose
    depth lies within ``absolute + rel * depth`` of the centre's (a mug's rim must not be
    averaged with the floor far behind it)."""
    valid = np.isfinite(points[..., 2])
    p = np.where(valid[..., None], points, 0.0)
    z = np.where(valid, points[..., 2], np.inf)
    acc = np.zeros_like(p)
    cnt = np.zeros(valid.shape)
    r = window // 2
    H, W = valid.shape
    zp = np.pad(z, r, constant_values=np.inf)
    pp = np.pad(p, ((r, r), (r, r), (0, 0)))
    tol = absolute + rel * np.where(valid, points[..., 2], 0.0)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            zn = zp[r + dy: r + dy + H, r + dx: r + dx + W]
            with np.errstate(invalid="ignore"):
                ok = valid & (np.abs(zn - z) < tol)
            acc += np.where(ok[..., None], pp[r + dy: r + dy + H, r + dx: r + dx + W], 0.0)
            cnt += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / cnt[..., None]
    out[~valid] = np.nan
    return out


def normals_image(points: np.ndarray, window: int = 5) -> np.ndarray:
    """(H, W, 3) unit normals of an organised cloud, turned towards the camera (NaN where unknown)."""
    p = _smooth(points, window)
    du = np.zeros_like(p)
    dv = np.zeros_like(p)
    du[:, 1:-1] = p[:, 2:] - p[:, :-2]
    dv[1:-1] = p[2:] - p[:-2]
    n = np.cross(du, dv)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = n / norm
    flip = np.einsum("hwc,hwc->hw", n, p) > 0
    n[flip] *= -1
    return n


def _support_region(table: np.ndarray) -> np.ndarray:
    """Image region of the support: the convex hull of its largest connected part (objects on a
    table are holes in it, or bites out of its edge)."""
    from skimage.morphology import convex_hull_image

    opened = ndimage.binary_opening(table, iterations=2)
    lab, n = ndimage.label(opened)
    if n == 0:
        return np.zeros_like(table)
    sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    return convex_hull_image(lab == 1 + int(np.argmax(sizes)))


def _over_support(P: np.ndarray, valid: np.ndarray, table: np.ndarray, plane: SupportPlane) -> np.ndarray:
    """Pixels whose point lies over the support's extent (the convex hull of its points, along
    the plane): an object's top can rise above the table's far edge in the image."""
    from scipy.spatial import Delaunay, QhullError

    B = plane.basis()
    pts = P[table]
    if len(pts) < 3:
        return np.zeros(valid.shape, dtype=bool)
    tri_uv = pts @ B[:2].T
    try:
        from scipy.spatial import ConvexHull

        hull = Delaunay(tri_uv[ConvexHull(tri_uv).vertices])
    except (QhullError, ValueError):
        return np.zeros(valid.shape, dtype=bool)
    out = np.zeros(valid.shape, dtype=bool)
    uv = P[valid] @ B[:2].T
    out[valid] = hull.find_simplex(uv) >= 0
    return out


def _links(shape: tuple[int, int], axis: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(shape[0] * shape[1]).reshape(shape)
    if axis == 1:
        return idx[:, :-1].ravel(), idx[:, 1:].ravel()
    return idx[:-1, :].ravel(), idx[1:, :].ravel()


def segment_view(depth: np.ndarray, K: np.ndarray, plane: SupportPlane, rgb: np.ndarray | None = None,
                 roi: np.ndarray | None = None, config: SegmentationConfig | None = None) -> np.ndarray:
    """Instance ids (H, W) int32 (0 = none, 1..n objects) of a depth image (metres) with the
    support ``plane`` in the camera's optical frame; ``rgb`` (H, W, 3) uint8 registered to
    depth, ``roi`` (H, W) bool: where objects may be (a workspace mask)."""
    cfg = config or SegmentationConfig()
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise SensorDataError(f"depth must be (H, W), got {depth.shape}")
    H, W = depth.shape
    for name, arr, nd in (("rgb", rgb, 3), ("roi", roi, 2)):
        if arr is not None and (arr.ndim != nd or arr.shape[:2] != (H, W)):
            raise SensorDataError(f"{name} {arr.shape} does not match depth {depth.shape}")
    s = max(1, int(np.ceil(W / cfg.max_width)))
    Ks = np.asarray(K, dtype=np.float64).copy()
    Ks[:2] /= s  # every s-th pixel: x' = x / s (pixel centres at integers)
    d = depth[::s, ::s]
    labels = _segment(d, Ks, plane, None if rgb is None else rgb[::s, ::s], None if roi is None else roi[::s, ::s], cfg)
    if s > 1:
        labels = np.repeat(np.repeat(labels, s, axis=0), s, axis=1)[:H, :W]
    return labels


def _components(shape, mask: np.ndarray, cut_fn) -> np.ndarray:
    """Connected components (0 = outside ``mask``, else 1..n) of the 4-neighbour links between
    mask pixels that ``cut_fn(a, b, axis)`` does not cut."""
    keep_a, keep_b = [], []
    for axis in (1, 0):
        a, b = _links(shape, axis)
        ok = mask.ravel()[a] & mask.ravel()[b]
        a, b = a[ok], b[ok]
        sel = ~cut_fn(a, b, axis)
        keep_a.append(a[sel])
        keep_b.append(b[sel])
    N = mask.size
    a, b = np.concatenate(keep_a), np.concatenate(keep_b)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(N, N))
    _, comp = connected_components(graph, directed=False)
    comp = comp.reshape(shape)
    ids, inv = np.unique(np.where(mask, comp, -1), return_inverse=True)
    return inv.reshape(shape) + (0 if ids[0] == -1 else 1)  # background 0, components 1..n


def _segment(depth, K, plane, rgb, roi, cfg: SegmentationConfig) -> np.ndarray:
    P = backproject(depth, K)
    valid = np.isfinite(P[..., 2])
    Ps = _smooth(P, cfg.normal_window)  # heights from smoothed points: a RealSense's +-5 mm noise would speckle
    h = np.where(valid, Ps @ plane.normal + plane.offset, np.nan)
    with np.errstate(invalid="ignore"):
        table = valid & (np.abs(h) < cfg.table_tolerance)
        # over the support: by the points where depth is valid, by the image otherwise
        region = np.where(valid, _over_support(P, valid, ndimage.binary_opening(table, iterations=2), plane),
                          _support_region(table))
        if roi is not None:
            region &= roi.astype(bool)
        # smoothed heights keep noise out; raw ones keep out the support just behind an object's
        # edge, which the smoothing lifts
        h_raw = P @ plane.normal + plane.offset
        high = valid & region & (h > cfg.min_height) & (h < cfg.max_height) & (h_raw > 0.5 * cfg.min_height)
    # opening by reconstruction: specks of noise go, thin edges of kept parts stay
    high = ndimage.binary_propagation(ndimage.binary_opening(high), mask=high)
    lab = dist = None
    threshold = cfg.colour_distance
    colour_only = np.zeros_like(high)
    if cfg.use_colour and rgb is not None and table.any():
        lab = rgb_to_lab(rgb)
        ref = np.median(lab[table], axis=0)
        dab = np.hypot(lab[..., 1] - ref[1], lab[..., 2] - ref[2])
        dist = np.hypot(0.5 * (lab[..., 0] - ref[0]), dab)
        # a textured support (wood grain) spreads its own colours: the threshold grows with it
        spread = np.percentile(dist[table], 90)
        threshold = max(cfg.colour_distance, 1.5 * spread)
        shadow = (lab[..., 0] < ref[0]) & (dab < 0.5 * cfg.colour_distance)  # the support, darker
        with np.errstate(invalid="ignore"):  # on the support (not below it: its edge faces) or without depth
            low = ~valid | ((h <= cfg.min_height) & (h > -cfg.table_tolerance))
        colour_only = ndimage.binary_opening(region & low & ~high & (dist > threshold) & ~shadow)
    if not (high.any() or colour_only.any()):
        return np.zeros(depth.shape, dtype=np.int32)

    n = normals_image(P, cfg.normal_window)
    z = P[..., 2].ravel()
    Pf, nf = P.reshape(-1, 3), n.reshape(-1, 3)
    cos_crease = np.cos(np.radians(cfg.crease_deg))
    W = depth.shape[1]

    def geometric_cut(a, b, axis):
        za, zb = z[a], z[b]
        jump = np.abs(za - zb) > cfg.jump_abs + cfg.jump_rel * np.minimum(za, zb)
        # concave crease: normals and points crease_stride pixels before a and after b
        step = cfg.crease_stride * (1 if axis == 1 else W)
        ia, ib = np.clip(a - step, 0, len(z) - 1), np.clip(b + step, 0, len(z) - 1)
        with np.errstate(invalid="ignore"):
            concave = np.einsum("ij,ij->i", nf[ib] - nf[ia], Pf[ib] - Pf[ia]) < 0
            sharp = np.einsum("ij,ij->i", nf[ia], nf[ib]) < cos_crease
        return jump | (concave & sharp)

    comp = _components(depth.shape, high, geometric_cut)
    if lab is not None and colour_only.any():
        labf = lab.reshape(-1, 3)

        def colour_cut(a, b, axis):
            return np.linalg.norm(labf[a] - labf[b], axis=1) > cfg.colour_edge

        comp = _attach_colour(comp, _components(depth.shape, colour_only, colour_cut), lab, cfg)

    # pixel footprint on the surface (m^2): (z / f)^2 per pixel; pixels without depth at the table's
    zt = np.nanmedian(P[..., 2][table]) if table.any() else np.nanmedian(P[..., 2])
    zf = np.where(valid, P[..., 2], zt)
    area = (zf / K[0, 0]) * (zf / K[1, 1]) * 1e4  # cm^2
    nid = int(comp.max()) + 1
    areas = np.bincount(comp.ravel(), weights=area.ravel(), minlength=nid)
    high_areas = np.bincount(comp.ravel(), weights=(area * high).ravel(), minlength=nid)
    keep = (areas >= cfg.min_area_cm2) & ((high_areas >= cfg.min_area_cm2) | (areas >= cfg.min_colour_area_cm2))
    # pieces of the support itself (its edges, where smoothing lifts it): flat and of its colour
    top = ndimage.median(np.nan_to_num(h, nan=0.0), comp, index=np.arange(nid))
    keep &= top >= 0.5 * cfg.min_height  # flat patches of another colour: a dark table edge, a printed mat
    if lab is not None:  # low bumps of the support's own colour (a mat that is not flat) need more height
        far = ndimage.mean(dist > threshold, comp, index=np.arange(nid))
        keep &= (top >= 2 * cfg.min_height) | (far > 0.5)
    else:
        keep &= top >= cfg.min_height
    keep[0] = False
    out = np.where(keep[comp], comp, 0).astype(np.int32)
    out = _merge_fragments(out, area, P, np.where(valid, h_raw, np.nan), plane, float(K[0, 0]), cfg)
    out = _fill_holes(out)
    return _relabel(out)


def _fill_holes(labels: np.ndarray) -> np.ndarray:
    """Unlabelled pixels enclosed by one instance are that instance (a cup's inside, whose
    bottom a depth jump cuts off from the rim)."""
    out = labels.copy()
    for i in range(1, int(labels.max()) + 1):
        mask = labels == i
        if mask.any():
            sl = ndimage.find_objects(mask.astype(np.int8))[0]
            filled = ndimage.binary_fill_holes(mask[sl])
            sub = out[sl]
            sub[filled & (sub == 0)] = i
    return out


def _attach_colour(comp: np.ndarray, colour: np.ndarray, lab: np.ndarray, cfg: SegmentationConfig) -> np.ndarray:
    """Colour-only parts join the one depth component they border most when their colours
    agree there; otherwise they are objects of their own.  A colour part never joins two depth
    components together (shadows and dark gaps would bridge touching objects)."""
    out = comp.copy()
    nxt = int(comp.max()) + 1
    for i in range(1, int(colour.max()) + 1):
        mask = colour == i
        ring = ndimage.binary_dilation(mask, iterations=2) & (comp > 0)
        target = 0
        if ring.any():
            ids, counts = np.unique(comp[ring], return_counts=True)
            j = ids[np.argmax(counts)]
            border = ring & (comp == j)
            if np.linalg.norm(np.median(lab[mask], axis=0) - np.median(lab[border], axis=0)) < 2 * cfg.colour_edge:
                target = j
        if target == 0:
            target, nxt = nxt, nxt + 1
        out[mask] = target
    return out


def _thin_upright(P: np.ndarray, h: np.ndarray, plane: SupportPlane, max_width: float) -> bool:
    """Whether points (N, 3) with heights ``h`` above the support are narrower than
    ``max_width`` across their footprint (5-95 % extent of the minor axis), shorter than three
    times that along it (a handle, not a board: a pusher's 12 cm paddle stays apart) and over
    twice as tall as wide."""
    good = np.isfinite(h) & np.isfinite(P).all(axis=1)
    if good.sum() < 10 or max_width <= 0:
        return False
    P, h = P[good], h[good]
    flat = P - np.outer(P @ plane.normal, plane.normal)
    flat = flat - flat.mean(axis=0)
    _, evecs = np.linalg.eigh(flat.T @ flat)
    # eigh sorts ascending: [0] is the plane's normal (no spread), [1] the minor axis, [2] the major
    width, length = (float(np.percentile(flat @ evecs[:, k], 95) - np.percentile(flat @ evecs[:, k], 5)) for k in (1, 2))
    return width < max_width and length < 3.0 * max_width and float(np.percentile(h, 95)) > 2.0 * width


def _merge_fragments(labels: np.ndarray, area: np.ndarray, P: np.ndarray, h: np.ndarray, plane: SupportPlane,
                     fx: float, cfg: SegmentationConfig) -> np.ndarray:
    """Fragments below ``merge_area_cm2``, and thin upright ones (``merge_thin_m``), join the
    neighbour they touch most where no depth jump lies between them (a concave crease inside one
    object, e.g. a drill's grip or a mug's handle, cut it off)."""
    if (cfg.merge_area_cm2 <= 0 and cfg.merge_thin_m <= 0) or labels.max() < 2:
        return labels
    z = P[..., 2]
    for _ in range(3):
        ids = np.arange(labels.max() + 1)
        areas = np.bincount(labels.ravel(), weights=area.ravel(), minlength=len(ids))
        small = {int(i): 2 for i in ids[1:] if 0 < areas[i] < cfg.merge_area_cm2}  # fragment -> reach (pixels)
        for i in ids[1:]:
            if areas[i] > 0 and _thin_upright(P[labels == i], h[labels == i], plane, cfg.merge_thin_m):
                zi = np.nanmedian(z[labels == i])
                small[int(i)] = max(2, int(np.ceil(cfg.merge_gap_m * fx / zi))) if np.isfinite(zi) else 2
        if not small:
            break
        changed = False
        for i in sorted(small, key=lambda i: areas[i]):
            mask = labels == i
            if not mask.any():
                continue
            ring = ndimage.binary_dilation(mask, iterations=small[i]) & ~mask & (labels > 0)
            if not ring.any():
                continue
            zi = np.nanmedian(z[mask]) if np.isfinite(z[mask]).any() else np.nan
            cand, counts = np.unique(labels[ring], return_counts=True)
            for j in cand[np.argsort(-counts)]:
                zr = z[ring & (labels == j)]
                zr = zr[np.isfinite(zr)]
                if np.isfinite(zi) and len(zr) and abs(np.median(zr) - zi) > cfg.jump_abs + cfg.jump_rel * zi + 0.02:
                    continue
                labels[mask] = j
                changed = True
                break
        if not changed:
            break
    return labels


def _relabel(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(labels.max() + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]
