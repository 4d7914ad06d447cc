"""DICOM in and out with real files: series written from the shipped CT sample's crops (Testing/fixtures/dicom.py),
predicted by a real tiny model into NIfTI, DICOM SEG (highdicom) and RTSTRUCT (rt-utils); the SEG read back by a
second, independent reader (dcmqi's segimage2itkimage, what Slicer's QuantitativeReporting uses), the RTSTRUCT
filled again and compared with the source mask; evaluate reading both; bad series as one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from fixtures.dicom import write_series
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image

DATASET = "Dataset987_TinyChest"


def _labels(tiny_dataset) -> dict:
    return json.loads((tiny_dataset.raw / "dataset.json").read_text())["labels"]


def _cli(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *map(str, arguments)], capture_output=True,
                          text=True, encoding="utf-8", timeout=600, cwd=cwd, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def test_series_read_back_onto_the_images_grid_and_bad_series_are_one_line_errors(tiny_dataset, tmp_path):
    from ImprovedNNUNetLib.core.dicom_series import find_series, read_series

    image = read_image(tiny_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz")
    study = tmp_path / "study"
    uid = write_series(image, study / "one", shuffle=True)  # file names in random order
    write_series(image, study / "two", description="CT again", number=2)
    found = {s.uid: s for s in find_series(study)}
    assert len(found) == 2
    back = read_series(found[uid])
    assert back.same_grid(image) and np.array_equal(back.array, image.array)

    write_series(image, tmp_path / "gap", skip={5})
    with pytest.raises(UserError, match=r"1 slice\(s\) missing between .* \(slice spacing 10.00 mm\); copy the whole"):
        read_series(find_series(tmp_path / "gap")[0])
    tilted = tmp_path / "tilted"
    write_series(image, tilted)
    first = sorted(tilted.iterdir())[3]
    ds = pydicom.dcmread(first)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9, 0.43589]
    ds.save_as(first)
    with pytest.raises(UserError, match="mixes slice orientations"):
        read_series(find_series(tilted)[0])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not DICOM")
    with pytest.raises(UserError, match="holds no DICOM image series"):
        find_series(empty)


def test_seg_and_rtstruct_of_a_label_map_read_back_by_independent_readers(tiny_dataset, tmp_path):
    """The reference label map written as DICOM SEG and RTSTRUCT on its series: dcmqi reads the SEG back voxel for
    voxel with the label names, codes and the referenced series; the RTSTRUCT's contours filled again agree with
    the source mask (Dice >= 0.98 per ROI)."""
    from ImprovedNNUNetLib.core.dicom_labels import read_rtstruct
    from ImprovedNNUNetLib.core.dicom_series import find_series
    from ImprovedNNUNetLib.evaluation.geometry import align_to_reference
    from ImprovedNNUNetLib.inference.dicom_output import write_dicom_seg, write_rtstruct

    image = read_image(tiny_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz")
    reference = read_image(tiny_dataset.raw / "labelsTr" / "chest_001.nii.gz")
    labels = _labels(tiny_dataset)
    uid = write_series(image, tmp_path / "case" / "ct", shuffle=True)
    series = find_series(tmp_path / "case")[0]
    seg = write_dicom_seg(reference, series, labels, tmp_path / "case" / "out" / "chest.seg.dcm")
    rt = write_rtstruct(reference, series, labels, tmp_path / "case" / "out" / "chest.rtstruct.dcm")

    written = pydicom.dcmread(seg)
    assert written.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    assert [s.SegmentLabel for s in written.SegmentSequence] == [n for n, v in sorted(labels.items(), key=lambda x: x[1])
                                                                  if v]
    lung = next(s for s in written.SegmentSequence if s.SegmentLabel == "left lung")
    assert lung.SegmentedPropertyTypeCodeSequence[0].CodeValue == "39607008"
    dcmqi = shutil.which("segimage2itkimage") or str(Path(sys.executable).parent / "segimage2itkimage")
    out = tmp_path / "dcmqi"
    out.mkdir()
    ran = subprocess.run([dcmqi, "--inputDICOM", str(seg), "--outputDirectory", str(out), "--mergeSegments",
                          "--outputType", "nifti"], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    back, _ = align_to_reference(read_image(out / "1.nii.gz"), reference)
    assert np.array_equal(back.array, reference.array)
    meta = json.loads((out / "meta.json").read_text())
    assert {s["labelID"]: s["SegmentLabel"] for s in meta["segmentAttributes"][0]} == \
        {v: n for n, v in labels.items() if v}

    structure = pydicom.dcmread(rt)
    referenced = structure.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    assert referenced.RTReferencedSeriesSequence[0].SeriesInstanceUID == uid
    filled, names = read_rtstruct(rt)
    assert filled.same_grid(reference)
    for name, value in names.items():
        assert dice(filled.array == value, reference.array == labels[name]) >= 0.98, name
    assert set(names) == {n for n, v in labels.items() if v and (reference.array == v).any()}
    shifted = image.with_array(image.array)
    shifted.origin = (image.origin[0], image.origin[1], image.origin[2] + 1000.0)  # another series, far away
    write_series(shifted, tmp_path / "other" / "ct", series_uid=None)
    other = find_series(tmp_path / "other")[0]
    elsewhere = write_dicom_seg(reference.with_array(reference.array), other, labels, tmp_path / "other.seg.dcm")
    from ImprovedNNUNetLib.core.imageio import write_image
    from ImprovedNNUNetLib.evaluation.cases import CasePair
    from ImprovedNNUNetLib.evaluation.runner import evaluate_case

    write_image(reference, tmp_path / "reference.nii.gz")
    with pytest.raises(UserError, match="do not overlap in physical space"):  # a SEG of another series
        evaluate_case(CasePair("chest", tmp_path / "reference.nii.gz", elsewhere), labels)
    alone = tmp_path / "elsewhere" / "deep"
    alone.mkdir(parents=True)
    shutil.copyfile(rt, alone / "chest.rtstruct.dcm")  # its series is not beside it
    with pytest.raises(UserError, match=f"was drawn on series {uid}, which is not beside it"):
        read_rtstruct(alone / "chest.rtstruct.dcm")


def test_predict_a_dicom_study_and_evaluate_against_its_seg_and_rtstruct(tiny_dataset, trained_model, tmp_path):
    from ImprovedNNUNetLib.core.dicom_labels import read_rtstruct

    model = trained_model("baseline")
    image = read_image(tiny_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz")
    study = tmp_path / "study"
    write_series(image, study / "ct", description="CT chest", shuffle=True)
    predicted = _cli("predict", "-i", study, "-o", tmp_path / "out", "-m", model, "--device", "cpu",
                     "--output-type", "nifti", "dicom_seg", "dicom_rtstruct")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(f"CT_chest{suffix}" for suffix in (".nii.gz", ".seg.dcm", ".rtstruct.dcm"))
    from ImprovedNNUNetLib.inference import load_model

    expected = load_model(model, device="cpu").predict([image]).segmentation  # the NIfTI input, in this process
    case = "CT_chest"
    ours = read_image(tmp_path / "out" / f"{case}.nii.gz")
    assert ours.same_grid(expected) and np.array_equal(ours.array, expected.array)  # DICOM in = NIfTI in

    from ImprovedNNUNetLib.core.imageio import write_image
    from ImprovedNNUNetLib.evaluation.cases import CasePair
    from ImprovedNNUNetLib.evaluation.runner import evaluate_case

    write_image(expected, tmp_path / "plain.nii.gz")
    labels = _labels(tiny_dataset)
    for suffix in (".seg.dcm", ".rtstruct.dcm"):  # evaluate reads them (the command's own path, in this process)
        pair = CasePair(case, tmp_path / "out" / f"{case}{suffix}", tmp_path / "plain.nii.gz")
        metrics = evaluate_case(pair, labels).metrics
        contours = read_rtstruct(pair.prediction) if suffix == ".rtstruct.dcm" else None
        for value, label in metrics.labels.items():
            voxels = int((expected.array == int(value)).sum())
            if contours is None and voxels:
                assert label.to_dict()["Dice"] == 1.0, (value, label)  # the SEG holds the prediction voxel for voxel
            elif contours is not None and voxels:  # ROIs matched to labels by name: the contours' own Dice
                name = next(n for n, v in labels.items() if v == int(value))
                roi = contours[0].array == contours[1][name] if name in contours[1] else np.zeros_like(ours.array, bool)
                assert abs(label.to_dict()["Dice"] - dice(roi, expected.array == int(value))) < 1e-9, (value, label)
    with pytest.raises(UserError, match="pass --labels"):  # ROI names need label names to match
        evaluate_case(CasePair(case, tmp_path / "out" / f"{case}.rtstruct.dcm", tmp_path / "plain.nii.gz"))


def test_dicom_outputs_need_dicom_input(tiny_dataset, trained_model, tmp_path):
    refused = _cli("predict", "-i", tiny_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz", "-o", tmp_path / "o",
                   "-m", trained_model("baseline"), "--output-type", "dicom_seg")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--output-type dicom_seg references the DICOM series a case came from" in refused.stderr


def test_case_names_of_series():
    from ImprovedNNUNetLib.core.dicom_series import DicomSeries
    from ImprovedNNUNetLib.inference.dicom_cases import case_names

    series = [DicomSeries("1.2.3", (), "CT chest", number="1"), DicomSeries("1.2.4", (), "CT chest", number="2"),
              DicomSeries("1.2.5", (), "T1 / post", number="3"), DicomSeries("1.2.6", (), "", number="4"),
              DicomSeries("1.2.7", (), "CT chest", number="2")]
    assert case_names(series) == ["CT_chest_s1", "CT_chest_s2_1.2.4", "T1_post", "series", "CT_chest_s2_1.2.7"]


def test_rtstruct_masks_reach_rt_utils_in_its_own_slice_order(tiny_dataset, tmp_path, monkeypatch):
    """rt-utils takes masks in the order of its own ``series_data``; with a slice order that is not its own inverse
    (a rotation of the slices, where a reversal would hide a swapped permutation) each mask slice must still be
    the series slice rt-utils puts there (rt-utils' builder is replaced by a recorder of what it is given)."""
    import rt_utils

    from ImprovedNNUNetLib.core.dicom_series import find_series
    from ImprovedNNUNetLib.inference.dicom_output import write_rtstruct

    image = read_image(tiny_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz")
    reference = read_image(tiny_dataset.raw / "labelsTr" / "chest_001.nii.gz")
    write_series(image, tmp_path / "ct")
    series = find_series(tmp_path)[0]
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.files]
    rotated = datasets[3:] + datasets[:3]
    given = {}

    class Recorder:
        series_data = rotated
        ds = pydicom.Dataset()

        def add_roi(self, mask, color, name):
            given[name] = np.moveaxis(mask, -1, 0)

    monkeypatch.setattr(rt_utils.RTStructBuilder, "create_new", staticmethod(lambda dicom_series_path: Recorder()))
    monkeypatch.setattr(pydicom.Dataset, "save_as", lambda self, path: None)
    labels = _labels(tiny_dataset)
    write_rtstruct(reference, series, labels, tmp_path / "out.dcm")
    series_index = {ds.SOPInstanceUID: i for i, ds in enumerate(datasets)}
    for name, mask in given.items():
        expected = reference.array[[series_index[ds.SOPInstanceUID] for ds in rotated]] == labels[name]
        assert np.array_equal(mask, mask & expected), name  # islands under 3 pixels are left out, nothing added
        assert dice(mask, expected) > 0.98, name
