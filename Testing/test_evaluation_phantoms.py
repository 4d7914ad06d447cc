"""Analytic phantoms on anisotropic grids: values known in closed form."""
import math

import numpy as np
import pytest

from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation import compute_metrics, compute_metrics_arrays

SPHERE_SPACING = (1.6, 0.8, 0.8)  # (z, y, x) mm


def _ball(radius_mm, shape=(30, 60, 60), spacing=SPHERE_SPACING):
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    return (zz**2 + yy**2 + xx**2 <= radius_mm**2).astype(np.uint8)


@pytest.mark.parametrize("r, k", [(10.0, 3.0), (12.0, 4.0)])
def test_sphere_r_against_r_plus_k(r, k):
    step = max(SPHERE_SPACING)
    ref, pred = _ball(r), _ball(r + k)
    m = compute_metrics_arrays(pred, ref, SPHERE_SPACING)[1]
    # Surface points are voxel centres: each lies within half a voxel step of the true sphere.
    assert abs(m.hd - k) <= step / 2 + 1e-9
    assert abs(m.hd95 - k) <= step / 2 + 1e-9
    assert m.hd95 <= m.hd99_9 <= m.hd
    assert abs(m.assd - k) <= step / 4
    assert m.dice == pytest.approx(2 * r**3 / (r**3 + (r + k) ** 3), rel=0.02)
    assert m.iou == pytest.approx(r**3 / (r + k) ** 3, rel=0.02)
    assert m.sensitivity == 1.0
    assert m.volume_ref_ml == pytest.approx(4 / 3 * math.pi * r**3 / 1000, rel=0.02)
    assert m.volume_pred_ml == pytest.approx(4 / 3 * math.pi * (r + k) ** 3 / 1000, rel=0.02)
    loose = compute_metrics_arrays(pred, ref, SPHERE_SPACING, tau_mm=k + step)[1]
    tight = compute_metrics_arrays(pred, ref, SPHERE_SPACING, tau_mm=k - step)[1]
    assert loose.nsd == 1.0
    assert tight.nsd < 0.05


BOX_SHAPE = (22, 50, 50)
BOX_SPACING_XYZ = (0.7, 0.7, 3.0)


def _box(z0):
    a = np.zeros(BOX_SHAPE, np.uint8)
    a[z0:z0 + 10, 10:40, 10:40] = 4
    return a


def test_box_shifted_by_one_slice():
    ref = Image(_box(5), spacing=BOX_SPACING_XYZ)
    pred = Image(_box(6), spacing=BOX_SPACING_XYZ)
    result = compute_metrics(pred, ref, labels={"box": 4}, tau_mm=3.0)
    m = result[4]
    assert (m.name, m.status, result.resampled) == ("box", "ok", False)
    # Only the top face of the prediction and the bottom face of the reference are off, by one 3 mm slice.
    assert m.hd == m.hd95 == m.hd99_9 == pytest.approx(3.0, abs=1e-12)
    assert 0 < m.assd < 3.0
    assert m.dice == pytest.approx(0.9)
    assert m.iou == pytest.approx(9 / 11)
    assert m.sensitivity == pytest.approx(0.9)
    slice_voxels, total = 30 * 30, np.prod(BOX_SHAPE)
    assert m.specificity == pytest.approx((total - 11 * slice_voxels) / (total - 10 * slice_voxels))
    assert m.volume_ref_ml == m.volume_pred_ml == pytest.approx(10 * slice_voxels * 0.7 * 0.7 * 3.0 / 1000)
    assert m.nsd == 1.0
    assert compute_metrics(pred, ref, tau_mm={4: 2.9})[4].nsd < 1.0


def test_box_shift_along_z_uses_z_spacing_not_x():
    pred, ref = _box(6), _box(5)
    along_z = compute_metrics_arrays(pred, ref, spacing=BOX_SPACING_XYZ[::-1])[4]
    swapped = compute_metrics_arrays(pred, ref, spacing=BOX_SPACING_XYZ)[4]
    assert along_z.hd == pytest.approx(3.0)
    assert swapped.hd == pytest.approx(0.7)


def test_identical_masks_are_perfect():
    ref = _box(5)
    m = compute_metrics_arrays(ref, ref, (3.0, 0.7, 0.7))[4]
    assert (m.dice, m.iou, m.nsd, m.hd, m.hd95, m.assd, m.sensitivity) == (1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0)
