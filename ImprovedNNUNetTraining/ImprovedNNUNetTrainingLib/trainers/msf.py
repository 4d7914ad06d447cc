"""`msf` variant: two-stage training with the mis-segmentation-focus loss (He et al.).

Stage 1 (the first ``msf_stage1_fraction`` of the epochs) trains with the global loss only.
Stage 2 adds λ·L_MSF: the same Dice+CE restricted to the MSF region, the union over labels of
the dilated (prediction XOR reference) masks, computed per batch from the detached current
full-resolution prediction.

Region-based datasets (nnU-Net's regions, e.g. BraTS whole tumour / tumour core / enhancing tumour) train the
same way with nnU-Net's region loss (Dice + BCE on one sigmoid output per region): the MSF region is the union
over regions of the dilated (p > 0.5 XOR reference region) masks, and L_MSF is that region loss restricted to
it (voxels outside are ignored, as nnU-Net ignores its ignore label).
"""
from __future__ import annotations

import math

import torch
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS
from ImprovedNNUNetTrainingLib.trainers.network_utils import compound_loss


def ball(radius: int, ndim: int) -> torch.Tensor:
    """Euclidean ball of ``radius`` voxels as a float kernel of shape (1, 1, 2r+1, ...)."""
    axis = torch.arange(-radius, radius + 1, dtype=torch.float32)
    grids = torch.meshgrid(*([axis] * ndim), indexing="ij")
    inside = sum(g ** 2 for g in grids) <= radius ** 2
    return inside.float()[None, None]


def misseg_region(prediction: torch.Tensor, reference: torch.Tensor, labels, radius: int) -> torch.Tensor:
    """Union over ``labels`` of dilate(prediction == n XOR reference == n), dilation by a ball of ``radius`` voxels.

    ``prediction`` and ``reference``: (B, 1, *spatial) label maps. Returns a bool tensor of the same shape.
    """
    errors = torch.zeros_like(reference, dtype=torch.bool)
    for label in labels:
        errors |= (prediction == label) ^ (reference == label)
    return dilated(errors, radius)


def misseg_region_of_regions(prediction: torch.Tensor, reference: torch.Tensor, radius: int) -> torch.Tensor:
    """Union over regions of dilate(prediction_r XOR reference_r): (B, R, *spatial) bool masks in, (B, 1, ...)
    out."""
    return dilated((prediction ^ reference).any(dim=1, keepdim=True), radius)


def dilated(errors: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, 1, *spatial) bool masks dilated by a ball of ``radius`` voxels."""
    if radius <= 0:
        return errors
    ndim = errors.ndim - 2
    kernel = ball(radius, ndim).to(errors.device)
    conv = nn.functional.conv3d if ndim == 3 else nn.functional.conv2d
    return conv(errors.float(), kernel, padding=radius) > 0.5


class MisSegFocusLoss(nn.Module):
    """Global loss, plus λ·(Dice+CE inside the MSF region) while ``active``."""

    def __init__(self, segmentation_loss: nn.Module, region_loss: nn.Module, outside_label: int | None,
                 labels, weight: float, radius: int, regions: bool = False):
        super().__init__()
        self.regions = regions
        self.segmentation_loss = segmentation_loss
        self.region_loss = region_loss
        self.outside_label = outside_label
        self.labels = tuple(labels)
        self.weight = weight
        self.radius = radius
        self.active = False

    def focus_term(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dice+CE of the full-resolution output restricted to the MSF region of its own prediction."""
        if self.regions:
            return self._region_focus_term(output, target)
        prediction = output.detach().argmax(1, keepdim=True)
        region = misseg_region(prediction, target, self.labels, self.radius)
        return self.region_loss(output, torch.where(region, target, self.outside_label))

    def _region_focus_term(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Region models: the region loss (its last target channel marks ignored voxels) inside the MSF region."""
        count = output.shape[1]
        reference = target[:, :count].bool()
        ignored = target[:, count:count + 1].bool() if target.shape[1] > count else torch.zeros_like(reference[:, :1])
        region = misseg_region_of_regions(torch.sigmoid(output.detach()) > 0.5, reference, self.radius)
        return self.region_loss(output, torch.cat([reference, ignored | ~region], dim=1))

    def forward(self, output, target):
        loss = self.segmentation_loss(output, target)
        if not self.active or self.weight == 0:
            return loss
        full_output = output[0] if isinstance(output, (list, tuple)) else output
        full_target = target[0] if isinstance(target, (list, tuple)) else target
        return loss + self.weight * self.focus_term(full_output, full_target)


class nnUNetTrainerMSF(nnUNetTrainer):
    """Stock nnU-Net trained in two stages, the second with the mis-segmentation-focus loss."""

    msf_weight = VARIANT_DEFAULTS["msf"]["msf_weight"]
    msf_dilation_radius = VARIANT_DEFAULTS["msf"]["msf_dilation_radius"]
    msf_stage1_fraction = VARIANT_DEFAULTS["msf"]["msf_stage1_fraction"]

    @property
    def msf_stage2_start_epoch(self) -> int:
        """First epoch (0-based) of stage 2."""
        return math.ceil(self.msf_stage1_fraction * self.num_epochs)

    def _build_loss(self):
        loss = super()._build_loss()
        inner = compound_loss(loss)
        if self.label_manager.has_regions:  # nnU-Net's region loss, with an ignore channel for outside the region
            region_loss = DC_and_BCE_loss({}, {'batch_dice': self.configuration_manager.batch_dice, 'do_bg': True,
                                               'smooth': 1e-5, 'ddp': self.is_ddp},
                                          weight_ce=inner.weight_ce, weight_dice=inner.weight_dice,
                                          use_ignore_label=True, dice_class=MemoryEfficientSoftDiceLoss)
            return MisSegFocusLoss(loss, region_loss, None, self.label_manager.foreground_regions,
                                   self.msf_weight, self.msf_dilation_radius, regions=True)
        ignore = self.label_manager.ignore_label
        outside = ignore if ignore is not None else self.label_manager.num_segmentation_heads
        region_loss = DC_and_CE_loss({'batch_dice': self.configuration_manager.batch_dice, 'smooth': 1e-5,
                                      'do_bg': False, 'ddp': self.is_ddp}, {},
                                     weight_ce=inner.weight_ce, weight_dice=inner.weight_dice,
                                     ignore_label=outside, dice_class=MemoryEfficientSoftDiceLoss)
        return MisSegFocusLoss(loss, region_loss, outside, self.label_manager.foreground_labels,
                               self.msf_weight, self.msf_dilation_radius)

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self.loss.active = self.current_epoch >= self.msf_stage2_start_epoch
