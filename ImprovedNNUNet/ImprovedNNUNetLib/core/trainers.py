"""Finding a trainer class by name (the one a checkpoint names, or the one ``train --trainer`` and a study arm
ask for): every trainer nnU-Net itself can find.

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
from functools import lru_cache
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

NNUNET_TRAINER_PACKAGE = "nnunetv2.training.nnUNetTrainer"


def _defining_files(root: Path, name: str):
    """The ``.py`` files under ``root`` whose text defines ``class <name>`` (nothing is imported)."""
    definition = re.compile(rf"^class\s+{re.escape(name)}\s*[(:]", re.MULTILINE)
    for path in sorted(root.rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if definition.search(text):
            yield path


def _nnunet_trainer_root() -> Path | None:
    """nnU-Net's trainer package folder, found without importing nnU-Net (or torch)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(NNUNET_TRAINER_PACKAGE)
    except ModuleNotFoundError:
        return None
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def trainer_source(name: str) -> Path | None:
    """The file that defines trainer ``name`` among nnU-Net's trainers and the ``nnUNet_extTrainer`` folders, found
    by its text (no torch, no import: the quick check of ``train --trainer`` and of a study arm); None if none.
    Remembered per name and ``nnUNet_extTrainer`` value: a study read again (the panel's status matrix every few
    seconds) does not scan nnU-Net's trainer tree again."""
    return _trainer_source(name, os.environ.get("nnUNet_extTrainer", ""))


@lru_cache(maxsize=256)
def _trainer_source(name: str, ext_trainer: str) -> Path | None:
    roots = [_nnunet_trainer_root()] + [Path(folder) for folder in ext_trainer.split(os.pathsep)
                                        if folder.strip() and os.path.isdir(folder)]
    return next((path for root in roots if root is not None for path in _defining_files(root, name)), None)


def _nnunet_trainer(name: str):
    """nnU-Net's own trainer called ``name``, or None when nnU-Net ships none."""
    package = importlib.import_module(NNUNET_TRAINER_PACKAGE)
    root = Path(package.__path__[0])
    for path in _defining_files(root, name):
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


def check_trainer(variant: str) -> str:
    """A run's variant checked without importing torch: one of the project's variants, or the class name of a
    trainer nnU-Net can find (its own or one under ``nnUNet_extTrainer``); returns it, UserError otherwise."""
    from ImprovedNNUNetLib.core.variants import TRAINER_NAMES

    if variant in TRAINER_NAMES or trainer_source(variant) is not None:
        return variant
    raise UserError(f"unknown variant or trainer {variant!r}: use one of the variants {', '.join(TRAINER_NAMES)}, "
                    "or the class name of a trainer nnU-Net can find (e.g. nnUNetTrainerNoMirroring, nnUNetTrainerDA5, "
                    "nnUNetTrainer_250epochs) or one in a folder listed in nnUNet_extTrainer (now "
                    f"{os.environ.get('nnUNet_extTrainer', 'unset')!s})")
