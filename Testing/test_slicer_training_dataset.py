"""Dataset from the scene: real slicer-core scenes (slicerio chest CT) exported to nnU-Net raw format."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.panels.scene_dataset import (
    cases_from_folders,
    cases_from_pairs,
    check_dataset,
    export_dataset,
    next_free_dataset_id,
    open_raw_dataset,
)

CHEST_LABELS = ["background", "ribs", "cervical vertebral column", "thoracic vertebral column",
                "lumbar vertebral column", "right lung", "left lung", "tissue"]


def rename_segment(segmentation, old: str, new: str):
    seg = segmentation.GetSegmentation()
    seg.GetSegment(seg.GetSegmentIdBySegmentName(old)).SetName(new)


def test_two_case_dataset_passes_nnunet_integrity_check(chest_scene, empty_nnunet_folders):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    slab = chest_scene.add_slab("upper slab", 17, 34)
    cases = cases_from_pairs([(chest_scene.volume, chest_scene.segmentation),
                              (slab, chest_scene.read_segmentation("slab segmentation"))])
    checked = check_dataset(cases, ["CT"])
    assert checked.ok, checked.problems
    assert list(checked.labels) == CHEST_LABELS and list(checked.labels.values()) == list(range(8))
    assert any("cropped" in w for w in checked.warnings)  # the full segmentation reaches beyond the slab

    result = export_dataset(checked, "ChestCT")
    raw = empty_nnunet_folders["nnUNet_raw"]
    assert result.folder == raw / "Dataset500_ChestCT" and result.dataset_id == 500
    verify_dataset_integrity(str(result.folder), 2)

    info = json.loads((result.folder / "dataset.json").read_text())
    assert info["channel_names"] == {"0": "CT"} and info["numTraining"] == 2
    assert info["labels"] == {name: value for value, name in enumerate(CHEST_LABELS)}
    written_ct = sitk.ReadImage(str(result.folder / "imagesTr" / "CTChest_0000.nii.gz"))
    source_ct = sitk.ReadImage(str(chest_scene.data / "CTChest4.nrrd"))
    assert np.array_equal(sitk.GetArrayFromImage(written_ct), sitk.GetArrayFromImage(source_ct))
    assert np.allclose(written_ct.GetOrigin(), source_ct.GetOrigin(), atol=1e-3)
    assert np.allclose(written_ct.GetSpacing(), source_ct.GetSpacing(), atol=1e-4)
    full = sitk.GetArrayFromImage(sitk.ReadImage(str(result.folder / "labelsTr" / "CTChest.nii.gz")))
    upper = sitk.GetArrayFromImage(sitk.ReadImage(str(result.folder / "labelsTr" / "upper_slab.nii.gz")))
    assert np.array_equal(full[17:], upper)
    assert set(np.unique(full)) == set(range(8))

    opened = open_raw_dataset(result.folder)
    assert (opened.dataset_id, opened.name, opened.num_training) == (500, "ChestCT", 2)
    assert next_free_dataset_id() == 501


def test_conflicting_names_and_geometry_are_listed_and_nothing_is_written(chest_scene, empty_nnunet_folders):
    other = chest_scene.read_segmentation("other")
    rename_segment(other, "tissue", "Tissue")
    rename_segment(other, "ribs", "left lung")  # now two segments named "left lung"
    slab = chest_scene.add_slab("slab", 0, 10)
    cases = cases_from_pairs([(chest_scene.volume, chest_scene.segmentation),
                              ([chest_scene.volume, slab], other)])
    checked = check_dataset(cases, ["CT", "CT-late"])
    text = "\n".join(checked.problems)
    assert "has 1 channel volumes but the dataset has 2 channels" in text
    assert "'Tissue' conflicts with 'tissue'" in text
    assert "more than one segment is named 'left lung'" in text
    assert "channel 1 ('slab') is not on the grid of channel 0" in text
    with pytest.raises(UserError, match="cannot be exported"):
        export_dataset(checked, "Broken")
    assert list(empty_nnunet_folders["nnUNet_raw"].iterdir()) == []


def test_segmentation_elsewhere_in_space_is_a_problem(chest_scene, empty_nnunet_folders):
    import slicer

    transform = slicer.vtkMRMLLinearTransformNode()
    chest_scene.scene.AddNode(transform)
    chest_scene.segmentation.SetAndObserveTransformNodeID(transform.GetID())
    checked = check_dataset(cases_from_pairs([(chest_scene.volume, chest_scene.segmentation)]), ["CT"])
    assert any("under a transform; harden" in p for p in checked.problems)
    far = chest_scene.add_slab("far", 0, 34)
    far.SetOrigin(5000.0, 5000.0, 5000.0)
    seg = chest_scene.read_segmentation("seg")
    checked = check_dataset(cases_from_pairs([(far, seg)]), ["CT"])
    assert any("does not overlap volume 'far'" in p for p in checked.problems)


def test_dataset_ids_never_clash_and_nothing_is_overwritten(chest_scene, empty_nnunet_folders):
    (empty_nnunet_folders["nnUNet_results"] / "Dataset500_Other").mkdir()
    (empty_nnunet_folders["nnUNet_preprocessed"] / "Dataset501_Other2").mkdir()
    checked = check_dataset(cases_from_pairs([(chest_scene.volume, chest_scene.segmentation)]), ["CT"])
    assert export_dataset(checked, "Chest").dataset_id == 502
    with pytest.raises(UserError, match="dataset id 500 is already used"):
        export_dataset(checked, "Chest", dataset_id=500)
    with pytest.raises(UserError, match="not allowed"):
        export_dataset(checked, "chest ct")
    folder = empty_nnunet_folders["nnUNet_raw"] / "Dataset502_Chest"
    stamp = (folder / "dataset.json").stat().st_mtime_ns
    assert export_dataset(checked, "Chest").dataset_id == 503
    assert (folder / "dataset.json").stat().st_mtime_ns == stamp


def test_cases_from_subject_hierarchy_folders(chest_scene, empty_nnunet_folders):
    import slicer

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(chest_scene.scene)
    folders = []
    for name, (first, last) in {"patient A": (0, 17), "patient B": (17, 34)}.items():
        folder = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), name)
        hierarchy.CreateItem(folder, chest_scene.add_slab(f"{name} CT", first, last))
        hierarchy.CreateItem(folder, chest_scene.read_segmentation(f"{name} labels"))
        folders.append(folder)
    empty = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), "empty")

    cases = cases_from_folders(chest_scene.scene, folders + folders[:1])
    assert [c.name for c in cases] == ["patient A", "patient B", "patient A"]
    checked = check_dataset(cases, ["CT"])
    assert [c.name for c in checked.cases] == ["patient_A", "patient_B", "patient_A_2"]  # file-name-safe, unique
    assert checked.ok and list(checked.labels) == CHEST_LABELS
    with pytest.raises(UserError, match="folder 'empty' holds 0 volumes and 0 segmentations"):
        cases_from_folders(chest_scene.scene, [empty])


def test_open_raw_dataset_rejects_folders_nnunet_cannot_use(tmp_path):
    with pytest.raises(UserError, match="not an nnU-Net raw dataset folder"):
        open_raw_dataset(tmp_path)
    folder = tmp_path / "Dataset007_Thing"
    folder.mkdir()
    with pytest.raises(UserError, match="has no dataset.json"):
        open_raw_dataset(folder)
    (folder / "dataset.json").write_text("{}")
    with pytest.raises(UserError, match="not a valid nnU-Net dataset.json"):
        open_raw_dataset(folder)
