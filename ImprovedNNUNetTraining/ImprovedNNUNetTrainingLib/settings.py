"""The effective settings of a training run, read from the built trainer (variant_settings.json)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.safe_write import write_text_verified

from .registry import variant_name
from .trainers.augmentation import iter_transforms
from .trainers.network_utils import compound_loss, segmentation_loss

PACKAGE = __name__.split(".")[0]


def json_safe(value):
    """A JSON-serialisable copy: numbers, strings, lists and dicts kept, anything else as its repr."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return repr(value)


def training_transforms(trainer):
    """The composed training augmentation of a started trainer (after ``on_train_start``)."""
    augmenter = trainer.dataloader_train
    loader = getattr(augmenter, "generator", None) or getattr(augmenter, "data_loader", None)
    return loader.transforms


def describe_transforms(compose) -> list[dict]:
    """Each transform of the pipeline with its apply probability and public parameters."""
    described = []
    for wrapper, transform in iter_transforms(compose):
        described.append({
            "transform": type(transform).__name__,
            "apply_probability": wrapper.apply_probability if wrapper is not None else 1.0,
            "parameters": {k: json_safe(v) for k, v in vars(transform).items()
                           if not k.startswith("_") and k != "training"},
        })
    return described


def variant_hyperparameters(trainer_class: type) -> dict:
    """Numbers the project's trainer classes define as class attributes (subclass values win)."""
    values = {}
    for cls in reversed(trainer_class.__mro__):
        if cls.__module__.startswith(PACKAGE):
            values.update({k: json_safe(v) for k, v in vars(cls).items()
                           if not k.startswith("_") and isinstance(v, (int, float, tuple, list))})
    return values


def variant_settings(trainer) -> dict:
    """Everything a run uses that a variant can change, read from the initialised, started trainer."""
    loss = trainer.loss
    inner = compound_loss(loss)
    weights = getattr(segmentation_loss(loss), "weight_factors", None)
    settings = {
        "variant": variant_name(type(trainer)),
        "trainer": type(trainer).__name__,
        "configuration": trainer.configuration_name,
        "fold": trainer.fold,
        "device": str(trainer.device),
        "num_epochs": trainer.num_epochs,
        "num_iterations_per_epoch": trainer.num_iterations_per_epoch,
        "num_val_iterations_per_epoch": trainer.num_val_iterations_per_epoch,
        "checkpoint_every": trainer.save_every,
        "batch_size": trainer.batch_size,
        "patch_size": json_safe(trainer.configuration_manager.patch_size),
        "initial_lr": trainer.initial_lr,
        "weight_decay": trainer.weight_decay,
        "loss": {"dice_weight": inner.weight_dice, "ce_weight": inner.weight_ce,
                 "deep_supervision_weights": json_safe(weights)},
        "augmentation": describe_transforms(training_transforms(trainer)),
        "variant_hyperparameters": variant_hyperparameters(type(trainer)),
    }
    if hasattr(trainer, "msf_stage2_start_epoch"):
        settings["msf_stage2_start_epoch"] = trainer.msf_stage2_start_epoch
    return settings


def write_settings(settings: dict, folder: Path) -> Path:
    """Write variant_settings.json into the fold folder."""
    path = Path(folder) / "variant_settings.json"
    write_text_verified(path, json.dumps(settings, indent=2))
    return path
