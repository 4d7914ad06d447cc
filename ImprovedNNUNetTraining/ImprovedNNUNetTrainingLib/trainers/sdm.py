"""`sdm` variant: signed-distance-map regression head on the full-resolution decoder (Wang and Zhang).

The head (1×1(×1) convolution + tanh, one channel per foreground label) lives in the network
as the sub-module ``sdm_head`` and reads the input of the last segmentation layer (the last
decoder stage's features). It runs only while the network is in training mode (or when forced),
and then its maps leave the network as extra channels of the full-resolution output; in
evaluation mode the network is an ordinary segmentation network with an unchanged output. The
head keeps no state between passes, so nnU-Net's torch.compile applies to this variant as to the
others.

Where the distance targets are computed follows the training device: on a GPU the loss computes
them from the full-resolution target on the device (exact, a few milliseconds per batch); on the
CPU nnU-Net's data-loading workers compute them while the network trains on the previous batch
(the training pipeline ends with :class:`DistanceTargetTransform`, which adds them to the
deep-supervision target list as one more entry).

Region-based datasets (nnU-Net's regions, e.g. BraTS) get one map per region, of that region's binary mask,
regressed the same way beside nnU-Net's region loss. The head's size follows the checkpoint when a model is
loaded, so stock nnU-Net's predictor builds either kind from the class alone.
"""
from __future__ import annotations

import numpy as np
import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS
from ImprovedNNUNetTrainingLib.trainers.signed_distance import (
    label_distance_maps,
    signed_distance_map,
    signed_distance_targets,
)
from ImprovedNNUNetTrainingLib.trainers.signed_distance_torch import signed_distance_maps
from ImprovedNNUNetTrainingLib.trainers.signed_distance_torch import signed_distance_targets as torch_distance_targets


class DistanceTargetTransform(BasicTransform):
    """Last step of the training pipeline: append the signed distance maps of the full-resolution
    target (one per foreground label, or per region, float32) to the sample's deep-supervision target list."""

    def __init__(self, labels, spacing, regions: int = 0):
        super().__init__()
        self.labels = tuple(int(label) for label in labels)
        self.spacing = tuple(float(s) for s in spacing)
        self.regions = int(regions)  # region models: the number of region channels of the target

    def apply(self, data_dict, **params):
        targets = data_dict["segmentation"]
        if self.regions:  # (R[+ignore], *spatial) binary region channels
            maps = region_distance_targets(targets[0][None, :self.regions].numpy(), self.spacing)[0]
        else:
            maps = label_distance_maps(targets[0][0].numpy(), self.labels, self.spacing)  # (1, *spatial) -> spatial
        data_dict["segmentation"] = [*targets, torch.from_numpy(maps)]
        return data_dict


class DistanceHead(nn.Module):
    """1×1 convolution + tanh on the decoder's full-resolution features, one channel per foreground label.

    The head is part of the network's forward pass: while it is in training mode (or ``always_on`` is
    set) the full-resolution segmentation output carries its maps as extra channels after the
    segmentation logits (see :func:`split_distance`); in evaluation mode the network's output is
    unchanged. No state is kept between passes, so torch.compile traces the head like any layer.
    """

    def __init__(self, conv_op: type, in_channels: int, num_labels: int):
        super().__init__()
        self.conv = conv_op(in_channels, num_labels, kernel_size=1)
        self.always_on = False
        self._register_load_state_dict_pre_hook(self._fit_checkpoint)

    def _fit_checkpoint(self, state_dict, prefix, *args):
        """A checkpoint of a region model has one map per region: the convolution takes the checkpoint's size."""
        weight = state_dict.get(prefix + "conv.weight")
        if weight is not None and weight.shape[0] != self.conv.out_channels:
            self.conv = type(self.conv)(self.conv.in_channels, int(weight.shape[0]), kernel_size=1).to(
                self.conv.weight.device)

    def forward(self, features):
        return torch.tanh(self.conv(features))

    def append_to(self, _module, inputs, logits):
        """Forward hook of the last segmentation layer: its logits, followed by the distance maps when on."""
        if self.training or self.always_on:
            return torch.cat([logits, self(inputs[0]).to(logits.dtype)], dim=1)
        return logits


def attach_distance_head(network: nn.Module, num_segmentation_heads: int, regions: bool = False) -> DistanceHead:
    """Add ``network.sdm_head`` (one channel per foreground label; per region for region models) fed by the last
    decoder stage."""
    seg_layer = network.decoder.seg_layers[-1]
    maps = num_segmentation_heads if regions else num_segmentation_heads - 1
    head = DistanceHead(type(seg_layer), seg_layer.in_channels, maps)
    network.add_module("sdm_head", head)
    seg_layer.register_forward_hook(head.append_to)
    return head


def split_distance(output, num_labels: int):
    """(segmentation output, distance maps) of a network output whose full-resolution entry carries
    ``num_labels`` distance channels at its end (a list of deep-supervision outputs or one tensor)."""
    full = output[0] if isinstance(output, (list, tuple)) else output
    segmentation, distance = full[:, :-num_labels], full[:, -num_labels:]
    if isinstance(output, (list, tuple)):
        return [segmentation, *output[1:]], distance
    return segmentation, distance


class SegmentationAndDistanceLoss(nn.Module):
    """Segmentation loss + weight · MSE(head output, signed distance target of the full-resolution target).

    The targets come with the batch when the data-loading workers made them (CPU training), or are
    computed here on the training device from the full-resolution target (GPU training).
    """

    def __init__(self, segmentation_loss: nn.Module, num_segmentation_heads: int, weight: float, spacing, labels,
                 regions: bool = False):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.num_segmentation_heads = num_segmentation_heads
        self.weight = weight
        self.spacing = tuple(spacing)
        self.labels = tuple(labels)  # foreground labels, or for region models the regions (one map each)
        self.regions = regions

    def forward(self, output, target):
        sdm = None
        if isinstance(output, (list, tuple)) and isinstance(target, (list, tuple)) and len(target) > len(output):
            target, sdm = target[:len(output)], target[-1]  # made by DistanceTargetTransform
        full = output[0] if isinstance(output, (list, tuple)) else output
        if full.shape[1] == self.num_segmentation_heads:  # evaluation mode: no distance channels
            return self.segmentation_loss(output, target)
        output, prediction = split_distance(output, len(self.labels))
        loss = self.segmentation_loss(output, target)
        if self.weight == 0:
            return loss
        if sdm is None:
            full_target = target[0] if isinstance(target, (list, tuple)) else target
            if self.regions:
                sdm = device_region_targets(full_target[:, :len(self.labels)], self.spacing)
            else:
                sdm = device_targets(full_target, self.labels, self.spacing)
        sdm = sdm.to(prediction.device, non_blocking=True)
        return loss + self.weight * nn.functional.mse_loss(prediction.float(), sdm)


def device_targets(segmentation: torch.Tensor, labels, spacing) -> torch.Tensor:
    """The distance targets of a (B, 1, *spatial) label batch: on its device with torch, on the CPU with ``edt``."""
    if segmentation.device.type == "cpu":
        return torch.from_numpy(signed_distance_targets(segmentation.detach().numpy(), labels, spacing))
    with torch.no_grad():
        return torch_distance_targets(segmentation.detach(), labels, spacing)


def region_distance_targets(regions: np.ndarray, spacing) -> np.ndarray:
    """(B, R, *spatial) binary region channels -> their signed distance maps, float32, with ``edt``."""
    return np.stack([np.stack([signed_distance_map(channel > 0, spacing) for channel in sample])
                     for sample in np.asarray(regions)])


def device_region_targets(regions: torch.Tensor, spacing) -> torch.Tensor:
    """Region channels' distance targets on their device (torch), or on the CPU with ``edt``."""
    if regions.device.type == "cpu":
        return torch.from_numpy(region_distance_targets(regions.detach().numpy(), spacing))
    with torch.no_grad(), torch.autocast(regions.device.type, enabled=False):
        batch, count = regions.shape[:2]
        masks = regions.detach().reshape(batch * count, *regions.shape[2:]) > 0
        return signed_distance_maps(masks, spacing).reshape(regions.shape)


class nnUNetTrainerSDM(nnUNetTrainer):
    """Stock nnU-Net plus the signed-distance-map head and its MSE loss term.

    The distance term enters the training loss only (the head is off in evaluation mode, so the
    per-epoch validation loss is the segmentation loss alone).
    """

    sdm_weight = VARIANT_DEFAULTS["sdm"]["sdm_weight"]
    _building_for_regions = False  # set while this trainer builds its network (a class method, given no labels)

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        network = super().build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                     num_output_channels, enable_deep_supervision)
        attach_distance_head(network, num_output_channels, regions=cls._building_for_regions)
        return network

    def initialize(self):
        nnUNetTrainerSDM._building_for_regions = self.label_manager.has_regions
        try:
            super().initialize()
        finally:
            nnUNetTrainerSDM._building_for_regions = False

    def get_training_transforms(self, *args, **kwargs):
        """nnU-Net's pipeline; when training on the CPU, plus the distance targets, so that the data-loading
        workers compute them while the network trains. On a GPU the loss computes them on the device."""
        compose = super().get_training_transforms(*args, **kwargs)
        if self.enable_deep_supervision and self.device.type == "cpu":  # one more entry of the target list
            regions = len(self.label_manager.foreground_regions) if self.label_manager.has_regions else 0
            compose.transforms.append(DistanceTargetTransform(self.label_manager.foreground_labels,
                                                              self.configuration_manager.spacing, regions))
        return compose

    def _build_loss(self):
        loss = super()._build_loss()
        regions = self.label_manager.has_regions
        return SegmentationAndDistanceLoss(loss, self.label_manager.num_segmentation_heads, self.sdm_weight,
                                           self.configuration_manager.spacing,
                                           self.label_manager.foreground_regions if regions else
                                           self.label_manager.foreground_labels, regions=regions)
