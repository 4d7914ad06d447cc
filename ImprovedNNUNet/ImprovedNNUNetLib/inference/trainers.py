"""Finding the trainer class named in a checkpoint: every trainer nnU-Net itself can find.

Order: the project's variants (imported from the modules its torch-free variant table names, as
nnU-Net imports its own trainers by name; stock ``nnUNetTrainer`` among them), then
nnU-Net's own trainers under ``nnunetv2.training.nnUNetTrainer`` (``nnUNetTrainerNoMirroring`` of
TotalSegmentator's models, ``nnUNetTrainer_250epochs``, ``nnUNetTrainerDA5`` ...), then the folders
listed in ``nnUNet_extTrainer`` (third-party trainers), the order of nnU-Net's
``recursive_find_trainer_class_by_name``.

nnU-Net's search imports every module of its trainer tree until one holds the name, so one module
that cannot be imported (a torchvision that does not match torch breaks its Primus trainers) stops
the search for every name. Here the module that defines the class is found by its source text first
and only that module is imported; nnU-Net's search runs only when no source file defines the name.
"""
from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

NNUNET_TRAINER_PACKAGE = "nnunetv2.training.nnUNetTrainer"


def _nnunet_trainer(name: str):
    """nnU-Net's own trainer called ``name``, or None when nnU-Net ships none."""
    package = importlib.import_module(NNUNET_TRAINER_PACKAGE)
    root = Path(package.__path__[0])
    definition = re.compile(rf"^class\s+{re.escape(name)}\s*[(:]", re.MULTILINE)
    for path in sorted(root.rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if not definition.search(text):
            continue
        module_name = ".".join([NNUNET_TRAINER_PACKAGE, *path.relative_to(root).with_suffix("").parts])
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - one line naming the module and the cause
            raise UserError(f"nnU-Net's trainer {name} could not be imported from {module_name} "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                            "repair that package (e.g. a torchvision that matches torch)") from None
        found = getattr(module, name, None)
        if isinstance(found, type):
            return found
    return None


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
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from ImprovedNNUNetLib.core.variants import trainer_class_named

    for finder in (trainer_class_named, _nnunet_trainer, _external_trainer):
        found = finder(name)
        if found is not None:
            if not issubclass(found, nnUNetTrainer):
                raise UserError(f"{name} was found but is not an nnUNetTrainer subclass; the model needs "
                                "the trainer class it was trained with")
            return found
    raise UserError(
        f"the model was trained with trainer {name!r}, which is neither an ImprovedNNUNet variant nor one of "
        f"nnU-Net's trainers; set nnUNet_extTrainer to the folder holding that trainer's Python file "
        f"(now {os.environ.get('nnUNet_extTrainer', 'unset')!s})"
    )
