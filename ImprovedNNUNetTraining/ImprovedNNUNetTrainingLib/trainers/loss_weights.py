"""`loss` variant: Dice+CE compound loss with Dice weighted 1.5 and CE 0.5 (Wu, §3.1)."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS
from ImprovedNNUNetTrainingLib.trainers.network_utils import compound_loss


class nnUNetTrainerLoss(nnUNetTrainer):
    """Stock nnU-Net with re-weighted Dice and cross-entropy terms."""

    dice_weight = VARIANT_DEFAULTS["loss"]["dice_weight"]
    ce_weight = VARIANT_DEFAULTS["loss"]["ce_weight"]

    def _build_loss(self):
        loss = super()._build_loss()
        inner = compound_loss(loss)
        inner.weight_dice = self.dice_weight
        inner.weight_ce = self.ce_weight
        return loss
