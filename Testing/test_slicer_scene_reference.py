"""Reference segmentations and labelmaps -> label images in model values (real slicerio data)."""
import numpy as np
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.panels.scene.reference import reference_labels
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image, image_from_volume


@pytest.fixture(scope="module")
def slicerio_voxels(slicerio_data):
    """Segmentation.seg.nrrd read by slicerio (an independent reader): (z, y, x) labels and names."""
    import slicerio

    segmentation = slicerio.read_segmentation(str(slicerio_data / "Segmentation.seg.nrrd"))
    voxels = np.transpose(segmentation["voxels"], (2, 1, 0))
    return voxels, {s["name"]: s["labelValue"] for s in segmentation["segments"]}


def _expected(voxels, file_values, model_labels):
    """The reference in model values: file value of each name -> model value of that name."""
    expected = np.zeros(voxels.shape, dtype=np.int32)
    for name, model_value in model_labels.items():
        expected[voxels == file_values[name]] = model_value
    return expected


def test_every_segment_matched_by_name_in_other_values(ct_scene, slicerio_voxels):
    voxels, file_values = slicerio_voxels
    names = list(file_values)
    model_labels = {name: 7 - i for i, name in enumerate(names)}  # reversed values: names must decide
    result = reference_labels(ct_scene.segmentation, {"background": 0, **model_labels})
    assert [m.by for m in result.matches] == ["name"] * 7
    assert result.unmatched_reference == [] and result.missing_labels == [] and result.report() == ""
    np.testing.assert_array_equal(result.image.array, _expected(voxels, file_values, model_labels))
    assert result.image.same_grid(image_from_volume(ct_scene.ct))


def test_names_match_ignoring_case_spaces_and_underscores(ct_scene):
    result = reference_labels(ct_scene.segmentation, {"Right_Lung": 1, "LEFT-lung": 2})
    assert [(m.reference_name, m.label_name, m.by) for m in result.matches] == [
        ("right lung", "Right_Lung", "name"), ("left lung", "LEFT-lung", "name")]


def test_unknown_name_falls_back_to_value_and_the_rest_is_reported(ct_scene, slicerio_voxels):
    voxels, file_values = slicerio_voxels
    result = reference_labels(ct_scene.segmentation, {"background": 0, "ribs": 1, "lung R": 5, "liver": 9})
    assert [(m.reference_name, m.label_name, m.by) for m in result.matches] == [
        ("ribs", "ribs", "name"), ("right lung", "lung R", "value")]
    assert result.unmatched_reference == [
        "cervical vertebral column", "thoracic vertebral column", "lumbar vertebral column", "left lung", "tissue"]
    assert result.missing_labels == ["liver"]
    report = result.report()
    assert "reference 'right lung' matched to label 'lung R' by value 5" in report
    assert "matching no model label (ignored): cervical vertebral column" in report
    assert "model labels with no reference segment: liver" in report
    np.testing.assert_array_equal(result.image.array, _expected(voxels, file_values, {"ribs": 1, "right lung": 5}))


def test_nothing_matching_is_an_error_naming_both_sides(ct_scene):
    with pytest.raises(UserError, match=r"no segment of reference 'Segmentation' \(ribs, .*tissue\) matches a model "
                                        r"label \(liver, spleen\)"):
        reference_labels(ct_scene.segmentation, {"background": 0, "liver": 11, "spleen": 12})


def test_labelmap_without_names_matches_by_value_on_its_own_grid(ct_scene, slicerio_voxels):
    voxels, file_values = slicerio_voxels
    grid = image_from_volume(ct_scene.ct)
    cropped = grid.with_array(voxels[5:20].astype(np.int16))
    cropped.origin = tuple(np.add(grid.origin, (0.0, 0.0, 5 * grid.spacing[2])))
    labelmap = add_volume_from_image(ct_scene.scene, cropped, "reference labels", "vtkMRMLLabelMapVolumeNode")
    result = reference_labels(labelmap, {"background": 0, "left lung": 6, "tissue": 7, "liver": 9})
    assert [(m.label_name, m.by) for m in result.matches] == [("left lung", "value"), ("tissue", "value")]
    assert result.image.same_grid(cropped)
    expected = np.where(np.isin(cropped.array, (6, 7)), cropped.array, 0)
    np.testing.assert_array_equal(result.image.array, expected)


def test_a_scalar_volume_is_not_a_reference(ct_scene):
    with pytest.raises(UserError, match="'CTChest4' is a vtkMRMLScalarVolumeNode; select a segmentation"):
        reference_labels(ct_scene.ct, {"ribs": 1})


def test_matching_leaves_no_helper_nodes_but_keeps_the_subject_hierarchy(slicerio_data):
    import slicer

    from fixtures.slicer_scene import load_segmentation

    scene = slicer.vtkMRMLScene()
    segmentation = load_segmentation(scene, slicerio_data / "Segmentation.seg.nrrd")
    for index in reversed(range(scene.GetNumberOfNodes())):  # as in a scene without a hierarchy yet
        if scene.GetNthNode(index).IsA("vtkMRMLSubjectHierarchyNode"):
            scene.RemoveNode(scene.GetNthNode(index))
    before = sorted(scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes()))
    reference_labels(segmentation, {"ribs": 1})
    after = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    # Slicer's default colour tables (which every application scene has; ensure_default_colors adds them to a
    # slicer-core scene) and the hierarchy are kept; no helper node is
    kept = ("vtkMRMLSubjectHierarchyNode", "vtkMRMLColorNode")
    assert sorted(n.GetID() for n in after if not any(n.IsA(k) for k in kept)) == before
    assert any(n.IsA("vtkMRMLSubjectHierarchyNode") for n in after)  # created during the export, kept
