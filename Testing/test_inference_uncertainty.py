"""predict --uncertainty: entropy and fold-disagreement maps of a real two-fold model, and the review ranking."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from ImprovedNNUNetLib.core.imageio import read_image, write_image
from ImprovedNNUNetLib.inference.uncertainty import case_score, disagreement_of, entropy


def test_entropy_and_disagreement_by_hand():
    certain = np.zeros((3, 1, 1, 2), np.float32)
    certain[0] = 1.0
    assert entropy(certain, regions=False) == pytest.approx(0.0, abs=1e-6)
    even = np.full((3, 1, 1, 2), 1 / 3, np.float32)
    assert entropy(even, regions=False) == pytest.approx(1.0)  # normalised by log C
    assert entropy(np.full((2, 1, 1, 1), 0.5, np.float32), regions=True) == pytest.approx(1.0)
    ensemble = np.array([[[0, 1, 2]]])
    votes = [np.array([[[0, 1, 2]]]), np.array([[[0, 2, 2]]]), np.array([[[1, 2, 2]]])]
    assert disagreement_of(votes, ensemble)[0, 0].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    score = case_score(np.full((2, 2, 2), 0.5, np.float32), np.eye(2, dtype=np.uint8)[None].repeat(2, 0),
                       (2.0, 1.0, 1.0))
    assert score["uncertain_volume_ml"] == pytest.approx(8 * 0.5 * 2 / 1000)
    assert score["mean_entropy_foreground"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def two_folds(trained_model):
    return trained_model("baseline", folds=(0, 1))


def test_predict_writes_uncertainty_maps_and_ranking(two_folds, chest_volume, tmp_path):
    from ImprovedNNUNetLib.inference import load_model

    cases = tmp_path / "in"
    for index, shift in enumerate((0, 40)):
        image = chest_volume.with_array(np.clip(chest_volume.array + shift * index, -1024, None))
        write_image(image, cases / f"case{index}_0000.nii.gz")
    out = tmp_path / "out"
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "predict", "-i", str(cases), "-o", str(out),
                          "-m", str(two_folds), "-f", "0", "1", "--device", "cpu", "--uncertainty"],
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert "review first" in ran.stdout
    model = load_model(two_folds, folds=[0, 1], device="cpu")
    direct = model.predict(read_image(cases / "case0_0000.nii.gz"), probabilities=True, uncertainty=True)
    written = read_image(out / "case0_uncertainty.nii.gz")
    assert written.same_grid(direct.segmentation)
    expected = entropy(direct.probability_array, regions=False)
    assert np.allclose(written.array, expected, atol=1e-6)
    assert 0.0 <= written.array.min() and written.array.max() <= 1.0
    disagreement = read_image(out / "case0_disagreement.nii.gz").array
    # two folds: 0, a half or (both unlike the ensemble's mean-logit label) 1, resampled
    assert disagreement.min() >= 0.0 and disagreement.max() <= 1.0 + 1e-6
    # where both folds' labels agree with each other, no disagreement: checked against the folds themselves
    single = [load_model(two_folds, folds=f, device="cpu").predict(read_image(cases / "case0_0000.nii.gz"))
              for f in (0, 1)]
    agree = single[0].segmentation.array == single[1].segmentation.array
    assert disagreement[~agree].mean() > disagreement[agree].mean()
    rows = list(csv.DictReader(open(out / "uncertainty.csv")))
    assert [r["rank"] for r in rows] == ["1", "2"]
    volumes = [float(r["uncertain_volume_ml"]) for r in rows]
    assert volumes == sorted(volumes, reverse=True)
    score = json.loads((out / "case0_uncertainty.json").read_text())
    assert score["uncertain_volume_ml"] == pytest.approx(direct.uncertainty_score["uncertain_volume_ml"], rel=1e-5)
