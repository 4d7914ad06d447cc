"""SDM models (the `sdm` variant) return the segmentation and, when asked, one signed-distance map per label."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def sdm_model(trained_model):
    from ImprovedNNUNetLib.inference import load_model

    return load_model(trained_model("sdm"), folds=0, device="cpu")


def test_sdm_model_returns_segmentation_and_distance_maps(sdm_model, chest_volume):
    assert sdm_model.has_distance_head
    plain = sdm_model.predict(chest_volume)
    result = sdm_model.predict(chest_volume, sdm=True)
    assert plain.distance_maps is None
    np.testing.assert_array_equal(result.segmentation.array, plain.segmentation.array)
    foreground = [name for name in sdm_model.labels if name != "background"]
    assert list(result.distance_maps) == foreground
    for image in result.distance_maps.values():
        assert image.same_grid(chest_volume)
        assert image.array.dtype == np.float32
        assert np.all(np.abs(image.array) <= 1.0 + 1e-3)
        assert np.ptp(image.array) > 0


def test_distance_maps_are_the_heads_output(sdm_model, chest_volume):
    """On an input of exactly one patch at the model's spacing, the sliding window reduces to one forward
    pass: the maps must be the head's tanh output for nnU-Net's preprocessed input.

    nnU-Net accumulates Gaussian-weighted outputs in float16; at the patch rim the weights fall below
    float16 resolution, so the comparison covers the voxels whose weight is at least 1 % of the peak."""
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian

    from ImprovedNNUNetLib.inference.distance import SegmentationWithDistance

    patch = sdm_model.configuration_manager.patch_size
    assert np.allclose(chest_volume.spacing[::-1], sdm_model.configuration_manager.spacing)
    single = chest_volume.with_array(np.ascontiguousarray(chest_volume.array[:patch[0], :patch[1], :patch[2]]))
    preprocessor = sdm_model.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case_npy(single.array[None].astype(np.float32), None,
                                                    {"spacing": list(single.spacing[::-1])},
                                                    sdm_model.plans_manager, sdm_model.configuration_manager,
                                                    sdm_model.folder.dataset_json)
    assert list(data.shape[1:]) == list(patch)
    assert [list(b) for b in properties["bbox_used_for_cropping"]] == [[0, s] for s in patch]
    heads = sdm_model.label_manager.num_segmentation_heads
    with torch.no_grad():
        expected = SegmentationWithDistance(sdm_model.network.eval())(torch.from_numpy(data)[None])[0, heads:]
    maps = sdm_model.predict(single, sdm=True).distance_maps
    ours = np.stack([image.array for image in maps.values()])
    weight = compute_gaussian(tuple(patch), sigma_scale=1.0 / 8, value_scaling_factor=10,
                              device=torch.device("cpu")).float().numpy()
    trusted = weight >= 0.1  # 1 % of the peak weight 10
    assert trusted.mean() > 0.2
    np.testing.assert_allclose(ours[:, trusted], expected.numpy()[:, trusted], atol=2e-3)
