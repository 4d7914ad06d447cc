"""Per-label bounding boxes, so that every label is measured inside a small crop."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[slice, slice, slice]


def label_boxes(array: np.ndarray, labels) -> dict[int, Box | None]:
    """Bounding box of each label value in ``array`` (None where the label is absent).

    One pass over the image for all labels (``scipy.ndimage.find_objects``).
    """
    labels = [int(v) for v in labels]
    if not labels:
        return {}
    found = ndimage.find_objects(array, max_label=max(labels))
    return {v: found[v - 1] for v in labels}


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
