"""`improved` variant: Wu's improved nnU-Net = `loss` + `deepsup` + `augment`."""
from .augmentation import nnUNetTrainerAugment
from .deep_supervision import nnUNetTrainerDeepSup
from .loss_weights import nnUNetTrainerLoss


class nnUNetTrainerImproved(nnUNetTrainerLoss, nnUNetTrainerDeepSup, nnUNetTrainerAugment):
    """Re-weighted loss, high-resolution deep supervision and stronger augmentation together.

    Each parent overrides a different hook (or chains ``_build_loss`` through ``super``),
    so their class attributes apply unchanged.
    """
