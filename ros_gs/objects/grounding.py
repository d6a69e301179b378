"""Which object a text query means, with no learned vision model: attribute words (colour, shape,
size, position, relations to another object) scored on the objects' descriptions, plus labels
(when a detector gave them) and the descriptions matched by meaning with the shipped MiniLM
sentence encoder.

"something yellow", "the tall red box", "the biggest object" and "the thing left of the blue
cup" are grounded by their attribute words; "something to drink from" by meaning against a
label.  A query that names only a kind ("the drill") cannot be grounded without labels: the
answer ranks the candidates by the meaning of their descriptions and says it is ambiguous, as
it does when the two best are within ``margin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ros_gs.errors import ConfigError
from ros_gs.objects.colors import COLOUR_NAMES, COLOUR_SYNONYMS, colour_score
from ros_gs.objects.description import ObjectDescription
from ros_gs.semantics.text import check_query

SHAPE_WORDS = {
    "box": ("box", "boxes", "block", "cube", "brick", "carton", "package", "packet", "crate", "case", "cuboid", "rectangular", "square"),
    "cylinder": ("cylinder", "cylindrical", "can", "tin", "cup", "mug", "bottle", "jar", "tube", "glass", "pot", "canister", "round"),
    "sphere": ("sphere", "ball", "spherical", "globe", "orb", "round"),
    "elongated": ("elongated", "long", "stick", "rod", "bar", "slender", "thin", "pen", "skinny"),
    "flat": ("flat", "plate", "sheet", "book", "disc", "disk", "lid", "slab", "thin"),
}
# superlatives and size adjectives: word -> (key, sign): key in volume, height, length, width, distance
SIZE_WORDS = {
    "biggest": ("volume", 1), "largest": ("volume", 1), "big": ("volume", 1), "large": ("volume", 1), "huge": ("volume", 1),
    "bigger": ("volume", 1), "larger": ("volume", 1),
    "smallest": ("volume", -1), "small": ("volume", -1), "tiny": ("volume", -1), "little": ("volume", -1), "smaller": ("volume", -1),
    "tallest": ("height", 1), "tall": ("height", 1), "taller": ("height", 1), "highest": ("height", 1), "high": ("height", 1),
    "shortest": ("height", -1), "short": ("height", -1), "lowest": ("height", -1), "low": ("height", -1),
    "longest": ("length", 1), "widest": ("width", 1), "wide": ("width", 1), "narrowest": ("width", -1), "narrow": ("width", -1),
    "nearest": ("distance", -1), "closest": ("distance", -1), "near": ("distance", -1), "farthest": ("distance", 1),
    "furthest": ("distance", 1), "far": ("distance", 1),
}
# absolute position words: word -> (axis, sign): axis 0 right, 1 forward (away from the camera)
POSITION_WORDS = {
    "left": (0, -1), "leftmost": (0, -1), "right": (0, 1), "rightmost": (0, 1),
    "front": (1, -1), "frontmost": (1, -1), "back": (1, 1), "rear": (1, 1), "behind": (1, 1), "backmost": (1, 1),
}
# relations to another object: phrase -> (axis or "near", sign)
RELATIONS = (
    (r"\b(?:to the )?left of\b", (0, -1)), (r"\b(?:to the )?right of\b", (0, 1)),
    (r"\bin front of\b", (1, -1)), (r"\bbehind\b", (1, 1)), (r"\bbeyond\b", (1, 1)),
    (r"\b(?:next to|near(?:est)? to|near|beside|by|close to|closest to)\b", ("near", 1)),
)
STOP = {"the", "a", "an", "one", "object", "thing", "item", "something", "that", "is", "which", "of", "on", "in", "to",
        "me", "please", "grab", "pick", "up", "get", "take", "give", "find", "with", "and", "it", "its", "there", "this",
        "what", "most", "side", "colour", "color", "colored", "coloured", "shaped", "looking", "sized", "size", "piece",
        "stuff", "from", "at", "i", "can", "you", "want", "need", "lying", "standing", "table", "for", "like", "ish",
        "very", "really", "any", "some", "other", "kind", "sort", "type"}


@dataclass
class Candidate:
    index: int  # into the descriptions given
    id: int
    score: float
    text: str


@dataclass
class Grounding:
    query: str
    candidates: list[Candidate]  # best first
    index: int  # the chosen object (into the descriptions), -1: none
    ambiguous: bool = False
    message: str = ""
    terms: list[str] = field(default_factory=list)  # what of the query was understood


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _extreme(values: np.ndarray, sign: int) -> np.ndarray:
    """1 for the most extreme value in direction ``sign``, falling linearly to 0.1 at the other end."""
    v = sign * np.asarray(values, dtype=np.float64)
    span = np.ptp(v)
    if span <= 1e-9:
        return np.ones_like(v)
    return 0.1 + 0.9 * (v - v.min()) / span


MIN_COLOUR_SCORE = 0.15  # below this no object is that colour: absent colours scored <= 0.13 on GraspNet, present >= 0.2


def _attribute_scores(words: list[str], descs: list[ObjectDescription], labs: list[np.ndarray], terms: list[str],
                      missing: list[str]) -> np.ndarray:
    n = len(descs)
    score = np.ones(n)
    colours = []
    for w in words:
        c = COLOUR_SYNONYMS.get(w, w)
        if c in COLOUR_NAMES and c not in colours:
            colours.append(c)
    for c in colours:
        s = np.array([colour_score(lab, c) for lab in labs])
        if s.max() < MIN_COLOUR_SCORE:
            missing.append(f"no object is {c}")
        score *= 0.05 + 0.95 * s / max(s.max(), 1e-9)  # compared, not only named: the most <c> wins
        terms.append(f"colour {c}")
    shapes = {s for s, ws in SHAPE_WORDS.items() for w in words if w in ws}
    if shapes:
        score *= np.array([1.0 if d.shape in shapes else (0.5 if d.shape == "irregular" else 0.25) for d in descs])
        terms.append("shape " + "/".join(sorted(shapes)))
    for w in words:
        if w in SIZE_WORDS:
            key, sign = SIZE_WORDS[w]
            vals = np.array([{"volume": d.volume, "height": d.extents[2], "length": d.extents[0], "width": d.extents[1],
                              "distance": d.distance}[key] for d in descs])
            score *= _extreme(vals, sign)
            terms.append(f"{w} ({key})")
    for w in words:
        if w in POSITION_WORDS:
            axis, sign = POSITION_WORDS[w]
            score *= _extreme(np.array([d.position[axis] for d in descs]), sign)
            terms.append(f"position {w}")
    return score


def ground(query: str, descs: list[ObjectDescription], labs: list[np.ndarray], margin: float = 0.1,
           use_text: bool = True, min_label_similarity: float = 0.25) -> Grounding:
    """The object ``query`` names among ``descs`` (with their points' CIELAB colours ``labs``).
    When every object is labelled and the query names no attribute, a best label matching it
    less than ``min_label_similarity`` (cosine) means no object."""
    q = check_query(query)
    if not descs:
        raise ConfigError("no objects to ground the query in")
    if len(labs) != len(descs):
        raise ConfigError("one colour array per object is needed")
    low = q.lower()
    terms: list[str] = []
    score = np.ones(len(descs))
    # a relation to another object: "the cup left of the red box" -> target "the cup", anchor "the red box"
    for pattern, (axis, sign) in RELATIONS:
        m = re.search(pattern, low)
        if m and low[m.end():].strip():
            anchor_text, low = low[m.end():].strip(), low[: m.start()]
            anchor = ground(anchor_text, descs, labs, margin, use_text, min_label_similarity)
            if anchor.index >= 0:
                a = descs[anchor.index]
                if axis == "near":
                    rel = np.array([-np.linalg.norm(d.centre - a.centre) for d in descs])
                else:
                    rel = np.array([d.position[axis] - a.position[axis] for d in descs]) * sign
                if axis == "near":
                    s = _extreme(rel, 1)
                else:  # on that side, and the nearer the better ("left of the cup" is not the far left)
                    dist = np.array([np.linalg.norm(d.centre - a.centre) for d in descs])
                    s = np.exp(-dist / 0.2) / (1.0 + np.exp(-rel / 0.02))
                s[anchor.index] = 0.0
                score *= 0.02 + s
                terms.append(f"relation {m.group(0).strip()} object {a.id}")
            break
    words = _words(low)
    for k in range(len(words) - 1):  # "far right": an intensifier, not a distance
        if words[k] in ("far", "very", "extreme") and words[k + 1] in POSITION_WORDS:
            words[k] = "very"
    missing: list[str] = []
    score *= _attribute_scores(words, descs, labs, terms, missing)
    content = [w for w in words if w not in STOP and w not in SIZE_WORDS and w not in POSITION_WORDS
               and COLOUR_SYNONYMS.get(w, w) not in COLOUR_NAMES and not any(w in ws for ws in SHAPE_WORDS.values())]
    labelled = [d.label for d in descs]
    text_sim = None
    if use_text and (content or any(labelled)):
        from ros_gs.semantics.text import rank_labels

        texts = [d.label if d.label else d.text() for d in descs]
        sims = np.zeros(len(descs))
        for m in rank_labels(q, texts):
            sims[m.index] = m.score
        text_sim = sims
        if any(labelled):
            if all(labelled) and not terms and sims.max() < min_label_similarity:
                order = np.argsort(-sims, kind="stable")
                cands = [Candidate(int(i), descs[i].id, float(sims[i]), descs[i].text()) for i in order]
                return Grounding(q, cands, -1, message=f"no object matches {q!r} (best: {descs[order[0]].label!r}, "
                                 f"similarity {sims.max():.2f} < {min_label_similarity})")
            terms.append("labels by meaning")
            score *= np.clip(sims, 0.01, None) ** 2
        elif not terms:
            score *= np.clip(sims, 0.01, None)
    order = np.argsort(-score, kind="stable")
    cands = [Candidate(int(i), descs[i].id, float(score[i]), descs[i].text()) for i in order]
    g = Grounding(q, cands, int(order[0]), terms=terms)
    if missing:
        g.index = -1
        g.message = f"{q!r}: " + "; ".join(missing)
    elif not terms:
        # a kind alone ("the drill") cannot be told from colours and shapes without labels or
        # a vision-language model: no guess, the candidates ranked by meaning and their scores
        g.index, g.ambiguous = -1, True
        g.message = (f"{q!r} names no colour, shape, size or position that tells the objects apart, and they have no "
                     f"labels: ambiguous (candidates ranked by the meaning of their descriptions)")
    elif len(cands) > 1 and cands[1].score > (1 - margin) * cands[0].score:
        g.ambiguous = True
        g.message = f"ambiguous: objects {cands[0].id} and {cands[1].id} fit {q!r} almost equally ({cands[0].score:.2f} vs {cands[1].score:.2f})"
    return g
