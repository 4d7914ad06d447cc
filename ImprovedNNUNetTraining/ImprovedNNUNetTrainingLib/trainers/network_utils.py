"""Helpers shared by the trainer variants."""
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from torch import nn


def bare_network(network: nn.Module) -> nn.Module:
    """The module itself, without a DistributedDataParallel or torch.compile wrapper."""
    if hasattr(network, "module"):
        network = network.module
    return getattr(network, "_orig_mod", network)


def segmentation_loss(loss: nn.Module) -> nn.Module:
    """The segmentation loss inside the variants' extra-term wrappers (which keep it as
    ``segmentation_loss``): a deep-supervision wrapper or the compound loss itself."""
    while hasattr(loss, "segmentation_loss"):
        loss = loss.segmentation_loss
    return loss


def compound_loss(loss: nn.Module) -> nn.Module:
    """The Dice+CE (or Dice+BCE) loss inside all wrappers."""
    loss = segmentation_loss(loss)
    return loss.loss if isinstance(loss, DeepSupervisionWrapper) else loss
