"""Short variant names -> nnU-Net v2 trainer classes, and lookup by the class name nnU-Net stores.

Trainer classes are imported directly, never through nnU-Net's name lookup (which imports
every trainer module nnU-Net ships and can fail on a broken torchvision).
"""
from __future__ import annotations

from ImprovedNNUNetLib.core.variants import TRAINER_NAMES, VARIANT_NAMES, trainer_class_named

# Short name -> class, in the table's order; each class imported from the module the table names.
VARIANTS: dict[str, type] = {name: trainer_class_named(TRAINER_NAMES[name]) for name in VARIANT_NAMES}


def get_variant(name: str) -> type:
    """The trainer class of a short variant name, or of any trainer class name nnU-Net can find (``train
    --trainer``: its own trainers and those under ``nnUNet_extTrainer``); UserError naming the choices otherwise."""
    if name in VARIANTS:
        return VARIANTS[name]
    from ImprovedNNUNetLib.core.trainers import check_trainer, resolve_trainer_class

    check_trainer(name)
    return resolve_trainer_class(name)


def variant_name(trainer_class: type) -> str | None:
    """The short name of a trainer class of the registry (or of a same-named subclass that only
    changes its hyper-parameters, see ``hyperparameters.py``), None for any other class."""
    return next((name for name, cls in VARIANTS.items() if cls is trainer_class
                 or (cls.__name__ == trainer_class.__name__ and issubclass(trainer_class, cls))), None)


def trainer_class_by_name(class_name: str) -> type | None:
    """The registry's trainer class whose ``__name__`` is ``class_name`` (the name nnU-Net writes
    into checkpoints as ``trainer_name`` and into model folder names), None if it is not ours.

    ``"nnUNetTrainer"`` (the `baseline` variant) resolves to nnU-Net's stock trainer.
    """
    return next((cls for cls in VARIANTS.values() if cls.__name__ == class_name), None)
