"""`improved` variant: Wu's improved nnU-Net = `loss` + `deepsup` + `augment`."""
from ImprovedNNUNetTrainingLib.trainers.augmentation import nnUNetTrainerAugment
from ImprovedNNUNetTrainingLib.trainers.deep_supervision import nnUNetTrainerDeepSup
from ImprovedNNUNetTrainingLib.trainers.loss_weights import nnUNetTrainerLoss


class nnUNetTrainerImproved(nnUNetTrainerLoss, nnUNetTrainerDeepSup, nnUNetTrainerAugment):
    """Re-weighted loss, high-resolution deep supervision and stronger augmentation together.

    Each parent overrides a different hook (or chains ``_build_loss`` through ``super``),
    so their class attributes apply unchanged.
    """
