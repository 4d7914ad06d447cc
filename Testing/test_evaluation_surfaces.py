"""Building blocks of the distance metrics against straightforward scipy formulations."""
import numpy as np
import pytest
from scipy import ndimage

from ImprovedNNUNetLib.evaluation import crops, surfaces


def test_label_boxes_match_find_objects(blob_case):
    pred, ref, _ = blob_case
    for array in (pred, ref, np.pad(ref, ((3, 0), (0, 5), (2, 2)))):
        expected = {v: box for v, box in enumerate(ndimage.find_objects(array), start=1) if box is not None}
        assert crops.label_boxes(array) == expected
    assert crops.label_boxes(np.zeros((2, 3, 4), np.uint8)) == {}


def test_boundary_voxels_are_mask_xor_6_connected_erosion(blob_case):
    _, ref, _ = blob_case
    mask = ref == 1  # touches the image edge, which counts as outside
    expected = mask ^ ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1), border_value=0)
    np.testing.assert_array_equal(surfaces.boundary_voxels(np.pad(mask, 1)), expected)


def test_surfel_codes_match_a_2x2x2_correlation(blob_case):
    pred, _, _ = blob_case
    padded = np.pad(pred == 3, 1)
    weights = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])
    # code of corner (i, j, k) from voxels (i..i+1, j..j+1, k..k+1)
    full = ndimage.correlate(padded.astype(np.int32), weights, mode="constant", origin=-1)[:-1, :-1, :-1]
    corners = surfaces.mixed_corners(padded)
    np.testing.assert_array_equal(corners, (full != 0) & (full != 255))
    points = np.argwhere(corners)
    np.testing.assert_array_equal(surfaces.neighbour_codes(padded, points), full[corners])


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.7, 0.8)])
def test_surfel_areas_of_a_box_add_up_to_its_surface(spacing):
    box = np.zeros((8, 9, 10), bool)
    box[2:5, 2:7, 3:9] = True  # 3 × 5 × 6 voxels
    surface = surfaces.surfel_surface(np.pad(box, 1), spacing)
    dz, dy, dx = (n * s for n, s in zip((3, 5, 6), spacing))
    # marching cubes cuts the box's edges and corners, so the area is a little below the faces' area
    assert surface.areas.sum() < 2 * (dz * dy + dz * dx + dy * dx)
    assert surface.areas.sum() > 2 * ((dz - spacing[0]) * (dy - spacing[1]) + (dz - spacing[0]) * (dx - spacing[2])
                                      + (dy - spacing[1]) * (dx - spacing[2]))
