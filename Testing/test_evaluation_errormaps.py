"""Mis-segmentation maps: FP/FN per label and the MSF region."""
import numpy as np
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation import error_maps, error_maps_arrays


@pytest.fixture(scope="module")
def pair():
    ref = np.zeros((9, 12, 12), np.uint8)
    ref[2:6, 2:8, 2:8] = 1
    ref[2:6, 8:10, 2:8] = 2
    pred = ref.copy()
    pred[2:6, 7, 2:8] = 2  # label-1 voxels predicted as label 2
    pred[7, 5, 5] = 1  # a stray false positive of label 1
    return pred, ref


def test_fp_and_fn_per_label(pair):
    pred, ref = pair
    maps = error_maps_arrays(pred, ref)
    for label in (1, 2):
        np.testing.assert_array_equal(maps.fp(label), (pred == label) & (ref != label))
        np.testing.assert_array_equal(maps.fn(label), (ref == label) & (pred != label))
    # a voxel that is label 1 in the reference and 2 in the prediction is FN of 1 and FP of 2
    assert maps.fn(1)[3, 7, 3] and maps.fp(2)[3, 7, 3]
    assert maps.fp(1).sum() == 1 and maps.fn(2).sum() == 0
    assert maps.msf_region is None


def test_only_requested_labels_are_mapped(pair):
    pred, ref = pair
    maps = error_maps_arrays(pred, ref, labels=[1])
    assert set(np.unique(maps.fp_labels)) == {0, 1}
    assert set(np.unique(maps.fn_labels)) == {0, 1}
    with pytest.raises(UserError, match="not evaluated"):
        maps.fp(2)


def test_msf_region_is_union_of_xor_dilated_by_a_ball(pair):
    pred, ref = pair
    radius = 2
    maps = error_maps_arrays(pred, ref, msf_radius=radius)
    xor = np.zeros(ref.shape, bool)
    for label in (1, 2):
        xor |= (pred == label) ^ (ref == label)
    grid = np.indices(ref.shape)
    expected = np.zeros(ref.shape, bool)
    for point in np.argwhere(xor):  # brute force: every voxel within Euclidean distance 2 of an error
        expected |= sum((g - c) ** 2 for g, c in zip(grid, point)) <= radius**2
    np.testing.assert_array_equal(maps.msf_region, expected)
    assert error_maps_arrays(pred, ref, msf_radius=0).msf_region.sum() == xor.sum()


def test_images_carry_the_reference_geometry(pair):
    pred, ref = pair
    geometry = dict(spacing=(0.5, 0.5, 2.0), origin=(1.0, 2.0, 3.0))
    maps = error_maps(Image(pred, **geometry), Image(ref, **geometry), msf_radius=1)
    images = maps.images()
    assert set(images) == {"FP", "FN", "MSF"}
    assert all(im.spacing == geometry["spacing"] and im.origin == geometry["origin"] for im in images.values())
    assert maps.resample_note is None
