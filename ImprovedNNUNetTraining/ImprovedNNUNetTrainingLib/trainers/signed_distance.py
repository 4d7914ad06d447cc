"""Normalised signed distance maps (the regression target of Wang and Zhang's distance-map head, after
Ma's SegWithDistMap), computed with the spacing, on the CPU.

The Euclidean distance transforms come from ``edt`` (exact, anisotropic, multi-label): one
multi-label pass gives every label's inside distances at once (the distance of a voxel to the
nearest voxel of another label), and one pass per label its outside distances. The same maps on
the training device: ``signed_distance_torch``.
"""
from __future__ import annotations

from typing import Sequence

import edt
import numpy as np
from scipy import ndimage


def _transform(array: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distance of each non-zero voxel to the nearest voxel of another value; the array edge is not a border."""
    return edt.edt(np.ascontiguousarray(array), anisotropy=tuple(float(s) for s in spacing),
                   black_border=False, parallel=1)


def _normalised(mask: np.ndarray, inside: np.ndarray | None, spacing: Sequence[float]) -> np.ndarray:
    """The signed map of one mask from its inside distances (valid on the mask's voxels; None: computed here)."""
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.float32)
    if mask.all():
        return np.full(mask.shape, -1.0, dtype=np.float32)
    if inside is None:
        inside = _transform(mask.view(np.uint8), spacing)
    inside = np.where(mask, inside, 0.0)
    outside = _transform((~mask).view(np.uint8), spacing)
    sdm = outside / outside.max() - inside / inside.max()
    boundary = mask & ~ndimage.binary_erosion(mask, border_value=1)
    sdm[boundary] = 0.0
    return sdm.astype(np.float32)


def signed_distance_map(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Signed distance of a binary mask in [-1, 1]: negative inside, positive outside, 0 on the boundary.

    Inside and outside distances (Euclidean, in the units of ``spacing``, one value per array
    axis) are each divided by their maximum. The boundary is the mask minus its 6-connected
    erosion; the array edge does not count as background. An empty mask gives all zeros, a
    mask that fills the array gives -1 everywhere (it has no boundary).
    """
    return _normalised(np.asarray(mask, dtype=bool), None, spacing)


def label_distance_maps(label_map: np.ndarray, labels: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """The signed distance map of each label of one label map: (len(labels), *spatial) float32."""
    label_map = np.asarray(label_map)
    shared = label_map.min() >= 0  # one multi-label pass: every positive label's inside distances
    inside = _transform(label_map.astype(np.uint32, copy=False), spacing) if shared else None
    return np.stack([_normalised(label_map == label, inside if label > 0 else None, spacing) for label in labels])


def signed_distance_targets(segmentation: np.ndarray, labels: Sequence[int],
                            spacing: Sequence[float]) -> np.ndarray:
    """Per-label signed distance maps of a batch of label maps.

    ``segmentation``: (B, 1, *spatial) integer labels. Returns (B, len(labels), *spatial) float32.
    """
    return np.stack([label_distance_maps(sample[0], labels, spacing) for sample in segmentation])
