"""Volume nodes <-> Image on real slicer-core scenes, checked against files read by SimpleITK."""
import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.slicer_scene import load_volume
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image, read_image, write_image
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image, channel_images, ijk_to_ras, image_from_volume


def _oblique_image() -> Image:
    """A small image with anisotropic spacing, a rotated direction and a non-zero origin."""
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return Image(array, (0.7, 0.8, 3.0), (12.5, -40.0, 7.0), tuple(rotation.ravel()))


def _assert_same(image: Image, expected: Image):
    np.testing.assert_array_equal(image.array, expected.array)
    np.testing.assert_allclose(image.spacing, expected.spacing, atol=1e-6)
    np.testing.assert_allclose(image.origin, expected.origin, atol=1e-5)
    np.testing.assert_allclose(image.direction, expected.direction, atol=1e-6)


def test_ct_node_matches_simpleitk(ct_scene, slicerio_data):
    _assert_same(image_from_volume(ct_scene.ct), read_image(slicerio_data / "CTChest4.nrrd"))


def test_ct_ras_matrix_is_lps_flipped(ct_scene, slicerio_data):
    """The node's IJK-to-RAS matrix is what ijk_to_ras computes from the file's LPS geometry."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    ct_scene.ct.GetIJKToRASMatrix(matrix)
    node_matrix = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    np.testing.assert_allclose(node_matrix, ijk_to_ras(read_image(slicerio_data / "CTChest4.nrrd")), atol=1e-5)


def test_oblique_image_round_trip_through_a_file_read_by_slicer(ct_scene, tmp_path):
    """Image -> file (SimpleITK) -> MRML storage node -> Image, and Image -> node -> Image."""
    image = _oblique_image()
    path = write_image(image, tmp_path / "oblique.nrrd")
    _assert_same(image_from_volume(load_volume(ct_scene.scene, path)), image)
    _assert_same(image_from_volume(add_volume_from_image(ct_scene.scene, image, "oblique")), image)
    _assert_same(Image.from_sitk(sitk.ReadImage(str(path))), image)


def test_channel_images_in_order(ct_scene):
    image = image_from_volume(ct_scene.ct)
    second = add_volume_from_image(ct_scene.scene, image.with_array(image.array * 2), "T2")
    images = channel_images([ct_scene.ct, second], {"0": "CT", "1": "T2"})
    np.testing.assert_array_equal(images[1].array, image.array * 2)


def test_channel_count_names_the_model_channels(ct_scene):
    with pytest.raises(UserError, match=r"expects 2 input volume\(s\) \(CT, PET\), 1 selected"):
        channel_images([ct_scene.ct], {"0": "CT", "1": "PET"})


def test_volumes_on_different_grids_are_named(ct_scene):
    image = image_from_volume(ct_scene.ct)
    shifted = Image(image.array, image.spacing, (image.origin[0] + 5, *image.origin[1:]), image.direction)
    other = add_volume_from_image(ct_scene.scene, shifted, "PET shifted")
    with pytest.raises(UserError, match="'CTChest4' and 'PET shifted' are on different voxel grids"):
        channel_images([ct_scene.ct, other], {"0": "CT", "1": "PET"})


def test_transformed_volume_is_refused(ct_scene):
    transform = ct_scene.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "Registration")
    ct_scene.ct.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(UserError, match="under the transform 'Registration'; harden"):
        image_from_volume(ct_scene.ct)


def test_a_slicer_core_scene_gets_the_default_colours_so_label_maps_do_not_warn(tmp_path):
    """A headless scene has no colour module: without Slicer's default colour tables every label map's display
    node printed "the color table node: vtkMRMLColorTableNodeLabels can't be found"."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import numpy as np, slicer
        from ImprovedNNUNetLib.core.imageio import Image
        from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
        from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
        from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image
        scene = slicer.vtkMRMLScene()
        labels = np.zeros((6, 8, 8), np.uint8); labels[2:4, 2:6, 2:6] = 1
        image = Image(labels, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        volume = add_volume_from_image(scene, image, "labels", "vtkMRMLLabelMapVolumeNode")
        segmentation = add_prediction_segmentation(image, {"organ": 1}, volume, "segmentation")
        exported = export_label_image(segmentation, segment_infos(segmentation))
        print("ok", int(exported.array.sum()))
    """)
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stdout.split() == ["ok", "32"], ran.stderr
    assert "can't be found" not in ran.stderr, ran.stderr
