"""`improved-nnunet evaluate` on real data (slicerio's chest segmentation) and on bad input."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.imageio import read_image

CHEST_SEGMENTS = [
    "ribs", "cervical vertebral column", "thoracic vertebral column", "lumbar vertebral column",
    "right lung", "left lung", "tissue",
]


@pytest.fixture(scope="module")
def chest_run(chest_eroded, chest_segmentation, tmp_path_factory):
    """The console script run once on the eroded chest segmentation, with maps."""
    out = tmp_path_factory.mktemp("chest_eval") / "out"
    script = Path(sys.executable).with_name("improved-nnunet")
    proc = subprocess.run(
        [str(script), "evaluate", str(chest_eroded), str(chest_segmentation), "--out", str(out), "--maps", "--msf"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_real_segmentation_summary(chest_run, chest_eroded, chest_segmentation):
    out, stdout = chest_run
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["labels"].values()) == CHEST_SEGMENTS
    assert summary["tau_mm"] == 1.0
    ref, pred = read_image(chest_segmentation).array, read_image(chest_eroded).array
    metrics = summary["metric_per_case"][0]["metrics"]
    for value in range(1, 8):
        m = metrics[str(value)]
        n_ref, n_pred = np.count_nonzero(ref == value), np.count_nonzero(pred == value)
        # an eroded copy lies inside the reference: IoU = sensitivity = |P|/|G|, no false positives
        assert m["Dice"] == pytest.approx(2 * n_pred / (n_pred + n_ref))
        assert m["IoU"] == pytest.approx(m["Sensitivity"])
        assert m["Specificity"] == 1.0
        assert m["VolumePred_ml"] < m["VolumeRef_ml"]
        assert 0 < m["NSD"] < 1 and m["HD95"] <= m["HD99.9"] <= m["HD"]
        assert m["status"] == "ok"
    assert summary["mean"]["5"]["Dice"] == metrics["5"]["Dice"]
    assert "right lung" in stdout and "wrote" in stdout
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["name"] for r in rows] == CHEST_SEGMENTS


def test_real_segmentation_maps(chest_run, chest_eroded, chest_segmentation):
    out, _ = chest_run
    ref, pred = read_image(chest_segmentation).array, read_image(chest_eroded).array
    fp = read_image(out / "maps" / "Segmentation_FP.nii.gz")
    fn = read_image(out / "maps" / "Segmentation_FN.nii.gz")
    msf = read_image(out / "maps" / "Segmentation_MSF.nii.gz").array
    assert not fp.array.any()
    np.testing.assert_array_equal(fn.array, np.where(pred != ref, ref, 0))
    assert fn.same_grid(read_image(chest_segmentation))
    assert msf.sum() > np.count_nonzero(fn.array) and msf[fn.array > 0].all()


def _write(array, path, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture()
def folders(tmp_path):
    """nnU-Net-style prediction and reference folders with two cases (plus a stray json)."""
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir(), ref.mkdir()
    for i in range(2):
        a = np.zeros((6, 12, 12), np.uint8)
        a[1:5, 2 + i:9, 3:9] = 1
        a[2:4, 9:11, 3:6] = 2
        _write(a, ref / f"case_{i:03d}.nii.gz")
        _write(np.roll(a, 1, axis=2), pred / f"case_{i:03d}.nii.gz")
    (pred / "plans.json").write_text("{}")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "A": 1, "B": 2}}))
    return pred, ref, tmp_path


def _error(capsys, *argv):
    code = main(["evaluate", *map(str, argv)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_folders_are_matched_by_case_id(folders, capsys):
    pred, ref, root = folders
    out = root / "out"
    code = main(["evaluate", str(pred), str(ref), "--labels", str(root / "dataset.json"), "--out", str(out),
                 "--tau", "0.5", "--tau-label", "B=2.0"])
    assert code == 0
    assert "NSD tolerance 0.5 mm (B: 2 mm)" in capsys.readouterr().out  # the exception named, not "1: 0.5, 2: 2"
    summary = json.loads((out / "summary.json").read_text())
    assert [c["case_id"] for c in summary["metric_per_case"]] == ["case_000", "case_001"]
    assert summary["labels"] == {"1": "A", "2": "B"}
    assert summary["tau_mm"] == {"1": 0.5, "2": 2.0}
    assert summary["mean"]["1"]["n_cases"] == 2
    # the outputs are not replaced without --overwrite
    code, message = _error(capsys, pred, ref, "--out", out)
    assert code == 2 and "exists" in message and "--overwrite" in message
    assert main(["evaluate", str(pred), str(ref), "--out", str(out), "--overwrite"]) == 0


def test_unmatched_case_is_an_error(folders, capsys):
    pred, ref, _ = folders
    shutil.copy(pred / "case_000.nii.gz", pred / "case_999.nii.gz")
    code, message = _error(capsys, pred, ref)
    assert code == 2 and "case_999" in message and "no reference" in message


def test_missing_file_is_an_error(folders, capsys):
    _, ref, root = folders
    code, message = _error(capsys, root / "nope.nii.gz", ref / "case_000.nii.gz")
    assert code == 2 and "no such file" in message


def test_non_integer_image_is_an_error(folders, capsys):
    _, ref, root = folders
    probabilities = _write(np.full((6, 12, 12), 0.3, np.float32), root / "prob.nii.gz")
    code, message = _error(capsys, probabilities, ref / "case_000.nii.gz")
    assert code == 2 and "non-integer" in message


def test_four_d_image_is_an_error(folders, capsys):
    _, ref, root = folders
    image = sitk.JoinSeries([sitk.Image(12, 12, 6, sitk.sitkUInt8)] * 2)
    sitk.WriteImage(image, str(root / "four_d.nii.gz"))
    code, message = _error(capsys, root / "four_d.nii.gz", ref / "case_000.nii.gz")
    assert code == 2 and "4 dimensions" in message


def test_disjoint_grids_are_an_error(folders, capsys):
    _, ref, root = folders
    far = _write(np.ones((6, 12, 12), np.uint8), root / "far.nii.gz", origin=(500.0, 0.0, 0.0))
    code, message = _error(capsys, far, ref / "case_000.nii.gz")
    assert code == 2 and "do not overlap" in message


def test_maps_need_an_output_folder(folders, capsys):
    pred, ref, _ = folders
    code, message = _error(capsys, pred, ref, "--maps")
    assert code == 2 and "--out" in message


def test_seg_nrrd_segments_are_matched_by_name(chest_segmentation, chest_eroded, tmp_path, capsys):
    """A prediction whose segments carry other label values is compared segment by segment."""
    import slicerio

    segmentation = slicerio.read_segmentation(str(chest_eroded))
    renumber = {s["labelValue"]: 8 - s["labelValue"] for s in segmentation["segments"]}
    voxels = segmentation["voxels"]
    renumbered = np.zeros_like(voxels)
    for old, new in renumber.items():
        renumbered[voxels == old] = new
    for segment in segmentation["segments"]:
        segment["labelValue"] = renumber[segment["labelValue"]]
    segmentation["voxels"] = renumbered
    slicerio.write_segmentation(str(tmp_path / "renumbered.seg.nrrd"), segmentation)
    for name, pred in (("same", chest_eroded), ("renumbered", tmp_path / "renumbered.seg.nrrd")):
        assert main(["evaluate", str(pred), str(chest_segmentation), "--out", str(tmp_path / name)]) == 0
    same, renumbered = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("same", "renumbered"))
    assert renumbered["metric_per_case"][0]["metrics"] == same["metric_per_case"][0]["metrics"]


def test_overlapping_segments_are_an_error(chest_segmentation, tmp_path, capsys):
    import slicerio

    segmentation = slicerio.read_segmentation(str(chest_segmentation))
    voxels = segmentation["voxels"]
    segmentation["voxels"] = np.stack([voxels, (voxels == 1).astype(voxels.dtype) * 9])  # a second layer
    segmentation["segments"].append(dict(segmentation["segments"][0], name="ribs again", labelValue=9, layer=1))
    slicerio.write_segmentation(str(tmp_path / "layers.seg.nrrd"), segmentation)
    code, message = _error(capsys, tmp_path / "layers.seg.nrrd", chest_segmentation)
    assert code == 2 and "several layers" in message and "labelmap" in message


def test_a_seg_nrrd_prediction_names_the_labels_of_a_plain_labelmap_reference(chest_segmentation, chest_eroded,
                                                                              tmp_path):
    """Segment names come from whichever side is a .seg.nrrd: here the prediction, against a NIfTI reference."""
    from ImprovedNNUNetLib.core.imageio import read_image, write_image

    reference = tmp_path / "reference.nii.gz"
    write_image(read_image(chest_segmentation), reference)
    assert main(["evaluate", str(chest_eroded), str(reference), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "right lung" in summary["labels"].values() and "ribs" in summary["labels"].values()


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """``improved-nnunet … | head``: when the reader has gone, the command ends as other tools do (status 141,
    nothing on stderr), instead of "error: Broken pipe"; a real pipe whose read end is closed before it writes."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "models", "list"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "IMPROVED_NNUNET_MODELS": str(tmp_path)})
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")
