"""Surfaces of a binary mask, in the two forms the distance metrics are defined on.

* Boundary voxels (Hausdorff distances, ASSD): voxels of the mask with at least one
  6-connected (4-connected in 2-D) neighbour outside it, i.e. mask XOR its erosion.
  Their centres are the surface points.
* Surfels (NSD): the corners of the voxel grid where the 2×2×2 (2×2 in 2-D) neighbourhood
  is neither all inside nor all outside. Each such corner carries the marching-cubes
  surface area (marching-squares contour length in 2-D) of its neighbourhood code (the
  definition of Nikolov et al., as implemented by DeepMind's ``surface-distance``, whose
  per-code tables are used).

Masks passed here are 3-D or 2-D, padded with one background voxel on every side.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass
class Surface:
    """Surface points as a boolean grid, their (N, 3) indices in grid order, and their areas.

    A surface found piece by piece (:func:`boundary_surfaces`, :func:`surfel_surfaces` of several groups) has no
    grid of the whole image (allocating one cost more than the rest of a large organ's surface): ``parts`` holds
    each piece's (offset, grid, number of points), its points being the pieces' points in that order."""

    mask: np.ndarray | None
    points: np.ndarray
    areas: np.ndarray | None = None
    parts: tuple = ()

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> "Surface":
        return cls(mask, np.argwhere(mask))

    def holds(self, other: "Surface") -> np.ndarray:
        """Which of ``other``'s points are points of this surface too (both found from the same pieces)."""
        if self.mask is not None:
            return self.mask[tuple(other.points.T)]
        held, start = [], 0
        for (offset, grid, _), (_, _, count) in zip(self.parts, other.parts):
            local = other.points[start:start + count] - np.asarray(offset)
            held.append(grid[tuple(local.T)])
            start += count
        return np.concatenate(held) if held else np.zeros(0, bool)


def boundary_voxels(padded: np.ndarray) -> np.ndarray:
    """Boundary voxels of the unpadded region: mask minus its face-connected erosion."""
    ndim = padded.ndim
    core = padded[(slice(1, -1),) * ndim]
    interior = core.copy()
    for axis in range(ndim):
        for shift in (0, 2):
            index = [slice(1, -1)] * ndim
            index[axis] = slice(shift, shift + core.shape[axis])
            interior &= padded[tuple(index)]
    return core & ~interior


def _pairwise(mask: np.ndarray, op) -> np.ndarray:
    """``op`` over each 2×2×2 (2×2) block of voxels: one value per grid corner (shape - 1)."""
    out = mask
    for axis in range(mask.ndim):
        low = [slice(None)] * mask.ndim
        high = [slice(None)] * mask.ndim
        low[axis], high[axis] = slice(None, -1), slice(1, None)
        out = op(out[tuple(low)], out[tuple(high)])
    return out


def mixed_corners(padded: np.ndarray) -> np.ndarray:
    """Grid corners whose 2×2×2 (2×2) neighbourhood is neither all inside nor all outside."""
    return _pairwise(padded, np.logical_or) & ~_pairwise(padded, np.logical_and)


def neighbour_codes(padded: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Code of the 2×2×2 (8 bits; 2×2 in 2-D: 4 bits) neighbourhood of each corner in ``corners``
    ((N, ndim) indices).

    Corner (i, j, k) has the voxels (i..i+1, j..j+1, k..k+1) of ``padded`` around it.
    The highest bit is the voxel at the lowest index along all axes and bit 0 the one at
    the highest, the ordering of DeepMind's area and contour-length tables.
    """
    padded = np.ascontiguousarray(padded)  # flat indices below are C order: the strides must be too
    flat_mask = padded.reshape(-1).view(np.uint8)
    flat = np.ravel_multi_index(tuple(corners.T), padded.shape)
    strides = np.array(padded.strides) // padded.itemsize
    ndim = padded.ndim
    code = np.zeros(len(corners), dtype=np.uint8)
    for offsets in np.ndindex(*(2,) * ndim):
        position = int("".join(map(str, offsets)), 2)
        shift = 2**ndim - 1 - position
        code |= flat_mask[flat + int(np.dot(offsets, strides))] << shift
    return code


@lru_cache(maxsize=32)
def surfel_area_table(spacing: tuple[float, ...]) -> np.ndarray:
    """Surface area (mm²) of each of the 256 neighbourhood codes for this spacing; in 2-D the contour
    length (mm) of each of the 16 codes."""
    from surface_distance.lookup_tables import (
        create_table_neighbour_code_to_contour_length,
        create_table_neighbour_code_to_surface_area,
    )

    table = create_table_neighbour_code_to_contour_length if len(spacing) == 2 else \
        create_table_neighbour_code_to_surface_area
    return np.asarray(table(list(spacing)), dtype=np.float64)


def boundary_surface(padded: np.ndarray) -> Surface:
    """The boundary voxels as a :class:`Surface` (HD, ASSD)."""
    return Surface.from_mask(boundary_voxels(padded))


def surfel_surface(padded: np.ndarray, spacing) -> Surface:
    """The surfel corners with their areas (mm²) as a :class:`Surface` (NSD)."""
    corners = mixed_corners(padded)
    points = np.argwhere(corners)
    areas = surfel_area_table(tuple(float(s) for s in spacing))[neighbour_codes(padded, points)]
    return Surface(corners, points, areas)


def pieces(p: np.ndarray, g: np.ndarray) -> list:
    """(offset, p piece, g piece) per group of nearby structure (:func:`.components.groups`): each piece is the
    group's box grown by one voxel of context, other groups' voxels cleared. Surfaces found in the pieces,
    shifted by ``offset``, are those of the whole masks: groups lie at least a block apart."""
    from ImprovedNNUNetLib.evaluation.components import groups

    parts = groups(p | g)
    if len(parts) <= 1:
        return [((0,) * p.ndim, p, g)]
    out = []
    for box, member in parts:
        grown = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, p.shape))
        sub_p, sub_g = p[grown], g[grown]
        if member is not None:
            widths = [(s.start - o.start, o.stop - s.stop) for s, o in zip(box, grown)]
            member = np.pad(member, widths, mode="edge")
            sub_p, sub_g = sub_p & member, sub_g & member
        out.append((tuple(s.start for s in grown), sub_p, sub_g))
    return out


def _joined(ndim: int, found: list[tuple[tuple, Surface]], with_areas: bool) -> Surface:
    points = np.concatenate([s.points + np.asarray(o) for o, s in found]) if found else np.zeros((0, ndim), int)
    areas = np.concatenate([s.areas for _, s in found]) if with_areas and found else None
    return Surface(None, points, areas, tuple((o, s.mask, len(s.points)) for o, s in found))


def boundary_surfaces(p: np.ndarray, g: np.ndarray, parts: list | None = None) -> tuple[Surface, Surface]:
    """:func:`boundary_surface` of both padded masks, found near the structures only (``parts``: their
    :func:`pieces`, when known)."""
    parts = pieces(p, g) if parts is None else parts
    if len(parts) == 1:
        return boundary_surface(p), boundary_surface(g)
    return tuple(_joined(p.ndim, [(o, boundary_surface(m[k])) for o, *m in parts], False)  # type: ignore[misc]
                 for k in (0, 1))


def surfel_surfaces(p: np.ndarray, g: np.ndarray, spacing, parts: list | None = None) -> tuple[Surface, Surface]:
    """:func:`surfel_surface` of both padded masks, found near the structures only."""
    parts = pieces(p, g) if parts is None else parts
    if len(parts) == 1:
        return surfel_surface(p, spacing), surfel_surface(g, spacing)
    return tuple(_joined(p.ndim, [(o, surfel_surface(m[k], spacing)) for o, *m in parts], True)  # type: ignore[misc]
                 for k in (0, 1))
