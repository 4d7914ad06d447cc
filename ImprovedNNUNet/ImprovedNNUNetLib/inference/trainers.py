"""Finding the trainer class named in a checkpoint without nnU-Net's name search.

Order: the project's registry (every ImprovedNNUNet variant and stock ``nnUNetTrainer``),
then the folders listed in ``nnUNet_extTrainer`` (third-party trainers). nnU-Net's own
search, which imports every module under ``nnunetv2.training``, is never used.
"""
from __future__ import annotations

import os

from ..errors import UserError


def _stock_trainer(name: str):
    if name != "nnUNetTrainer":
        return None
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return nnUNetTrainer


def _external_trainer(name: str):
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    for folder in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep):
        if folder.strip() and os.path.isdir(folder):
            found = recursive_find_python_class(folder, name, None, base_folder=folder,
                                                cleanup_imports_from_base_folder=True)
            if found is not None:
                return found
    return None


def resolve_trainer_class(name: str) -> type:
    """The trainer class called ``name``; a ``UserError`` saying how to provide it when unknown."""
    from ImprovedNNUNetTrainingLib.registry import trainer_class_by_name

    for finder in (trainer_class_by_name, _stock_trainer, _external_trainer):
        found = finder(name)
        if found is not None:
            return found
    raise UserError(
        f"the model was trained with trainer {name!r}, which is neither an ImprovedNNUNet variant nor "
        f"nnUNetTrainer; set nnUNet_extTrainer to the folder holding that trainer's Python file "
        f"(now {os.environ.get('nnUNet_extTrainer', 'unset')!s})"
    )
