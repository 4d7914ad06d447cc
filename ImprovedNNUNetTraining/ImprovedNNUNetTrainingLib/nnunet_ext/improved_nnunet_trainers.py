"""This project's trainer classes, re-exported for nnU-Net's ``nnUNet_extTrainer`` search."""
from ImprovedNNUNetTrainingLib.trainers.augmentation import nnUNetTrainerAugment
from ImprovedNNUNetTrainingLib.trainers.deep_supervision import nnUNetTrainerDeepSup
from ImprovedNNUNetTrainingLib.trainers.improved import nnUNetTrainerImproved
from ImprovedNNUNetTrainingLib.trainers.loss_weights import nnUNetTrainerLoss
from ImprovedNNUNetTrainingLib.trainers.msf import nnUNetTrainerMSF
from ImprovedNNUNetTrainingLib.trainers.msf_deep import nnUNetTrainerMSFDeep
from ImprovedNNUNetTrainingLib.trainers.sdm import nnUNetTrainerSDM

__all__ = ["nnUNetTrainerAugment", "nnUNetTrainerDeepSup", "nnUNetTrainerImproved", "nnUNetTrainerLoss",
           "nnUNetTrainerMSF", "nnUNetTrainerMSFDeep", "nnUNetTrainerSDM"]
