"""Instance segmentation scored against reference masks: precision and recall of instances
matched one-to-one at an IoU threshold (the usual instance-segmentation measure)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class InstanceMatches:
    true_positives: int
    predicted: int
    reference: int
    ious: list[float]  # of the matched pairs

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.reference if self.reference else 1.0


def instance_matches(pred: np.ndarray, ref: np.ndarray, iou: float = 0.5) -> InstanceMatches:
    """Predicted ids (H, W; > 0 instances) against reference ids: a one-to-one matching that
    maximises IoU (Hungarian), pairs at or above ``iou`` count."""
    p_ids = np.unique(pred[pred > 0])
    r_ids = np.unique(ref[ref > 0])
    if len(p_ids) == 0 or len(r_ids) == 0:
        return InstanceMatches(0, len(p_ids), len(r_ids), [])
    pi = np.searchsorted(p_ids, pred)
    ri = np.searchsorted(r_ids, ref)
    both = (pred > 0) & (ref > 0)
    inter = np.zeros((len(p_ids), len(r_ids)))
    np.add.at(inter, (pi[both], ri[both]), 1)
    p_area = np.array([(pred == i).sum() for i in p_ids])
    r_area = np.array([(ref == i).sum() for i in r_ids])
    union = p_area[:, None] + r_area[None, :] - inter
    ious = inter / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(-ious)
    good = ious[rows, cols] >= iou
    return InstanceMatches(int(good.sum()), len(p_ids), len(r_ids), [float(v) for v in ious[rows, cols][good]])
