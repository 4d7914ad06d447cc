"""Surface distances and the metrics built on them (HD, HDp, ASSD, NSD)."""
from __future__ import annotations

import os

import numpy as np
from scipy.spatial import cKDTree

_query_workers: int | None = None  # threads of each k-d tree query; None: every core


def set_query_workers(workers: int | None) -> None:
    """Threads per k-d tree query; evaluation worker processes use 1 (the processes share the cores)."""
    global _query_workers
    _query_workers = workers


def directed_distances(
    from_points: np.ndarray, to_points: np.ndarray, to_mask: np.ndarray, spacing, within_mm: float | None = None
) -> np.ndarray:
    """Distance (mm) from each of ``from_points`` to the nearest of ``to_points``.

    Points are (N, 3) integer grid indices; ``to_mask`` is the boolean grid holding
    ``to_points``. Points on the other surface get 0 without a search; the others
    query a k-d tree of the other surface, so the cost follows the number of surface
    points, not the size of the image. The distance to the nearest point is computed
    from the index difference times the spacing, as an exact distance transform does.
    With ``within_mm``, only distances up to that bound are searched and the others
    are returned as +inf (enough for a tolerance test, and much faster).
    """
    distances = np.zeros(len(from_points))
    off_surface = ~to_mask[tuple(from_points.T)]
    if not off_surface.any():
        return distances
    spacing = np.asarray(spacing, dtype=np.float64)
    rest = from_points[off_surface]
    tree = cKDTree(to_points * spacing, leafsize=16, balanced_tree=False, compact_nodes=False)
    # a bound a little above within_mm, so rounding in the tree never drops a point at the bound
    bound = np.inf if within_mm is None else within_mm * (1 + 1e-9) + 1e-9
    _, nearest = tree.query(rest * spacing, distance_upper_bound=bound, workers=_query_workers or os.cpu_count() or 1)
    found = nearest < len(to_points)
    delta = (to_points[nearest[found]] - rest[found]) * spacing
    exact = np.full(len(rest), np.inf)
    exact[found] = np.sqrt(np.add.reduce(delta * delta, axis=1))
    distances[off_surface] = exact
    return distances


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
