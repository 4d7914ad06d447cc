"""Bringing network outputs back to the input's grid and naming them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image

from ImprovedNNUNetLib.core.imageio import Image


@dataclass
class PredictionResult:
    """What ``LoadedModel.predict`` returns; every image has the input's exact geometry.

    ``probabilities``: one map per network output (label names; region names for region-based
    models), the mean over the folds. ``distance_maps``: for SDM models when asked, one map per
    foreground label, negative inside, positive outside, in [-1, 1]. ``probability_array`` and
    ``nnunet_properties``: the probabilities as nnU-Net's ``.npz`` / ``.pkl`` files hold them.
    """

    segmentation: Image
    probabilities: dict[str, Image] | None = None
    distance_maps: dict[str, Image] | None = None
    # With probabilities: the same maps as nnU-Net stores them (.npz: (c, z, y, x) float32) and the case's
    # properties (.pkl), see ``npz.write_npz``.
    probability_array: np.ndarray | None = None
    nnunet_properties: dict | None = None
    # With uncertainty: normalised entropy of the mean probabilities, the folds' disagreement (several folds
    # only) and the case's review score (see ``uncertainty``).
    uncertainty: Image | None = None
    disagreement: Image | None = None
    uncertainty_score: dict | None = None


def output_names(label_manager, labels: dict) -> list[str]:
    """The name of each network output channel, in output order."""
    if label_manager.has_regions:  # one output per non-background region, in dataset.json order
        return [name for name, value in labels.items() if name != "ignore" and np.any(np.atleast_1d(value) != 0)]
    by_value = {int(value): name for name, value in labels.items() if name != "ignore"}
    return [by_value[value] for value in label_manager.all_labels]


def foreground_names(label_manager, labels: dict) -> list[str]:
    """Names of the foreground outputs (distance maps have one channel per foreground label)."""
    names = output_names(label_manager, labels)
    return names if label_manager.has_regions else names[1:]


def segmentation_dtype(label_manager):
    return np.uint8 if len(label_manager.foreground_labels) < 255 else np.uint16


def maps_to_input_grid(maps, properties: dict, plans_manager, configuration_manager, fill_value: float):
    """Resample per-channel maps from the network grid to the input grid (nnU-Net's way for probabilities).

    ``maps`` is (c, *network grid) as predicted; the result is (c, z, y, x) float32 on the input's
    grid, with ``fill_value`` where nnU-Net cropped the input away.
    """
    import torch

    original_spacing = [properties["spacing"][i] for i in plans_manager.transpose_forward]
    cropped_shape = properties["shape_after_cropping_and_before_resampling"]
    network_spacing = list(configuration_manager.spacing)
    if len(network_spacing) < len(cropped_shape):  # 2-D configuration: slices keep their spacing
        network_spacing = [original_spacing[0], *network_spacing]
    resampled = configuration_manager.resampling_fn_probabilities(maps, cropped_shape, network_spacing,
                                                                  original_spacing)
    if isinstance(resampled, torch.Tensor):
        resampled = resampled.cpu().numpy()
    full = np.full((resampled.shape[0], *properties["shape_before_cropping"]), fill_value, dtype=np.float32)
    full = insert_crop_into_image(full, resampled.astype(np.float32, copy=False), properties["bbox_used_for_cropping"])
    return full.transpose([0, *[i + 1 for i in plans_manager.transpose_backward]])


def named_images(maps: np.ndarray, names: list[str], template: Image) -> dict[str, Image]:
    return {name: template.with_array(np.ascontiguousarray(maps[i])) for i, name in enumerate(names)}
