"""Connected components of a sparse mask, found where the mask is, not over the whole image.

Labelling a 512×512×300 volume takes seconds with any library, even when it holds a hundred small lesions.
Here the mask is first reduced to blocks of ``BLOCK``³ voxels; the occupied blocks are grouped into
26-connected groups (a tiny image), and each group is labelled at full resolution inside its own bounding
box only. Two voxels that touch (any connectivity) lie in blocks that touch, so every component lies inside
one group: the result is exactly that of labelling the whole image (``scipy.ndimage.label``), numbered in
the order of each component's first voxel in C order, as scipy and cc3d number them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ImprovedNNUNetLib.core.errors import UserError

BLOCK = 8
FULL = {3: 26, 2: 8}
ALLOWED = {3: (6, 18, 26), 2: (4, 8)}


@dataclass
class Component:
    """One connected component: its box in the image, its mask inside the box, its voxel count."""

    box: tuple[slice, ...]
    mask: np.ndarray
    size: int
    first: tuple[int, ...]  # index of its first voxel in C order: the numbering order

    def within(self, box: tuple[slice, ...]) -> np.ndarray:
        """The mask placed in a larger ``box`` of the same image (background elsewhere)."""
        out = np.zeros(tuple(s.stop - s.start for s in box), bool)
        out[tuple(slice(a.start - s.start, a.stop - s.start) for a, s in zip(self.box, box))] = self.mask
        return out

    def centre(self) -> tuple[float, ...]:
        """Centre of mass in array indices of the image."""
        return tuple(float(c) + s.start for c, s in zip(ndimage.center_of_mass(self.mask), self.box))


def structure_for(connectivity: int | None, ndim: int) -> np.ndarray:
    """The neighbourhood of a connectivity (6/18/26 in 3-D, 4/8 in 2-D; None: the full one)."""
    connectivity = FULL[ndim] if connectivity is None else int(connectivity)
    if connectivity not in ALLOWED[ndim]:
        raise UserError(f"connectivity {connectivity} is not defined in {ndim}-D; use one of "
                        f"{', '.join(map(str, ALLOWED[ndim]))}")
    rank = {6: 1, 18: 2, 26: 3, 4: 1, 8: 2}[connectivity]
    return ndimage.generate_binary_structure(ndim, rank)


def _blocks(mask: np.ndarray) -> np.ndarray:
    """Which ``BLOCK``-sized blocks hold a voxel of ``mask``: from the voxels' indices when they are few (a scan
    that finds them is far faster than a reduction over the image), else by reductions, last axis first."""
    shape = tuple(-(-n // BLOCK) for n in mask.shape)
    if np.count_nonzero(mask) * 16 < mask.size:
        where = np.unravel_index(np.flatnonzero(mask), mask.shape)
        out = np.zeros(shape, bool)
        out[tuple(w // BLOCK for w in where)] = True
        return out
    out = mask
    for axis in reversed(range(mask.ndim)):
        out = np.logical_or.reduceat(out, np.arange(0, mask.shape[axis], BLOCK), axis=axis)
    return out


def groups(mask: np.ndarray) -> list[tuple[tuple[slice, ...], np.ndarray | None]]:
    """The groups of touching occupied blocks of ``mask``: (box, member) each, where ``member`` marks the voxels
    of the box that belong to the group (None when the box holds no other group). Voxels of two groups are at
    least one empty block apart, so nothing that looks one voxel around a voxel sees two groups."""
    if not mask.any():
        return []
    labelled, n_groups = ndimage.label(_blocks(mask), np.ones((3,) * mask.ndim, bool))
    out = []
    for index, group_box in enumerate(ndimage.find_objects(labelled), start=1):
        box = tuple(slice(g.start * BLOCK, min(g.stop * BLOCK, n)) for g, n in zip(group_box, mask.shape))
        member = None
        if n_groups > 1:
            member = labelled[group_box] == index
            for axis in range(mask.ndim):
                member = np.repeat(member, BLOCK, axis=axis)
            member = member[tuple(slice(0, s.stop - s.start) for s in box)]
        out.append((box, member))
    return out


def components(mask: np.ndarray, connectivity: int | None = None) -> list[Component]:
    """The connected components of a boolean ``mask``, in scipy's numbering order."""
    structure = structure_for(connectivity, mask.ndim)
    found: list[Component] = []
    for box, member in groups(mask):
        inside = mask[box] if member is None else mask[box] & member
        labelled, count = ndimage.label(inside, structure)
        for number, sub in enumerate(ndimage.find_objects(labelled, count), start=1):
            piece = labelled[sub] == number
            at = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box, sub))
            first_local = np.unravel_index(int(np.argmax(piece)), piece.shape)
            first_index = tuple(a.start + f for a, f in zip(at, first_local))
            found.append(Component(at, piece, int(np.count_nonzero(piece)), first_index))
    found.sort(key=lambda c: c.first)
    return found
