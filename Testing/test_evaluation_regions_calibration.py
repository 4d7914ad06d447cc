"""Regions (against nnU-Net's compute_metrics), clDice (against the authors' definition), calibration (against
torchmetrics and PyTorch), metric groups and profiles, and the evaluate command's lesion outputs."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.calibration import brier, calibration_error, nll, top_label_error
from ImprovedNNUNetLib.evaluation.cldice import cldice
from ImprovedNNUNetLib.evaluation.options import metric_options


def brats_like(seed=0, shape=(24, 40, 40)):
    """Nested labels as in BraTS (1 necrosis, 2 oedema, 3 enhancing) with a perturbed prediction."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for volume, jitter in ((ref, 0), (pred, 1)):
        c = np.array(shape) // 2 + (rng.integers(-1, 2, size=3) if jitter else 0)
        r = np.sqrt((zz - c[0]) ** 2 + ((yy - c[1]) / 1.3) ** 2 + (xx - c[2]) ** 2)
        volume[r < 9 + jitter] = 2
        volume[r < 6] = 3
        volume[r < 3 - jitter] = 1
    return pred, ref


def write(array, path, spacing=(0.9, 0.9, 1.5), origin=(0.0, 0.0, 0.0), direction=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


def test_regions_agree_with_nnunet(tmp_path):
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    pred, ref = brats_like()
    regions = [(1, 2, 3), (1, 3), 3]
    peer = compute_metrics(str(write(ref, tmp_path / "ref.nii.gz")), str(write(pred, tmp_path / "pred.nii.gz")),
                           SimpleITKIO(), regions)["metrics"]
    ours = compute_metrics_arrays(pred, ref, (1.5, 0.9, 0.9), {"whole": [1, 2, 3], "core": [1, 3], "enh": 3}, 1.0)
    assert list(ours.labels) == [3, (1, 2, 3), (1, 3)] or set(ours.labels) == {3, (1, 2, 3), (1, 3)}
    for key in regions:
        theirs = peer[key]
        mine = ours[key]
        assert mine.dice == pytest.approx(theirs["Dice"]) and mine.iou == pytest.approx(theirs["IoU"])
        assert (mine.volume_ref_ml * 1000 / (1.5 * 0.81)) == pytest.approx(theirs["n_ref"])
    assert str((1, 2, 3)) in ours.to_dict()  # summary keys as nnU-Net writes them


def test_region_dataset_json_and_cli(tmp_path):
    pred, ref = brats_like(1)
    dataset = tmp_path / "dataset.json"
    dataset.write_text(json.dumps({"labels": {"background": 0, "whole tumour": [1, 2, 3], "tumour core": [1, 3],
                                              "enhancing tumour": [3]}, "regions_class_order": [2, 1, 3]}))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "evaluate",
                           str(write(pred, tmp_path / "p.nii.gz")), str(write(ref, tmp_path / "r.nii.gz")),
                           "--labels", str(dataset), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["mean"]) == {"(1, 2, 3)", "(1, 3)", "(3,)"}
    assert summary["labels"]["(1, 2, 3)"] == "whole tumour"
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {r["label"] for r in rows} == {"(1, 2, 3)", "(1, 3)", "(3,)"}
    bad = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "evaluate", str(tmp_path / "p.nii.gz"),
                          str(tmp_path / "r.nii.gz"), "--region", "whole"], capture_output=True, text=True)
    assert bad.returncode != 0 and "NAME=VALUES" in bad.stderr and "Traceback" not in bad.stderr


# ---- clDice: the definition of Shit et al. as their reference code computes it ----

def cldice_reference(pred, ref):
    """jocpae/clDice, cldice_metric/cldice.py: cl_score(v, s) = sum(v*s)/sum(s); clDice from the two scores, with
    skimage's skeletonize (the reference's skeletonize_3d is skeletonize in scikit-image >= 0.25)."""
    from skimage.morphology import skeletonize

    def score(v, s):
        return np.sum(v * s) / np.sum(s)

    tprec = score(pred, skeletonize(ref))
    tsens = score(ref, skeletonize(pred))
    return 2 * tprec * tsens / (tprec + tsens)


def tubes(shape, seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for _ in range(4):
        start, end = rng.integers(2, np.array(shape) - 2, size=(2, len(shape)))
        for t in np.linspace(0, 1, 200):
            point = np.round(start + t * (end - start)).astype(int)
            mask[tuple(slice(max(p - 1, 0), p + 2) for p in point)] = True
    return mask


@pytest.mark.parametrize("shape", [(60, 60), (30, 40, 40)])
def test_cldice_agrees_with_the_reference(shape):
    ref = tubes(shape, 1)
    pred = tubes(shape, 1) & ~tubes(shape, 2) | tubes(shape, 3)
    assert cldice(pred, ref) == pytest.approx(cldice_reference(pred, ref), abs=1e-12)
    assert cldice(ref, ref) == pytest.approx(1.0)
    # through the evaluation, in the label's padded crop: the same value
    options, _ = metric_options("tubular")
    arrays = [m[None] if len(shape) == 2 else m for m in (pred, ref)]
    result = compute_metrics_arrays(*(a.astype(np.uint8) for a in arrays), (1.0, 1.0, 1.0), [1], 1.0, options)
    assert result[1].cldice == pytest.approx(cldice_reference(pred, ref), abs=1e-12)


# ---- calibration: torchmetrics and PyTorch on the same probabilities ----

def import_torchmetrics_classification():
    """torchmetrics.classification, imported as if torchvision were absent: the torchvision wheel that nnU-Net's
    timm pulls in here does not load with torch 2.13's CPU build ("operator torchvision::nms does not exist"),
    and torchmetrics imports torchvision whenever its metadata says it is installed (lightning_utilities'
    RequirementCache). The calibration metrics do not use torchvision."""
    from lightning_utilities.core import imports

    original = imports.RequirementCache._check_requirement

    def without_torchvision(self):
        if self.requirement and self.requirement.startswith("torchvision"):
            self.available, self.message = False, "torchvision left out for this test"
            return
        original(self)

    imports.RequirementCache._check_requirement = without_torchvision
    try:
        import torchmetrics.classification as classification
    finally:
        imports.RequirementCache._check_requirement = original
    return classification


def test_calibration_agrees_with_torchmetrics_and_torch():
    import torch

    classification = import_torchmetrics_classification()
    BinaryCalibrationError = classification.BinaryCalibrationError
    MulticlassCalibrationError = classification.MulticlassCalibrationError

    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 20, 30, 30)).astype(np.float32) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=0)
    reference = np.argmax(logits + rng.normal(size=logits.shape).astype(np.float32), axis=0)
    probabilities[1, 0, 0, :4] = (0.0, 1.0, 2 / 15, 1.0)  # edges of bins, certain voxels
    for label in (1, 2):
        p, y = probabilities[label], reference == label
        expected = BinaryCalibrationError(n_bins=15, norm="l1")(torch.from_numpy(p.ravel()),
                                                                torch.from_numpy(y.ravel().astype(np.int64)))
        assert calibration_error(p, y) == pytest.approx(float(expected), abs=1e-6)
        bce = torch.nn.functional.binary_cross_entropy(torch.from_numpy(p.astype(np.float64)),
                                                       torch.from_numpy(y.astype(np.float64)))
        assert nll(p, y) == pytest.approx(float(bce), rel=1e-9)
        assert brier(p, y) == pytest.approx(float(np.mean((p.astype(np.float64) - y) ** 2)))
    top = MulticlassCalibrationError(num_classes=3, n_bins=15, norm="l1")(
        torch.from_numpy(probabilities.reshape(3, -1).T.copy()), torch.from_numpy(reference.ravel()))
    assert top_label_error(probabilities, reference) == pytest.approx(float(top), abs=1e-6)


def test_evaluate_reads_nnunet_npz_and_probability_maps(tmp_path):
    rng = np.random.default_rng(5)
    reference = np.zeros((10, 20, 20), np.uint8)
    reference[2:8, 5:15, 5:15] = 1
    probabilities = np.stack([1 - reference * 0.8, reference * 0.8]).astype(np.float32)
    probabilities += rng.uniform(0, 0.1, size=probabilities.shape).astype(np.float32)
    probabilities /= probabilities.sum(axis=0)
    prediction = probabilities.argmax(axis=0).astype(np.uint8)
    for folder in ("npz", "maps", "pred", "ref"):
        (tmp_path / folder).mkdir()
    write(reference, tmp_path / "ref" / "c1.nii.gz")
    write(prediction, tmp_path / "pred" / "c1.nii.gz")
    np.savez_compressed(tmp_path / "npz" / "c1.npz", probabilities=probabilities)
    for k in range(2):
        write(probabilities[k], tmp_path / "maps" / f"c1_prob_{k}.nii.gz")
    from ImprovedNNUNetLib.evaluation.runner import evaluate

    results = [evaluate(tmp_path / "pred", tmp_path / "ref", probabilities=tmp_path / source)[0].metrics
               for source in ("npz", "maps")]
    expected = calibration_error(probabilities[1], reference == 1)
    for metrics in results:
        assert metrics[1].ece == pytest.approx(expected, abs=1e-7)
        assert metrics[1].brier == pytest.approx(brier(probabilities[1], reference == 1), rel=1e-6)
        assert math.isfinite(metrics.calibration["ECE_top_label"])
    with pytest.raises(UserError, match="no probabilities for case c1"):
        evaluate(tmp_path / "pred", tmp_path / "ref", probabilities=tmp_path / "ref")


# ---- metric groups, profiles, and the command's lesion outputs ----

def test_groups_switch_costly_metrics_off_and_profiles_set_tau():
    pred, ref = brats_like(2)
    options, tau = metric_options(None, ["overlap", "nsd"])
    m = compute_metrics_arrays(pred, ref, (1.0, 1.0, 1.0), [1], tau, options)[1]
    assert math.isfinite(m.dice) and math.isfinite(m.nsd) and math.isnan(m.hd95) and m.instances is None
    assert metric_options("organ")[1] == 2.0 and metric_options("lesion")[0].has("instances")
    with pytest.raises(UserError, match="unknown metric group"):
        metric_options(None, ["dice"])
    with pytest.raises(UserError, match="unknown profile"):
        metric_options("vessel")


def test_evaluate_command_writes_lesions_with_physical_centres(tmp_path):
    ref = np.zeros((20, 30, 30), np.uint8)
    pred = np.zeros_like(ref)
    ref[2:6, 2:8, 2:8] = 1
    pred[2:6, 2:8, 3:8] = 1
    ref[12:15, 20:24, 20:24] = 1  # missed
    pred[15:17, 2:4, 25:28] = 1  # false
    oblique = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # rotated 90° about z
    origin, spacing = (10.0, -5.0, 3.0), (0.5, 0.6, 2.0)
    for array, name in ((ref, "r.nii.gz"), (pred, "p.nii.gz")):
        write(array, tmp_path / name, spacing, origin, oblique)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "evaluate", str(tmp_path / "p.nii.gz"),
                           str(tmp_path / "r.nii.gz"), "--profile", "lesion", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 missed, 1 false" in done.stdout and "missed lesions to look at first" in done.stdout
    rows = list(csv.DictReader(open(out / "lesions.csv")))
    assert [r["kind"] for r in rows] == ["matched", "missed", "false"]
    missed = rows[1]
    i, j, k = 21.5, 21.5, 13.0  # centre of the missed lesion in voxel indices (x, y, z)
    expected = np.array(origin) + np.array(oblique).reshape(3, 3) @ (np.array([i, j, k]) * spacing)
    assert [float(missed[f"centre_{a}_mm"]) for a in "xyz"] == pytest.approx(expected.tolist())
    assert float(missed["volume_ref_ml"]) == pytest.approx(3 * 4 * 4 * 0.5 * 0.6 * 2.0 / 1000)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["definitions"]["profile"] == "lesion" and "instances" in summary["definitions"]
    assert summary["instances_mean"]["1"]["fn"] == 1 and summary["tau_mm"] == 1.0
    for flags, message in ((["--match-iou", "0"], "match-iou"), (["--size-bins", "1,a"], "size-bins"),
                           (["--connectivity", "5"], "connectivity 5"), (["--metrics", "x"], "unknown metric")):
        bad = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "evaluate", str(tmp_path / "p.nii.gz"),
                              str(tmp_path / "r.nii.gz"), "--instances", *flags], capture_output=True, text=True)
        assert bad.returncode != 0 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_the_tubular_profile_shows_and_defines_cldice(tmp_path, capsys):
    """evaluate --profile tubular prints the clDice column and states its definition in summary.json; without it
    neither appears (in-process: the command's main)."""
    from ImprovedNNUNetLib.cli.main import main

    ref = np.zeros((12, 24, 24), np.uint8)
    ref[6, 4:20, 11:13] = 1  # a vessel
    pred = np.roll(ref, 1, axis=2)
    write(ref, tmp_path / "r.nii.gz")
    write(pred, tmp_path / "p.nii.gz")
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "--profile", "tubular",
                 "--out", str(tmp_path / "tubular")]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("label"))
    assert header.split()[-3:] == ["clDice", "cases", "empty"]
    summary = json.loads((tmp_path / "tubular" / "summary.json").read_text())
    assert "skeleton" in summary["definitions"]["cldice"] and summary["mean"]["1"]["clDice"] is not None
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "--out", str(tmp_path / "plain")]) == 0
    assert "clDice" not in capsys.readouterr().out
    assert "cldice" not in json.loads((tmp_path / "plain" / "summary.json").read_text())["definitions"]
    (tmp_path / "probabilities").mkdir()  # with probabilities: the ECE column
    np.savez_compressed(tmp_path / "probabilities" / "p.npz",
                        probabilities=np.stack([1.0 - 0.9 * pred, 0.9 * pred]).astype(np.float32))
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "--probabilities",
                 str(tmp_path / "probabilities")]) == 0  # found under the prediction's name (the pair is named r)
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("label"))
    assert header.split()[-3:] == ["ECE", "cases", "empty"]
