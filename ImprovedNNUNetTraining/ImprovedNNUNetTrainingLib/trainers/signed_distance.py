"""Normalised signed distance maps (the SegWithDistMap definition of seed 001), computed with the spacing."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage


def _inside_distance(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distance of every mask voxel to the nearest background voxel, computed on the mask's bounding
    box grown by one voxel (clipped to the array): that ring is background, and no background
    voxel beyond it is nearer, so the result equals the transform of the whole array."""
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(mask))
    inside = np.zeros(mask.shape, dtype=np.float64)
    inside[box] = ndimage.distance_transform_edt(mask[box], sampling=spacing)
    return inside


def signed_distance_map(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Signed distance of a binary mask in [-1, 1]: negative inside, positive outside, 0 on the boundary.

    Inside and outside distances (Euclidean, in the units of ``spacing``, one value per array
    axis) are each divided by their maximum. The boundary is the mask minus its 6-connected
    erosion; the array edge does not count as background. An empty mask gives all zeros, a
    mask that fills the array gives -1 except on nothing (it has no boundary).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.float32)
    if mask.all():
        return np.full(mask.shape, -1.0, dtype=np.float32)
    inside = _inside_distance(mask, spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    sdm = outside / outside.max() - inside / inside.max()
    boundary = mask & ~ndimage.binary_erosion(mask, border_value=1)
    sdm[boundary] = 0.0
    return sdm.astype(np.float32)


def label_distance_maps(label_map: np.ndarray, labels: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """The signed distance map of each label of one label map: (len(labels), *spatial) float32."""
    return np.stack([signed_distance_map(label_map == label, spacing) for label in labels])


def signed_distance_targets(segmentation: np.ndarray, labels: Sequence[int],
                            spacing: Sequence[float]) -> np.ndarray:
    """Per-label signed distance maps of a batch of label maps.

    ``segmentation``: (B, 1, *spatial) integer labels. Returns (B, len(labels), *spatial) float32.
    """
    return np.stack([label_distance_maps(sample[0], labels, spacing) for sample in segmentation])
