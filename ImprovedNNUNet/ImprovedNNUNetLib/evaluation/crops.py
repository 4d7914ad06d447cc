"""Per-label bounding boxes, so that every label is measured inside a small crop."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[slice, ...]
# find_objects keeps a list as long as the largest value; above this (and above the voxel count)
# the values present are numbered 1..n first, so cost follows the labels present, not their values
COMPACT_LABELS_ABOVE = 65535


def foreground_box(array: np.ndarray) -> Box | None:
    """Bounding box of all non-zero voxels (None for an all-zero array), with fast reductions."""
    if array.ndim != 3:
        found = np.nonzero(array)
        if found[0].size == 0:
            return None
        return tuple(slice(int(i.min()), int(i.max()) + 1) for i in found)
    rows = np.flatnonzero(array.reshape(array.shape[0], -1).any(axis=1))
    if rows.size == 0:
        return None
    plane = array[rows[0]:rows[-1] + 1].any(axis=0)
    ys, xs = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    return tuple(slice(int(i[0]), int(i[-1]) + 1) for i in (rows, ys, xs))


def label_boxes(array: np.ndarray) -> dict[int, Box]:
    """Bounding box of every non-zero label value present in ``array``.

    One pass for all labels (``scipy.ndimage.find_objects``) over the bounding box of
    the foreground only.
    """
    outer = foreground_box(array)
    if outer is None:
        return {}
    inner = array[outer]
    top = int(inner.max())
    values = None
    if top > max(COMPACT_LABELS_ABOVE, inner.size):  # few labels with big values: number them 1..n first
        values, compact = np.unique(inner, return_inverse=True)
        if values[0] != 0:  # keep 0 as background
            values, compact = np.concatenate([[0], values]), compact + 1
        inner = compact.reshape(inner.shape).astype(np.int32, copy=False)
        top = len(values) - 1
    found = ndimage.find_objects(inner, max_label=top)
    return {
        (int(values[index]) if values is not None else index):
            tuple(slice(o.start + s.start, o.start + s.stop) for o, s in zip(outer, box))
        for index, box in enumerate(found, start=1)
        if box is not None
    }


def present_labels(*arrays: np.ndarray) -> set[int]:
    """The non-zero label values present in any of the arrays."""
    return set().union(*(label_boxes(a).keys() for a in arrays))


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """Smallest box holding both boxes."""
    if a is None or b is None:
        return a if b is None else b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def structure_box(pred_boxes: dict, ref_boxes: dict, key) -> Box | None:
    """The box of a label (value) or region (tuple of values) in both images: every voxel of it on either side."""
    box = None
    for value in (key if isinstance(key, tuple) else (key,)):
        box = union_box(box, union_box(pred_boxes.get(value), ref_boxes.get(value)))
    return box


def mask_in(array: np.ndarray, box: Box, key) -> np.ndarray:
    """The label (``array == key``) or region (any of its values) inside ``box``."""
    crop = array[box]
    return np.isin(crop, key) if isinstance(key, tuple) else crop == key


def padded_mask(array: np.ndarray, box: Box, label) -> np.ndarray:
    """The label or region (:func:`mask_in`) inside ``box`` with one background voxel added on every side.

    The box holds every voxel of the label, so the added layer is background in the
    image too, or lies outside it (the image edge counts as outside).
    """
    return np.pad(np.ascontiguousarray(mask_in(array, box, label)), 1)  # C order: surfel codes use C strides
