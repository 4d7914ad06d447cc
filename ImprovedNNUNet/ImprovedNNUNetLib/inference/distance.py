"""Reading the signed-distance maps of SDM models (the `sdm` variant) at inference.

The SDM network carries its distance head as the sub-module ``sdm_head``: with
``sdm_head.always_on`` set, the network's output carries the tanh distance maps (one channel per
foreground label) after the segmentation logits; otherwise the network is an ordinary
segmentation network. ``SegmentationWithDistance`` returns both at once, so one sliding-window pass (with
nnU-Net's Gaussian weighting and mirroring) yields the segmentation logits and the distance maps.
"""
from __future__ import annotations

from torch import nn

DISTANCE_FILL = 1.0  # outside nnU-Net's crop the distance map says "far outside every structure"


def distance_head(network: nn.Module):
    """The network's distance head, or None for networks without one."""
    return getattr(network, "sdm_head", None)


class SegmentationWithDistance(nn.Module):
    """Wraps an SDM network: output = segmentation logits followed by the distance maps, channel-wise."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x):
        head = distance_head(self.network)
        head.always_on = True
        try:
            return self.network(x)
        finally:
            head.always_on = False
