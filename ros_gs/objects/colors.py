"""Colour names from a fixed palette in CIELAB, and colours compared, not only named.

Why CIELAB (scikit-image's conversion): distances there follow perceived difference, so "the
most orange object" is the one nearest to orange even when a camera renders it reddish.  Each
name is a point in L*a*b*; grey levels (white, grey, black) are told apart by lightness, the
chromatic names by hue and chroma.  The palette is the issue's eleven basic colour terms
(Berlin and Kay), placed at typical sRGB values of each name.
"""

from __future__ import annotations

import numpy as np

# sRGB (0-255) of each basic colour term
PALETTE_RGB: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (240, 120, 20),
    "yellow": (240, 215, 30),
    "green": (40, 160, 60),
    "blue": (30, 80, 200),
    "purple": (130, 50, 160),
    "pink": (240, 130, 170),
    "brown": (120, 75, 40),
    "white": (240, 240, 235),
    "grey": (128, 128, 128),
    "black": (25, 25, 25),
}
COLOUR_NAMES = tuple(PALETTE_RGB)
# words people use for the same colours
COLOUR_SYNONYMS: dict[str, str] = {
    "gray": "grey", "silver": "grey", "crimson": "red", "scarlet": "red", "maroon": "red", "golden": "yellow",
    "gold": "yellow", "lemon": "yellow", "navy": "blue", "azure": "blue", "teal": "blue", "cyan": "blue",
    "turquoise": "blue", "violet": "purple", "lilac": "purple", "magenta": "pink", "rose": "pink",
    "tan": "brown", "beige": "brown", "chocolate": "brown", "ivory": "white", "cream": "white", "dark": "black",
    "lime": "green", "olive": "green", "amber": "orange", "tangerine": "orange",
}


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) of sRGB uint8 (or 0-1 float) colours."""
    from skimage.color import rgb2lab

    arr = np.asarray(rgb)
    f = arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    return rgb2lab(f.reshape(-1, 1, 3)).reshape(arr.shape[:-1] + (3,))


PALETTE_LAB = rgb_to_lab(np.array(list(PALETTE_RGB.values()), dtype=np.uint8))


def colour_distances(lab: np.ndarray) -> np.ndarray:
    """(N, 11) distance of each L*a*b* colour to each palette colour; lightness counts half, so
    that shading (the same paint lit differently) changes the name less than hue does."""
    d = lab[:, None, :] - PALETTE_LAB[None, :, :]
    d[..., 0] *= 0.5
    return np.linalg.norm(d, axis=-1)


def name_colours(lab: np.ndarray, max_names: int = 2, min_share: float = 0.2) -> list[tuple[str, float]]:
    """Up to ``max_names`` (name, share) of an object's pixel colours, biggest share first; a
    second name only when it covers at least ``min_share``."""
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    if len(lab) == 0:
        return []
    nearest = np.argmin(colour_distances(lab), axis=1)
    shares = np.bincount(nearest, minlength=len(COLOUR_NAMES)) / len(lab)
    order = np.argsort(-shares)
    out = [(COLOUR_NAMES[order[0]], float(shares[order[0]]))]
    for k in order[1:max_names]:
        if shares[k] >= min_share:
            out.append((COLOUR_NAMES[k], float(shares[k])))
    return out


HUE_NAMES = ("red", "orange", "yellow", "green", "blue", "purple")  # told apart by hue alone
#: colour_score looks at no more pixels than this per object (a query's latency stays flat on
#: 1280x720 frames, whose objects hold up to ~40,000 points)
MAX_SCORED_COLOURS = 4000


def colour_score(lab: np.ndarray, name: str) -> float:
    """How much of an object is ``name`` (0-1), to compare objects with ("the most orange").
    The hue names score each pixel by its hue's closeness to the name's (25 degree scale), gated
    by chroma: a camera that renders an orange drill reddish moves its hue a little, not its
    name's palette point past red's.  Pink, brown and the greys score the share of pixels
    nearest to them in the palette, softened so neighbours count a little."""
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    if len(lab) == 0:
        return 0.0
    if len(lab) > MAX_SCORED_COLOURS:  # a mean: an even stride of the pixels estimates it to ~1 %
        lab = lab[:: -(-len(lab) // MAX_SCORED_COLOURS)]
    k = COLOUR_NAMES.index(name)
    if name in HUE_NAMES:
        ref = PALETTE_LAB[k]
        chroma = np.hypot(lab[:, 1], lab[:, 2])
        gate = np.clip((chroma - 10.0) / 20.0, 0.0, 1.0)
        dh = np.angle(np.exp(1j * (np.arctan2(lab[:, 2], lab[:, 1]) - np.arctan2(ref[2], ref[1]))))
        return float(np.mean(gate * np.exp(-(np.degrees(dh) / 25.0) ** 2)))
    d = colour_distances(lab)
    w = np.exp(-(d - d.min(axis=1, keepdims=True)) / 10.0)  # soft assignment, 10 Lab units
    w /= w.sum(axis=1, keepdims=True)
    return float(w[:, k].mean())
