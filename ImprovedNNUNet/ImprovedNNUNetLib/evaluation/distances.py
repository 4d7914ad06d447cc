"""Surface distances and the metrics built on them (HD, HDp, ASSD, NSD)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def directed_distances(from_points: np.ndarray, to_points: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from each point of ``from_points`` to the nearest of ``to_points``.

    Both are boolean grids of the same shape holding all points of both sets; the
    Euclidean distance transform runs on that grid only. Values come in grid order.
    """
    field = ndimage.distance_transform_edt(~to_points, sampling=spacing)
    return field[from_points]


def hausdorff(d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray, percentile: float = 100.0) -> float:
    """Max of the two directed p-th percentiles (linear interpolation); p=100 is HD."""
    return float(max(np.percentile(d_pred_to_ref, percentile), np.percentile(d_ref_to_pred, percentile)))


def assd(d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray) -> float:
    """Mean of all directed distances of both directions together."""
    return float((d_pred_to_ref.sum() + d_ref_to_pred.sum()) / (d_pred_to_ref.size + d_ref_to_pred.size))


def surface_dice(d_pred_to_ref, area_pred, d_ref_to_pred, area_ref, tau_mm: float) -> float:
    """Normalised surface Dice: surfel area within ``tau_mm`` of the other surface, both ways."""
    close = area_pred[d_pred_to_ref <= tau_mm].sum() + area_ref[d_ref_to_pred <= tau_mm].sum()
    return float(close / (area_pred.sum() + area_ref.sum()))
