"""`sdm` variant: signed-distance-map regression head on the full-resolution decoder (seed 001).

The head (1×1(×1) convolution + tanh, one channel per foreground label) lives in the network
as the sub-module ``sdm_head`` and reads the output of the last decoder stage through a
forward hook. It runs only while the network is in training mode (or when forced), so in
evaluation mode the network is an ordinary segmentation network with an unchanged output.

The distance targets are computed in nnU-Net's data-loading workers, while the network trains on
the previous batch: the training pipeline ends with :class:`DistanceTargetTransform`, which adds
them to the deep-supervision target list as one more entry. The loss computes them itself for a
batch that does not carry them (no deep supervision, batches made elsewhere).
"""
from __future__ import annotations

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from .network_utils import bare_network
from .signed_distance import label_distance_maps, signed_distance_targets


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
    """1×1 convolution + tanh on the decoder's full-resolution features.

    ``output`` holds the distance maps of the last forward pass of the network while the head
    is in training mode or ``always_on`` is set, and None otherwise.
    """

    def __init__(self, conv_op: type, in_channels: int, num_labels: int):
        super().__init__()
        self.conv = conv_op(in_channels, num_labels, kernel_size=1)
        self.always_on = False
        self.output = None

    def capture(self, _module, _inputs, features):
        self.output = torch.tanh(self.conv(features)) if (self.training or self.always_on) else None


def attach_distance_head(network: nn.Module, num_segmentation_heads: int) -> DistanceHead:
    """Add ``network.sdm_head`` (one channel per foreground label) fed by the last decoder stage."""
    seg_layer = network.decoder.seg_layers[-1]
    head = DistanceHead(type(seg_layer), seg_layer.in_channels, num_segmentation_heads - 1)
    network.add_module("sdm_head", head)
    network.decoder.stages[-1].register_forward_hook(head.capture)
    return head


class SegmentationAndDistanceLoss(nn.Module):
    """Segmentation loss + weight · MSE(head output, signed distance target of the full-resolution target)."""

    def __init__(self, segmentation_loss: nn.Module, head: DistanceHead, weight: float, spacing, labels):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.head = head
        self.weight = weight
        self.spacing = tuple(spacing)
        self.labels = tuple(labels)

    def forward(self, output, target):
        sdm = None
        if isinstance(output, (list, tuple)) and isinstance(target, (list, tuple)) and len(target) > len(output):
            target, sdm = target[:len(output)], target[-1]  # made by DistanceTargetTransform
        loss = self.segmentation_loss(output, target)
        prediction = self.head.output
        if prediction is None or self.weight == 0:
            return loss
        if sdm is None:
            full_target = target[0] if isinstance(target, (list, tuple)) else target
            sdm = torch.from_numpy(signed_distance_targets(full_target.detach().cpu().numpy(), self.labels,
                                                           self.spacing))
        sdm = sdm.to(prediction.device, non_blocking=True)
        return loss + self.weight * nn.functional.mse_loss(prediction.float(), sdm)


class nnUNetTrainerSDM(nnUNetTrainer):
    """Stock nnU-Net plus the signed-distance-map head and its MSE loss term.

    The distance term enters the training loss only (the head is off in evaluation mode, so the
    per-epoch validation loss is the segmentation loss alone).
    """

    sdm_weight = 1.0

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        network = super().build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                     num_output_channels, enable_deep_supervision)
        attach_distance_head(network, num_output_channels)
        return network

    def get_training_transforms(self, *args, **kwargs):
        """nnU-Net's pipeline plus the distance targets, so the data-loading workers compute them."""
        compose = super().get_training_transforms(*args, **kwargs)
        if self.enable_deep_supervision:  # the targets travel as one more entry of the target list
            compose.transforms.append(DistanceTargetTransform(self.label_manager.foreground_labels,
                                                              self.configuration_manager.spacing))
        return compose

    def _do_i_compile(self):
        """No torch.compile: the head reads the decoder features through a forward hook with a side
        effect, which compiled graphs are not guaranteed to replay."""
        return False

    def _build_loss(self):
        if self.label_manager.has_regions:
            raise RuntimeError("the sdm variant needs label-based training; this dataset uses regions")
        loss = super()._build_loss()
        return SegmentationAndDistanceLoss(loss, bare_network(self.network).sdm_head, self.sdm_weight,
                                           self.configuration_manager.spacing,
                                           self.label_manager.foreground_labels)
