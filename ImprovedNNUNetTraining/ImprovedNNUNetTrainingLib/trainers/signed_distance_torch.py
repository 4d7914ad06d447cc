"""The normalised signed distance maps of ``signed_distance.py``, computed with torch on the training device.

Same definition (Wang and Zhang, after Ma's SegWithDistMap): exact Euclidean distances in
the units of the spacing, inside and outside each divided by its maximum, 0 on the 6-connected
boundary, all zeros for an empty mask and -1 everywhere for a full one. The distance transform is
the separable exact one (squared distances, one axis after the other: along the first axis the
distance to the nearest source in the line, then along each further axis the lower envelope
``min_j f[j] + (spacing · (i - j))²``), computed for all labels and samples of a batch at once, so
on a GPU the targets cost a few milliseconds of the step instead of the data-loading workers' time.
"""
from __future__ import annotations

from typing import Sequence

import torch

_FAR = 1e20  # "no source in this line yet"; finite so that sums stay ordered
_CHUNK_ELEMENTS = 1 << 26  # bound on the (rows, n, n) intermediate of one envelope step (256 MiB float32)


def _first_axis_squared(sources: torch.Tensor, step: float) -> torch.Tensor:
    """Squared distance along the last axis to the nearest True of ``sources`` in the same line."""
    n = sources.shape[-1]
    index = torch.arange(n, device=sources.device, dtype=torch.float32).expand_as(sources)
    before = torch.where(sources, index, torch.full_like(index, -_FAR))
    before = torch.cummax(before, dim=-1).values
    after = torch.where(sources, index, torch.full_like(index, _FAR)).flip(-1)
    after = torch.cummin(after, dim=-1).values.flip(-1)
    nearest = torch.minimum(index - before, after - index)
    squared = (nearest * step) ** 2
    return torch.where(nearest >= _FAR / 2, torch.full_like(squared, _FAR), squared)


def _lower_envelope(lines: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``out[r, i] = min_j lines[r, j] + offsets[i, j]``."""
    return torch.amin(lines[:, None, :] + offsets[None], dim=-1)


_compiled = {"envelope": None, "failed": False}


def _envelope_function(device: torch.device):
    """The lower envelope, compiled on CUDA (the sum and the minimum fuse into one kernel, so the
    (rows, n, n) intermediate is never written); plain torch elsewhere or if compiling fails."""
    if device.type != "cuda" or _compiled["failed"]:
        return _lower_envelope
    if _compiled["envelope"] is None:
        _compiled["envelope"] = torch.compile(_lower_envelope, dynamic=False)
    return _compiled["envelope"]


def _envelope_last_axis(squared: torch.Tensor, step: float) -> torch.Tensor:
    """``out[..., i] = min_j squared[..., j] + (step · (i - j))²`` (exact; chunked over the lines)."""
    n = squared.shape[-1]
    lines = squared.reshape(-1, n)
    index = torch.arange(n, device=squared.device, dtype=torch.float32)
    offsets = ((index[:, None] - index[None, :]) * step) ** 2  # (i, j)
    rows = max(1, _CHUNK_ELEMENTS // (n * n))
    out = torch.empty_like(lines)
    envelope = _envelope_function(squared.device)
    for start in range(0, lines.shape[0], rows):
        chunk = lines[start:start + rows]
        try:
            out[start:start + rows] = envelope(chunk, offsets)
        except Exception:  # noqa: BLE001 - a compiler problem must not stop a training: fall back, once
            if envelope is _lower_envelope:
                raise
            _compiled["failed"] = True
            envelope = _lower_envelope
            out[start:start + rows] = envelope(chunk, offsets)
    return out.reshape(squared.shape)


def euclidean_distance(sources: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """Distance of every voxel to the nearest True voxel of ``sources`` (N, *spatial), in the units of
    ``spacing`` (one value per spatial axis). Maps without any source get a huge value everywhere."""
    dims = sources.dim() - 1
    spatial = list(range(1, dims + 1))
    squared = None
    for position, axis in enumerate(spatial):
        step = float(spacing[axis - 1])
        if position == 0:
            squared = _first_axis_squared(sources.movedim(axis, -1), step).movedim(-1, axis)
        else:
            squared = _envelope_last_axis(squared.movedim(axis, -1).contiguous(), step).movedim(-1, axis)
    return torch.sqrt(squared)


def _boundary(masks: torch.Tensor) -> torch.Tensor:
    """Mask voxels with a 6-neighbour outside the mask (the array edge does not count as outside)."""
    dims = masks.dim() - 1
    padded = torch.nn.functional.pad(masks, (1, 1) * dims, value=True)
    eroded = masks.clone()
    inner = [slice(1, -1)] * dims
    for axis in range(dims):  # the neighbour before and the one after, along each axis
        for start in (0, 2):
            index = list(inner)
            index[axis] = slice(start, start + masks.shape[axis + 1])
            eroded &= padded[(slice(None), *index)]
    return masks & ~eroded


def signed_distance_maps(masks: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """Normalised signed distance map of each binary mask of ``masks`` (N, *spatial), float32 in [-1, 1]."""
    masks = masks.bool()
    dims = masks.dim() - 1
    reduce = tuple(range(1, dims + 1))
    inside = euclidean_distance(~masks, spacing).masked_fill(~masks, 0.0)   # mask voxels: to the nearest background
    outside = euclidean_distance(masks, spacing).masked_fill(masks, 0.0)    # background: to the nearest mask voxel
    shape = (-1,) + (1,) * dims
    inside_max = inside.amax(dim=reduce).reshape(shape)
    outside_max = outside.amax(dim=reduce).reshape(shape)
    sdm = outside / outside_max.clamp_min(1e-12) - inside / inside_max.clamp_min(1e-12)
    sdm = sdm.masked_fill(_boundary(masks), 0.0)
    empty = ~masks.flatten(1).any(dim=1)
    full = masks.flatten(1).all(dim=1)
    sdm = torch.where(empty.reshape(shape), torch.zeros_like(sdm), sdm)
    sdm = torch.where(full.reshape(shape), torch.full_like(sdm, -1.0), sdm)
    return sdm.float()


def signed_distance_targets(segmentation: torch.Tensor, labels: Sequence[int], spacing: Sequence[float]) -> torch.Tensor:
    """Per-label signed distance maps of a batch of label maps, on the batch's device.

    ``segmentation``: (B, 1, *spatial) integer labels. Returns (B, len(labels), *spatial) float32.
    """
    with torch.autocast(segmentation.device.type, enabled=False):  # exact float32 arithmetic inside a training step
        return _targets(segmentation, labels, spacing)


def _targets(segmentation: torch.Tensor, labels: Sequence[int], spacing: Sequence[float]) -> torch.Tensor:
    label_map = segmentation[:, 0]
    label_values = torch.as_tensor(list(labels), device=segmentation.device, dtype=label_map.dtype)
    masks = label_map[:, None] == label_values.reshape(1, -1, *([1] * (label_map.dim() - 1)))
    batch, count = masks.shape[:2]
    return signed_distance_maps(masks.reshape(batch * count, *masks.shape[2:]), spacing).reshape(masks.shape)
