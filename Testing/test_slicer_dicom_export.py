"""The Segment panel's DICOM SEG export on real slicer-core scenes: a volume loaded from DICOM (real series files,
the ``DICOM.instanceUIDs`` attribute Slicer's DICOMScalarVolumePlugin sets), its segmentation and FP/FN error
segments written as DICOM SEG referencing the series, and handed to the DICOM database.

Slicer's DICOM database and DICOMUtils cannot exist here (ctkDICOMDatabase is CTK C++, DICOMLib lives in the
Slicer application); their doubles do what the sources say: ``fileForInstance`` returns an instance's file or ""
(CTK Libs/DICOM/Core/ctkDICOMDatabase.h), ``importDicom(dicomDataDir, dicomDatabase=None, copyFiles=False)``
indexes the folder, copying its files with ``copyFiles``, and returns True (Slicer Modules/Scripted/DICOMLib/
DICOMUtils.py)."""
from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pydicom
import pytest

from fixtures.dicom import write_series
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image


class DicomDatabaseDouble:
    """``ctkDICOMDatabase``'s two calls the export makes; the files "imported" are kept in ``folder``."""

    def __init__(self, series_folder: Path, folder: Path):
        self.files = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: str(p) for p in series_folder.iterdir()}
        self.folder = folder
        self.imported = []

    def fileForInstance(self, uid):  # noqa: N802 - CTK's name
        return self.files.get(str(uid), "")

    def import_dicom(self, dicom_data_dir, dicom_database=None, copy_files=False):
        assert dicom_database is self and copy_files  # the export's temporary folder goes away: files are copied
        for path in Path(dicom_data_dir).iterdir():
            target = self.folder / path.name
            shutil.copyfile(path, target)
            self.imported.append(target)
        return True


@pytest.fixture
def dicom_volume(tiny_dataset, tmp_path):
    """(scene, CT volume node loaded "from DICOM", the reference labels, labels, database double)."""
    import slicer

    from ImprovedNNUNetLib.core.dicom_series import find_series, read_series
    from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

    image = read_image(tiny_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz")
    write_series(image, tmp_path / "series", shuffle=True)
    series = find_series(tmp_path / "series")[0]
    scene = slicer.vtkMRMLScene()
    volume = add_volume_from_image(scene, read_series(series), "CT")
    uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in series.files]
    volume.SetAttribute("DICOM.instanceUIDs", " ".join(uids))
    (tmp_path / "database").mkdir()
    labels = json.loads((tiny_dataset.raw / "dataset.json").read_text())["labels"]
    reference = read_image(tiny_dataset.raw / "labelsTr" / "chest_001.nii.gz")
    return scene, volume, reference, labels, DicomDatabaseDouble(tmp_path / "series", tmp_path / "database")


def test_export_writes_the_segmentation_and_its_errors_as_dicom_seg(dicom_volume):
    from ImprovedNNUNetLib.core.dicom_labels import read_dicom_seg
    from ImprovedNNUNetLib.evaluation.geometry import align_to_reference
    from ImprovedNNUNetLib.panels.logic import SegmentPanelLogic
    from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
    from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

    scene, volume, reference, labels, database = dicom_volume
    predicted = reference.array.copy()
    predicted[6, 10:20, 10:20] = 5  # a wrong patch: false positives of one label, false negatives of others
    prediction = add_prediction_segmentation(reference.with_array(predicted), labels, volume, "CT segmentation")
    reference_node = add_volume_from_image(scene, reference, "reference", "vtkMRMLLabelMapVolumeNode")
    SegmentPanelLogic.showErrors(prediction, reference_node)

    names = SegmentPanelLogic.exportDicomSeg(prediction, volume, database, database.import_dicom)
    assert names == ["CT segmentation", "CT segmentation errors"]
    seg_file, errors_file = sorted(database.imported, key=lambda p: p.name != "segmentation.seg.dcm")
    uids = set(volume.GetAttribute("DICOM.instanceUIDs").split())
    for path in (seg_file, errors_file):
        written = pydicom.dcmread(path)
        referenced = written.ReferencedSeriesSequence[0]
        assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} <= uids
    image, segment_names = read_dicom_seg(seg_file)
    back = align_to_reference(image, reference)[0].array
    for name, number in segment_names.items():  # segments 1..N, by name the model's labels
        assert np.array_equal(back == number, predicted == labels[name]), name
    errors = pydicom.dcmread(errors_file)
    assert {s.SegmentLabel for s in errors.SegmentSequence} >= {"right lung FP"}


def test_export_needs_a_volume_from_the_dicom_database(dicom_volume):
    from ImprovedNNUNetLib.panels.logic import SegmentPanelLogic
    from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation

    scene, volume, reference, labels, database = dicom_volume
    prediction = add_prediction_segmentation(reference, labels, volume, "CT segmentation")
    volume.RemoveAttribute("DICOM.instanceUIDs")
    with pytest.raises(UserError, match="not loaded from Slicer's DICOM database"):
        SegmentPanelLogic.exportDicomSeg(prediction, volume, database, database.import_dicom)
    volume.SetAttribute("DICOM.instanceUIDs", "1.2.3.4")
    with pytest.raises(UserError, match="no longer in the DICOM database"):
        SegmentPanelLogic.exportDicomSeg(prediction, volume, database, database.import_dicom)


def test_the_panel_button_exports_into_slicers_database(inference_panel, dicom_volume, monkeypatch, slot_errors):
    """The button is enabled for a segmentation of a DICOM volume and uses slicer.dicomDatabase and DICOMUtils."""
    import slicer

    from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
    from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

    _, widget = inference_panel
    _, _, reference, labels, database = dicom_volume
    monkeypatch.setattr(slicer, "dicomDatabase", database, raising=False)
    dicom_lib = types.ModuleType("DICOMLib")
    dicom_lib.DICOMUtils = types.SimpleNamespace(importDicom=database.import_dicom)
    monkeypatch.setitem(sys.modules, "DICOMLib", dicom_lib)
    volume = add_volume_from_image(slicer.mrmlScene, reference.with_array(reference.array.astype(np.int16)), "CT")
    volume.SetAttribute("DICOM.instanceUIDs", " ".join(database.files))
    parameters = widget._parameterNode
    parameters.inputVolume0 = volume
    assert not widget.ui.exportDicomSegButton.enabled
    parameters.outputSegmentation = add_prediction_segmentation(reference, labels, volume, "CT segmentation")
    assert widget.ui.exportDicomSegButton.enabled
    widget.ui.exportDicomSegButton.click()
    assert [p.name for p in database.imported] == ["segmentation.seg.dcm"]
    assert "Exported to the DICOM database as DICOM SEG: CT segmentation" in widget.ui.logTextEdit.plainText
    assert slot_errors == []
