"""Several folds are ensembled by the mean of their probabilities."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def two_fold_folder(trained_model):
    return trained_model("baseline", folds=(0, 1))


def test_two_fold_ensemble_is_not_the_mean_of_fold_probabilities(two_fold_folder, chest_volume):
    """Folds are ensembled by their mean logits, as nnU-Net's predictor does (the equality with nnU-Net is in
    test_inference_predict.py): the probabilities sum to one, the labels are their arg-max, and they differ
    from the mean of the folds' probabilities (what `ensemble` of probability files computes)."""
    from ImprovedNNUNetLib.inference import load_model

    ensemble = load_model(two_fold_folder, device="cpu")
    assert ensemble.folds == [0, 1]
    fold_probabilities = [load_model(two_fold_folder, folds=fold, device="cpu").predict(
        chest_volume, probabilities=True).probabilities for fold in (0, 1)]
    calls = []
    result = ensemble.predict(chest_volume, probabilities=True, progress=lambda d, t: calls.append((d, t)))
    names = list(result.probabilities)
    mean = np.stack([(fold_probabilities[0][n].array + fold_probabilities[1][n].array) / 2 for n in names])
    ours = np.stack([result.probabilities[n].array for n in names])
    np.testing.assert_allclose(ours.sum(axis=0), 1.0, atol=1e-3)
    np.testing.assert_array_equal(result.segmentation.array, np.argmax(ours, axis=0))
    assert np.abs(ours - mean).max() > 1e-4  # softmax of the mean logits is not the mean of the softmaxes
    assert result.segmentation.same_grid(chest_volume)
    # progress covers both folds' tiles
    assert calls[-1][0] == calls[-1][1] == 2 * 18


def test_ensemble_without_probabilities_gives_the_same_labels(two_fold_folder, chest_volume):
    from ImprovedNNUNetLib.inference import load_model

    ensemble = load_model(two_fold_folder, folds=[0, 1], device="cpu")
    with_maps = ensemble.predict(chest_volume, probabilities=True)
    labels_only = ensemble.predict(chest_volume)
    assert labels_only.probabilities is None
    np.testing.assert_array_equal(labels_only.segmentation.array, with_maps.segmentation.array)
