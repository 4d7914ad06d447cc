"""Per-label bounding boxes, so that every label is measured inside a small crop."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[slice, slice, slice]


def foreground_box(array: np.ndarray) -> Box | None:
    """Bounding box of all non-zero voxels (None for an all-zero array), with fast reductions."""
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
    found = ndimage.find_objects(inner, max_label=int(inner.max()))
    return {
        value: tuple(slice(o.start + s.start, o.start + s.stop) for o, s in zip(outer, box))
        for value, box in enumerate(found, start=1)
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


def padded_mask(array: np.ndarray, box: Box, label: int) -> np.ndarray:
    """``array == label`` inside ``box`` with one background voxel added on every side.

    The box holds every voxel of the label, so the added layer is background in the
    image too, or lies outside it (the image edge counts as outside).
    """
    return np.pad(array[box] == label, 1)
