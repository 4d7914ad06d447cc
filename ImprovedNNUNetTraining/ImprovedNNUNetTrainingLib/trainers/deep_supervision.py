"""`deepsup` variant: deep-supervision weights that favour the high-resolution outputs (Wu, §3.3)."""
import numpy as np
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS
from ImprovedNNUNetTrainingLib.trainers.network_utils import segmentation_loss


def deep_supervision_weights(num_outputs: int, decay: float, lowest_weight: float = 0.0) -> np.ndarray:
    """Weights ∝ decay^-i for output i (0 = full resolution), the lowest output set to
    ``lowest_weight``, normalised to sum 1."""
    weights = np.array([decay ** -i for i in range(num_outputs)], dtype=float)
    if num_outputs > 1:
        weights[-1] = lowest_weight
    return weights / weights.sum()


class nnUNetTrainerDeepSup(nnUNetTrainer):
    """Stock nnU-Net with deep-supervision weights ∝ 4^-i instead of 2^-i."""

    deep_supervision_decay = VARIANT_DEFAULTS["deepsup"]["deep_supervision_decay"]

    def _build_loss(self):
        loss = super()._build_loss()
        wrapper = segmentation_loss(loss)
        if isinstance(wrapper, DeepSupervisionWrapper):
            # nnU-Net itself uses 1e-6 instead of 0 under DDP without compile (unused-parameter error)
            lowest = 1e-6 if self.is_ddp and not self._do_i_compile() else 0.0
            wrapper.weight_factors = tuple(deep_supervision_weights(
                len(wrapper.weight_factors), self.deep_supervision_decay, lowest))
        return loss
