"""Bringing a prediction onto the reference grid (physical space, nearest neighbour)."""
from __future__ import annotations

import itertools

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image


def _index_to_physical(image: Image) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and offset mapping continuous (x, y, z) indices to physical (x, y, z) mm."""
    direction = np.asarray(image.direction, dtype=float).reshape(3, 3)
    return direction @ np.diag(image.spacing), np.asarray(image.origin, dtype=float)


def _extent_corners(image: Image) -> np.ndarray:
    """The 8 outer corners of the image's voxels, as continuous (x, y, z) indices."""
    size_xyz = image.array.shape[::-1]
    return np.array([[c - 0.5 for c in corner] for corner in itertools.product(*[(0, n) for n in size_xyz])])


def grids_overlap(a: Image, b: Image) -> bool:
    """Whether the voxel extents of two images intersect in physical space.

    Tested in both index spaces (separating-axis test along the axes of each grid).
    """
    def inside_bounds(moving: Image, fixed: Image) -> bool:
        m_mat, m_off = _index_to_physical(moving)
        f_mat, f_off = _index_to_physical(fixed)
        physical = _extent_corners(moving) @ m_mat.T + m_off
        in_fixed = (physical - f_off) @ np.linalg.inv(f_mat).T
        low, high = in_fixed.min(axis=0), in_fixed.max(axis=0)
        size = np.array(fixed.array.shape[::-1])
        eps = 1e-6
        return bool(np.all(high > -0.5 + eps) and np.all(low < size - 0.5 - eps))

    return inside_bounds(a, b) and inside_bounds(b, a)


def align_to_reference(pred: Image, ref: Image) -> tuple[Image, str | None]:
    """``pred`` on the grid of ``ref`` and a note when it had to be resampled.

    Nearest-neighbour resampling in physical space; voxels of the reference grid outside
    the prediction become background. UserError when the grids do not overlap.
    """
    if pred.same_grid(ref):
        return pred, None
    if not grids_overlap(pred, ref):
        raise UserError(
            "prediction and reference do not overlap in physical space (check origin, spacing and "
            "direction); pass a prediction made for this reference image"
        )
    import SimpleITK as sitk

    moving = pred.to_sitk()
    resampled = sitk.Resample(moving, ref.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor, 0, moving.GetPixelID())
    note = f"prediction resampled (nearest neighbour) to the reference grid: {grid_difference(pred, ref)}"
    return ref.with_array(sitk.GetArrayFromImage(resampled)), note


def _fmt(values, sep="×") -> str:
    return sep.join(f"{v:.6g}" for v in values)


def grid_difference(pred: Image, ref: Image) -> str:
    """What differs between two grids, e.g. ``origin (0, 0, 0) mm vs (0, 0, 2) mm``."""
    parts = []
    if pred.array.shape != ref.array.shape:
        parts.append(f"size {_fmt(pred.array.shape[::-1])} vs {_fmt(ref.array.shape[::-1])} voxels")
    if not np.allclose(pred.spacing, ref.spacing, atol=1e-4):
        parts.append(f"spacing {_fmt(pred.spacing)} vs {_fmt(ref.spacing)} mm")
    if not np.allclose(pred.origin, ref.origin, atol=1e-3):
        parts.append(f"origin ({_fmt(pred.origin, ', ')}) vs ({_fmt(ref.origin, ', ')}) mm")
    if not np.allclose(pred.direction, ref.direction, atol=1e-4):
        parts.append(f"direction ({_fmt(pred.direction, ', ')}) vs ({_fmt(ref.direction, ', ')})")
    return "; ".join(parts) + " (prediction vs reference)"
