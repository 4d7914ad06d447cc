"""The record a training run keeps in its fold folder: what it was started with and what it used.

- ``run_options.json``: the options the run was started with (schedule and ``--set`` hyper-parameters) and
  the history of allowed changes, so that ``--continue`` resumes the same run. A resume takes every option
  it is not given from there; an option given with another value is an error naming both values, unless the
  user allows the change (``--change``), which is then recorded in the file's history. Fold folders written
  before this file existed are read from ``variant_settings.json``.
- ``variant_settings.json``: the effective settings read from the built trainer (loss weights, deep
  supervision weights, the augmentation pipeline, the variant's hyper-parameters).

Reading the options needs neither torch nor nnU-Net (the run's checks use it before anything loads); the
settings are read from a started trainer.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified

FILE_NAME = "run_options.json"
# option attribute -> (command-line flag, variant_settings.json key)
SCHEDULE = {
    "epochs": ("--epochs", "num_epochs"),
    "iters_per_epoch": ("--iters-per-epoch", "num_iterations_per_epoch"),
    "val_iters_per_epoch": ("--val-iters-per-epoch", "num_val_iterations_per_epoch"),
    "checkpoint_every": ("--checkpoint-every", "checkpoint_every"),
}


def stored_options(fold_folder: Path) -> dict | None:
    """``{"epochs": .., ..., "hyperparameters": {..}}`` of the run in ``fold_folder``, None if unknown."""
    path = Path(fold_folder) / FILE_NAME
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            raise UserError(f"{path} is damaged; restore it, or start the fold again with --overwrite") from None
    settings = Path(fold_folder) / "variant_settings.json"
    if settings.is_file():
        try:
            values = json.loads(settings.read_text())
        except ValueError:
            return None
        return {name: values.get(key) for name, (_, key) in SCHEDULE.items()}
    return None


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def resume_options(options, fold_folder: Path, allow_change: bool = False):
    """``options`` with every value it leaves unset taken from the stored run, and the list of
    ``(option, stored, given)`` changes. UserError on a conflicting value unless ``allow_change``."""
    stored = stored_options(fold_folder)
    if stored is None:
        return options, []
    updates, changes = {}, []
    for name, (flag, _) in SCHEDULE.items():
        given, before = getattr(options, name), stored.get(name)
        if before is None:
            continue
        if given is None:
            updates[name] = before
        elif given != before:
            changes.append((flag, before, given))
    if "hyperparameters" in stored:
        given, before = options.hyperparameters, stored["hyperparameters"] or {}
        if not given:
            updates["hyperparameters"] = dict(before)
        else:
            for key in sorted(set(given) | set(before)):
                if not _same(given.get(key), before.get(key)):
                    changes.append((f"--set {key}", before.get(key, "(variant default)"),
                                    given.get(key, "(variant default)")))
    if options.seed is None and stored.get("seed") is not None:  # a resumed run keeps its seed
        updates["seed"] = stored["seed"]
    elif options.seed is not None and stored.get("seed") is not None and options.seed != stored["seed"]:
        changes.append(("--seed", stored["seed"], options.seed))
    if changes and not allow_change:
        flag, before, given = changes[0]
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise UserError(f"{flag} {given} differs from the run being resumed ({flag} {before}, recorded in "
                        f"{Path(fold_folder) / FILE_NAME}){more}; leave it out to continue the same run, or add "
                        "--change to change it (the change is recorded)")
    return replace(options, **updates), changes


def write_run_options(fold_folder: Path, trainer, hyperparameters: dict, changes=(), seed: int | None = None,
                      pretrained: str | None = None) -> Path:
    """Record the run's effective schedule, ``--set`` values, seed and the checkpoint it was fine-tuned from (kept
    from the first start when a resume does not give it); append ``changes`` to the history."""
    path = Path(fold_folder) / FILE_NAME
    earlier = {}
    if path.is_file():
        try:
            earlier = json.loads(path.read_text())
        except ValueError:
            earlier = {}
    history = earlier.get("history", [])
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    if not history:
        history.append({"time": now, "event": "started"})
    if changes:
        history.append({"time": now, "event": "changed on resume",
                        "changes": [{"option": flag, "from": before, "to": given} for flag, before, given in changes]})
    record = {
        "epochs": trainer.num_epochs,
        "iters_per_epoch": trainer.num_iterations_per_epoch,
        "val_iters_per_epoch": trainer.num_val_iterations_per_epoch,
        "checkpoint_every": trainer.save_every,
        "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in hyperparameters.items()},
        "seed": seed,
        "pretrained_weights": str(pretrained) if pretrained else earlier.get("pretrained_weights"),
        "history": history,
    }
    write_text_verified(path, json.dumps(record, indent=2))
    return path


# -- the effective settings (variant_settings.json) ----------------------------------------------------
PACKAGE = __name__.split(".")[0]


def json_safe(value):
    """A JSON-serialisable copy: numbers, strings, lists and dicts kept, anything else as its repr."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    import numpy as np

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
    from ImprovedNNUNetTrainingLib.trainers.augmentation import iter_transforms

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
    from ImprovedNNUNetTrainingLib.engine.registry import variant_name
    from ImprovedNNUNetTrainingLib.trainers.network_utils import compound_loss, segmentation_loss

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
