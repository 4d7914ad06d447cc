"""Distance-map output of `sdm` models for an inference engine.

An `sdm` network in evaluation mode returns ordinary segmentation logits. Wrapping it in
``DistanceMapNetwork`` gives a module with the same input and the same number of output
channels whose channel ``c`` (c ≥ 1) is the predicted normalised signed distance map of
foreground label ``c`` (tanh output in [-1, 1], negative inside) and channel 0 is zero. It can
therefore be handed to nnU-Net's ``nnUNetPredictor.manual_initialization`` and
``predict_sliding_window_return_logits`` like the segmentation network (tiles are blended
and mirrored the same way); the result is in the preprocessed (network) grid.
"""
from __future__ import annotations

import torch
from torch import nn

from ImprovedNNUNetLib.errors import UserError

from .trainers.sdm import DistanceHead


class DistanceMapNetwork(nn.Module):
    """Runs an `sdm` network and returns [zeros, distance maps of labels 1..K] instead of its logits."""

    def __init__(self, network: nn.Module):
        super().__init__()
        head = getattr(network, "sdm_head", None)
        if not isinstance(head, DistanceHead):
            raise UserError("this model has no distance-map head; only models of the sdm variant "
                            "(nnUNetTrainerSDM) predict distance maps")
        self.network = network
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.head.always_on = True
        try:
            self.network(x)
            maps = self.head.output
        finally:
            self.head.always_on = False
            self.head.output = None
        return torch.cat([torch.zeros_like(maps[:, :1]), maps], dim=1)


def distance_map_network(model_folder, fold=0, checkpoint_name: str = "checkpoint_final.pth",
                         device: str = "cpu") -> DistanceMapNetwork:
    """The ``DistanceMapNetwork`` of a trained `sdm` model fold (eval mode)."""
    from .checkpoints import load_trained_network

    trained = load_trained_network(model_folder, fold, checkpoint_name, device)
    return DistanceMapNetwork(trained.network).eval()
