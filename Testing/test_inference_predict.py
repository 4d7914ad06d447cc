"""In-memory prediction with a real tiny nnU-Net model on a real CT volume: geometry, equality with
nnU-Net's own predictor, probabilities and the tile progress report."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def stock_prediction(model_folder, image, mirroring: bool, probabilities: bool = False, folds=(0,)):
    """nnU-Net's predictor initialised the stock way (the baseline trainer is found without importing variants)."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=mirroring, device=torch.device("cpu"),
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=tuple(folds))
    return predictor.predict_single_npy_array(image.array[None].astype(np.float32),
                                              {"spacing": list(image.spacing[::-1])},
                                              save_or_return_probabilities=probabilities)


def test_segmentation_has_the_input_geometry(baseline_model, chest_volume):
    result = baseline_model.predict([chest_volume])
    segmentation = result.segmentation
    assert segmentation.array.shape == chest_volume.array.shape
    assert segmentation.spacing == chest_volume.spacing
    assert segmentation.origin == chest_volume.origin
    assert segmentation.direction == chest_volume.direction
    assert segmentation.array.dtype == np.uint8
    assert set(np.unique(segmentation.array)) <= set(baseline_model.labels.values())
    # the geometry survives a file round trip too
    assert segmentation.to_sitk().GetSize() == chest_volume.to_sitk().GetSize()


@pytest.mark.parametrize("mirroring", [False, True])
def test_equals_stock_predict_single_npy_array(trained_model, baseline_model, chest_volume, mirroring):
    ours = baseline_model.predict([chest_volume], tta=mirroring, probabilities=True)
    stock_segmentation, stock_probabilities = stock_prediction(trained_model("baseline"), chest_volume, mirroring,
                                                               probabilities=True)
    np.testing.assert_array_equal(ours.segmentation.array, stock_segmentation)
    names = list(ours.probabilities)
    assert len(names) == stock_probabilities.shape[0]
    for index, name in enumerate(names):
        np.testing.assert_array_equal(ours.probabilities[name].array, stock_probabilities[index])


def test_arrays_with_geometry_equal_image_input(baseline_model, chest_volume):
    from_image = baseline_model.predict(chest_volume)
    from_array = baseline_model.predict([chest_volume.array], spacing=chest_volume.spacing,
                                        origin=chest_volume.origin, direction=chest_volume.direction)
    np.testing.assert_array_equal(from_array.segmentation.array, from_image.segmentation.array)
    assert from_array.segmentation.same_grid(chest_volume)


def test_probabilities_are_named_by_label_and_sum_to_one(baseline_model, chest_volume):
    result = baseline_model.predict([chest_volume], probabilities=True)
    assert list(result.probabilities) == list(baseline_model.labels)
    stacked = np.stack([image.array for image in result.probabilities.values()])
    np.testing.assert_allclose(stacked.sum(axis=0), 1.0, atol=1e-3)
    np.testing.assert_array_equal(np.argmax(stacked, axis=0), result.segmentation.array)
    assert all(image.same_grid(chest_volume) for image in result.probabilities.values())


def test_progress_counts_every_tile(baseline_model, chest_volume):
    calls = []
    baseline_model.predict([chest_volume], step=0.5, progress=lambda done, total: calls.append((done, total)))
    totals = {total for _, total in calls}
    assert len(totals) == 1
    total = totals.pop()
    assert [done for done, _ in calls] == list(range(1, total + 1))
    # 16×48×56 voxels in 8×32×32 tiles at half-patch steps: 3 × 2 × 3 positions
    assert total == 18
    finer = []
    baseline_model.predict([chest_volume], step=0.25, progress=lambda done, total: finer.append(total))
    assert finer[-1] > total


def test_default_mirroring_is_off_on_the_cpu(baseline_model, chest_volume):
    """(That ``tta=True`` mirrors is shown by the equality with nnU-Net's mirroring predictor above.)"""
    assert baseline_model.device.type == "cpu"
    default = baseline_model.predict([chest_volume], probabilities=True).probabilities
    without = baseline_model.predict([chest_volume], tta=False, probabilities=True).probabilities
    for name in default:
        np.testing.assert_array_equal(default[name].array, without[name].array)


def test_two_folds_equal_nnunet_predictor_use_folds(trained_model, chest_volume):
    """Folds are ensembled as nnU-Net's predictor does (mean of the logits, converted once): voxel-equal
    segmentation and equal probabilities to ``nnUNetPredictor(use_folds=(0, 1))`` on the same model."""
    from ImprovedNNUNetLib.inference import load_model

    folder = trained_model("baseline", folds=(0, 1))
    ours = load_model(folder, folds=[0, 1], device="cpu").predict([chest_volume], tta=False, probabilities=True)
    segmentation, probabilities = stock_prediction(folder, chest_volume, False, probabilities=True, folds=(0, 1))
    np.testing.assert_array_equal(ours.segmentation.array, segmentation)
    stacked = np.stack([image.array for image in ours.probabilities.values()])
    np.testing.assert_allclose(stacked, probabilities, atol=1e-6)
    # the two folds really differ, so averaging probabilities instead of logits could show here
    single = [load_model(folder, folds=[fold], device="cpu").predict([chest_volume], tta=False).segmentation.array
              for fold in (0, 1)]
    assert (single[0] != single[1]).any()


def test_mirrors_in_one_batch_equal_nnunets_mirroring(trained_model, baseline_model, chest_volume):
    """On CUDA a tile's eight mirrored copies go through the network as one batch; forced here on the CPU,
    the probabilities match nnU-Net's one-pass-per-mirror predictor up to rounding (batched CPU convolutions
    round differently: measured at most 2e-3 on a few voxels, mean below 1e-6) and the labels are identical
    but for near-ties within that rounding (one voxel in 43008 once, in a CI run)."""
    predictor = baseline_model.predictor
    assert predictor.batch_mirrors is False  # CPU default: nnU-Net's own mirroring loop
    calls = []
    original = predictor._mirrors_in_one_batch
    predictor._mirrors_in_one_batch = lambda x: calls.append(x.shape) or original(x)
    predictor.batch_mirrors = True
    try:
        ours = baseline_model.predict([chest_volume], tta=True, probabilities=True)
    finally:
        predictor.batch_mirrors = False
        del predictor._mirrors_in_one_batch
    assert calls and all(shape[0] == 1 for shape in calls)
    stock_segmentation, stock_probabilities = stock_prediction(trained_model("baseline"), chest_volume, True,
                                                               probabilities=True)
    stacked = np.stack([image.array for image in ours.probabilities.values()])
    difference = np.abs(stacked - stock_probabilities)  # batched convolutions (oneDNN) round differently
    assert difference.max() < 5e-3 and difference.mean() < 1e-5
    # labels are identical except where nnU-Net's own two best classes are closer than that rounding (a tie
    # that either order of summation may break; the tiny test model has some)
    flipped = ours.segmentation.array != stock_segmentation
    best_two = np.sort(stock_probabilities, axis=0)[-2:]
    assert (best_two[1] - best_two[0])[flipped].max(initial=0.0) <= 2 * difference.max()
    assert flipped.mean() < 1e-3
