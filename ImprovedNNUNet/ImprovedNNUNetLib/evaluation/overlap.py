"""Voxel-count metrics: Dice, IoU, sensitivity, specificity, accuracy, MCC, RVD and volumes."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Voxel counts of one label; ``total`` is the number of voxels in the whole image."""

    pred: int
    ref: int
    both: int
    total: int

    @classmethod
    def of(cls, pred_mask: np.ndarray, ref_mask: np.ndarray, total: int) -> "Counts":
        """Counts from two masks that hold every voxel of the label (a crop is enough)."""
        return cls(
            int(np.count_nonzero(pred_mask)),
            int(np.count_nonzero(ref_mask)),
            int(np.count_nonzero(pred_mask & ref_mask)),
            int(total),
        )

    @property
    def fp(self) -> int:
        return self.pred - self.both

    @property
    def fn(self) -> int:
        return self.ref - self.both

    @property
    def tn(self) -> int:
        return self.total - self.pred - self.ref + self.both


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def dice(c: Counts) -> float:
    """2|P∩G| / (|P|+|G|); 1 when both are empty."""
    return _ratio(2 * c.both, c.pred + c.ref) if c.pred + c.ref else 1.0


def iou(c: Counts) -> float:
    """|P∩G| / |P∪G|; 1 when both are empty."""
    union = c.pred + c.ref - c.both
    return _ratio(c.both, union) if union else 1.0


def sensitivity(c: Counts) -> float:
    """TP / (TP+FN); NaN without reference voxels."""
    return _ratio(c.both, c.ref)


def specificity(c: Counts) -> float:
    """TN / (TN+FP) over the whole image; NaN when the reference fills the image."""
    return _ratio(c.tn, c.tn + c.fp)


def accuracy(c: Counts) -> float:
    """(TP+TN) / all voxels of the image."""
    return _ratio(c.both + c.tn, c.total)


def mcc(c: Counts) -> float:
    """Matthews correlation coefficient (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); NaN when a
    factor is 0 (a side empty or full), 1 when both sides are empty."""
    if c.pred == 0 and c.ref == 0:
        return 1.0
    tp, tn, fp, fn = float(c.both), float(c.tn), float(c.fp), float(c.fn)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else float("nan")


def rvd(c: Counts) -> float:
    """Relative volume difference (|P| − |G|) / |G|; NaN without reference voxels (0 when both are empty)."""
    if c.pred == 0 and c.ref == 0:
        return 0.0
    return _ratio(c.pred - c.ref, c.ref)


def volume_ml(voxels: int, spacing) -> float:
    """Volume of ``voxels`` voxels in millilitres (spacing in mm); for 2-D images (two spacings) the
    area in mm²."""
    return voxels * float(np.prod(spacing)) / (1000.0 if len(spacing) == 3 else 1.0)
