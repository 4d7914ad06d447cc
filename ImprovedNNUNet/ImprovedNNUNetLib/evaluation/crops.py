"""Per-label bounding boxes, so that every label is measured inside a small crop."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[slice, slice, slice]


def label_boxes(array: np.ndarray) -> dict[int, Box]:
    """Bounding box of every non-zero label value present in ``array``.

    One pass over the image for all labels (``scipy.ndimage.find_objects``).
    """
    top = int(array.max()) if array.size else 0
    if top == 0:
        return {}
    found = ndimage.find_objects(array, max_label=top)
    return {value: box for value, box in enumerate(found, start=1) if box is not None}


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
