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
"""
from __future__ import annotations

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS
from ImprovedNNUNetTrainingLib.trainers.signed_distance import label_distance_maps, signed_distance_targets
from ImprovedNNUNetTrainingLib.trainers.signed_distance_torch import signed_distance_targets as torch_distance_targets


class DistanceTargetTransform(BasicTransform):
    """Last step of the training pipeline: append the signed distance maps of the full-resolution
    target (one per foreground label, float32) to the sample's deep-supervision target list."""

    def __init__(self, labels, spacing):
        super().__init__()
        self.labels = tuple(int(label) for label in labels)
        self.spacing = tuple(float(s) for s in spacing)

    def apply(self, data_dict, **params):
        targets = data_dict["segmentation"]
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

    def forward(self, features):
        return torch.tanh(self.conv(features))

    def append_to(self, _module, inputs, logits):
        """Forward hook of the last segmentation layer: its logits, followed by the distance maps when on."""
        if self.training or self.always_on:
            return torch.cat([logits, self(inputs[0]).to(logits.dtype)], dim=1)
        return logits


def attach_distance_head(network: nn.Module, num_segmentation_heads: int) -> DistanceHead:
    """Add ``network.sdm_head`` (one channel per foreground label) fed by the last decoder stage."""
    seg_layer = network.decoder.seg_layers[-1]
    head = DistanceHead(type(seg_layer), seg_layer.in_channels, num_segmentation_heads - 1)
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

    def __init__(self, segmentation_loss: nn.Module, num_segmentation_heads: int, weight: float, spacing, labels):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.num_segmentation_heads = num_segmentation_heads
        self.weight = weight
        self.spacing = tuple(spacing)
        self.labels = tuple(labels)

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
            sdm = device_targets(full_target, self.labels, self.spacing)
        sdm = sdm.to(prediction.device, non_blocking=True)
        return loss + self.weight * nn.functional.mse_loss(prediction.float(), sdm)


def device_targets(segmentation: torch.Tensor, labels, spacing) -> torch.Tensor:
    """The distance targets of a (B, 1, *spatial) label batch: on its device with torch, on the CPU with ``edt``."""
    if segmentation.device.type == "cpu":
        return torch.from_numpy(signed_distance_targets(segmentation.detach().numpy(), labels, spacing))
    with torch.no_grad():
        return torch_distance_targets(segmentation.detach(), labels, spacing)


class nnUNetTrainerSDM(nnUNetTrainer):
    """Stock nnU-Net plus the signed-distance-map head and its MSE loss term.

    The distance term enters the training loss only (the head is off in evaluation mode, so the
    per-epoch validation loss is the segmentation loss alone).
    """

    sdm_weight = VARIANT_DEFAULTS["sdm"]["sdm_weight"]

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        network = super().build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                     num_output_channels, enable_deep_supervision)
        attach_distance_head(network, num_output_channels)
        return network

    def get_training_transforms(self, *args, **kwargs):
        """nnU-Net's pipeline; when training on the CPU, plus the distance targets, so that the data-loading
        workers compute them while the network trains. On a GPU the loss computes them on the device."""
        compose = super().get_training_transforms(*args, **kwargs)
        if self.enable_deep_supervision and self.device.type == "cpu":  # one more entry of the target list
            compose.transforms.append(DistanceTargetTransform(self.label_manager.foreground_labels,
                                                              self.configuration_manager.spacing))
        return compose

    def _build_loss(self):
        if self.label_manager.has_regions:
            raise RuntimeError("the sdm variant needs label-based training; this dataset uses regions")
        loss = super()._build_loss()
        return SegmentationAndDistanceLoss(loss, self.label_manager.num_segmentation_heads, self.sdm_weight,
                                           self.configuration_manager.spacing,
                                           self.label_manager.foreground_labels)
