"""Predictions on another grid are compared in physical space; disjoint grids are refused."""
import numpy as np
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation import compute_metrics, error_maps

ORIGIN = (-20.0, 10.0, 5.0)


def _reference():
    a = np.zeros((10, 20, 20), np.uint8)
    a[3:7, 5:15, 6:14] = 1
    a[2:5, 1:4, 1:4] = 2
    return Image(a, spacing=(2.0, 2.0, 2.0), origin=ORIGIN)


def test_finer_grid_is_resampled_and_reported():
    ref = _reference()
    fine = np.repeat(np.repeat(np.repeat(ref.array, 2, 0), 2, 1), 2, 2)
    # voxel centres of the 1 mm grid sit ±0.5 mm around the 2 mm centres
    pred = Image(fine, spacing=(1.0, 1.0, 1.0), origin=tuple(o - 0.5 for o in ORIGIN))
    result = compute_metrics(pred, ref)
    assert result.resampled
    assert "resampled (nearest neighbour)" in result.notes[0]
    for m in result.labels.values():
        assert (m.dice, m.hd) == (1.0, 0.0)


def test_shifted_origin_is_a_physical_shift():
    ref = _reference()
    pred = Image(ref.array, spacing=ref.spacing, origin=(ORIGIN[0] + 2.0, ORIGIN[1], ORIGIN[2]))
    result = compute_metrics(pred, ref)
    assert result.resampled
    m = result[1]
    assert m.hd == pytest.approx(2.0)  # one voxel along x, in mm
    assert m.dice == pytest.approx(2 * 7 / 16)  # 8 columns along x, 7 still overlap
    maps = error_maps(pred, ref)
    assert maps.resample_note and maps.fp(1).sum() == maps.fn(1).sum() == 4 * 10


def test_grids_that_do_not_overlap_are_refused():
    ref = _reference()
    far = Image(ref.array, spacing=ref.spacing, origin=(ORIGIN[0] + 1000.0, ORIGIN[1], ORIGIN[2]))
    with pytest.raises(UserError, match="do not overlap"):
        compute_metrics(far, ref)


def test_rotated_grid_is_resampled():
    ref = _reference()
    # the same array with its x and y axes swapped, described by a direction matrix
    swapped = np.ascontiguousarray(ref.array.transpose(0, 2, 1))
    direction = (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    pred = Image(swapped, spacing=ref.spacing, origin=ORIGIN, direction=direction)
    result = compute_metrics(pred, ref)
    assert result.resampled and result[1].dice == 1.0 and result[2].dice == 1.0
