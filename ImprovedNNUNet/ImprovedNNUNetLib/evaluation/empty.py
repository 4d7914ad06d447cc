"""The empty-structure policy: metric values when one or both sides have no voxels.

* both empty: Dice = IoU = NSD = 1, HD* = ASSD = 0, sensitivity NaN;
* one side empty: Dice = IoU = NSD = 0, HD* = ASSD = +inf.
"""
from __future__ import annotations

from ImprovedNNUNetLib.evaluation.overlap import Counts
from ImprovedNNUNetLib.evaluation.results import STATUS_BOTH_EMPTY, STATUS_OK, STATUS_PRED_EMPTY, STATUS_REF_EMPTY


def status_of(counts: Counts) -> str:
    """Which case of the policy applies ("ok" when both sides have voxels)."""
    if counts.pred == 0 and counts.ref == 0:
        return STATUS_BOTH_EMPTY
    if counts.pred == 0:
        return STATUS_PRED_EMPTY
    if counts.ref == 0:
        return STATUS_REF_EMPTY
    return STATUS_OK


def surface_metrics_when_empty(status: str) -> dict:
    """HD, HD95, HD99.9, ASSD and NSD for an empty case."""
    if status == STATUS_BOTH_EMPTY:
        return {"hd": 0.0, "hd95": 0.0, "hd99_9": 0.0, "assd": 0.0, "nsd": 1.0}
    inf = float("inf")
    return {"hd": inf, "hd95": inf, "hd99_9": inf, "assd": inf, "nsd": 0.0}
