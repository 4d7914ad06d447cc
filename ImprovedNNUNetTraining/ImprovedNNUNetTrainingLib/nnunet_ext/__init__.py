"""Folder for nnU-Net's ``nnUNet_extTrainer`` variable, so that the stock ``nnUNetv2_train -tr <Name>``
and ``nnUNetv2_predict`` find this project's trainers.

nnU-Net imports the modules of this folder as top-level modules; ``improved_nnunet_trainers``
re-exports the trainer classes from the package, so they are the same class objects.
"""
from pathlib import Path

EXT_TRAINER_FOLDER = Path(__file__).resolve().parent
