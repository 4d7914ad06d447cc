"""Checking a training run before any work starts: options, dataset, plans, fold and the fold folder's state.

Nothing here imports torch or nnU-Net, so a wrong argument is reported at once, and every fold of
a multi-fold command is checked before the first one trains.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ImprovedNNUNetLib.core.devices import device_name
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folder_lock import check_free
from ImprovedNNUNetLib.core.folds import as_fold
from ImprovedNNUNetLib.core.trainers import check_trainer
from ImprovedNNUNetLib.core.variants import CONFIGURATIONS, DEFAULT_PLANS, PLANNERS, TRAINER_NAMES, trainer_name
from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable
from ImprovedNNUNetTrainingLib.engine.run_record import resume_options
from ImprovedNNUNetTrainingLib.engine.splits import check_cross_validation, number_of_splits


@dataclass
class TrainOptions:
    """One run. ``None`` epochs/iterations keep nnU-Net's values (1000 epochs, 250 + 50 iterations)."""

    dataset: str
    variant: str = "baseline"
    configuration: str = "3d_fullres"
    fold: int | str = 0
    epochs: int | None = None
    iters_per_epoch: int | None = None
    val_iters_per_epoch: int | None = None
    device: str = "auto"
    continue_training: bool = False
    overwrite: bool = False
    checkpoint_every: int | None = None  # None: DEFAULT_CHECKPOINT_EVERY (or the resumed run's value)
    final_validation: bool = True
    save_probabilities: bool = False  # --npz: validation softmax as nnU-Net's .npz + .pkl (ensembling)
    allow_change: bool = False  # --continue may change stored options (recorded in run_options.json)
    plans: str = DEFAULT_PLANS  # plans identifier, e.g. nnUNetResEncUNetMPlans
    pretrained_weights: str | None = None  # a checkpoint to fine-tune from (nnU-Net's -pretrained_weights)
    disable_checkpointing: bool = False  # nnU-Net's --disable_checkpointing: nothing is saved
    validation_only: bool = False  # nnU-Net's --val: only the final validation of a finished run
    val_best: bool = False  # nnU-Net's --val_best: validate with checkpoint_best.pth
    hyperparameters: dict = field(default_factory=dict)  # variant class attributes to change (--set)
    seed: int | None = None  # --seed: Python, NumPy and PyTorch seeded before the network is built


def check_device_name(name: str) -> None:
    device_name(name)


def check_flag_combinations(options: TrainOptions) -> None:
    """nnU-Net's rules for the flags that exclude each other, as one-line errors."""
    if options.pretrained_weights and options.continue_training:
        raise UserError("--pretrained-weights starts a new run; it cannot be combined with --continue")
    if options.val_best and options.disable_checkpointing:
        raise UserError("--val-best needs checkpoint_best.pth, which --disable-checkpointing never writes")
    if options.validation_only and (options.continue_training or options.overwrite or options.pretrained_weights):
        raise UserError("--val only validates a finished run; leave out --continue, --overwrite and "
                        "--pretrained-weights")
    if options.validation_only and not options.final_validation:
        raise UserError("--val and --no-validation exclude each other")
    if options.pretrained_weights:
        from ImprovedNNUNetTrainingLib.engine.pretrained import check_pretrained_file

        check_pretrained_file(options.pretrained_weights)


def parse_fold(fold: int | str, num_splits: int) -> int | str:
    """A fold index within ``num_splits`` or "all"; UserError otherwise."""
    index = as_fold(fold)
    if index == "all":
        return index
    if not index < num_splits:
        raise UserError(f"fold {index} is out of range: this dataset has {num_splits} folds (0..{num_splits - 1}) "
                        "or use all")
    return index


def available_plans(preprocessed: Path) -> list[str]:
    """Plans identifiers of a prepared dataset (the ``*.json`` files that hold configurations)."""
    names = []
    for path in sorted(preprocessed.glob("*.json")):
        if path.name in ("dataset.json", "dataset_fingerprint.json", "splits_final.json"):
            continue
        try:
            if "configurations" in json.loads(path.read_text()):
                names.append(path.stem)
        except (OSError, ValueError):
            continue
    return names


def missing_plans_message(preprocessed: Path, plans: str) -> str:
    planner = next((name for name, made in PLANNERS.items() if made == plans), None)
    how = f"`improved-nnunet prepare --planner {planner}`" if planner else "`improved-nnunet prepare`"
    found = available_plans(preprocessed)
    has = f" (it has {', '.join(found)})" if found else ""
    return f"{preprocessed / (plans + '.json')} not found{has}; run {how} on the dataset first or choose other plans"


def load_plans(preprocessed: Path, options: TrainOptions) -> tuple[dict, dict]:
    """(plans, dataset_json) of a prepared dataset; UserError when it is not prepared."""
    plans_file = preprocessed / f"{options.plans}.json"
    if not plans_file.is_file():
        raise UserError(missing_plans_message(preprocessed, options.plans))
    plans = json.loads(plans_file.read_text())
    if options.configuration not in plans["configurations"]:
        raise UserError(f"configuration {options.configuration!r} is not in the plans of {preprocessed.name} "
                        f"(it has {', '.join(plans['configurations'])}); pick one of those")
    data_folder = preprocessed / plans["configurations"][options.configuration].get(
        "data_identifier", f"{options.plans}_{options.configuration}")
    if not data_folder.is_dir():
        raise UserError(f"{data_folder} not found; run `improved-nnunet prepare` for configuration "
                        f"{options.configuration}")
    return plans, json.loads((preprocessed / "dataset.json").read_text())


def has_content(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


class FoldStatus(str, Enum):
    """What a fold folder holds, read from its files alone (the Training panel, studies and ``--continue`` all
    decide from this). The values are the strings the panel's messages and job records use."""

    NEW = "new"  # nothing there yet
    STOPPED = "stopped"  # a run that ended before its first checkpoint: nothing to resume, start it again
    RESUMABLE = "partial"  # a checkpoint (latest or best) to resume from
    DONE = "done"  # the final checkpoint is written

    @property
    def resume_mode(self) -> str:
        """How ``train`` takes the fold up again (a ``TrainCommand`` mode): ``--continue`` from a checkpoint
        (a finished run then only validates what is left), ``--overwrite`` of a run with nothing to resume."""
        return {FoldStatus.NEW: "new", FoldStatus.STOPPED: "overwrite"}.get(self, "continue")


def fold_status(folder: Path) -> FoldStatus:
    """The :class:`FoldStatus` of a fold folder."""
    folder = Path(folder)
    checkpoint = resume_checkpoint(folder)
    if checkpoint is not None:
        return FoldStatus.DONE if checkpoint.name == "checkpoint_final.pth" else FoldStatus.RESUMABLE
    return FoldStatus.STOPPED if has_content(folder) else FoldStatus.NEW


def resume_checkpoint(folder: Path) -> Path | None:
    """The checkpoint ``--continue`` resumes from: final, else the newer of latest and best."""
    if (folder / "checkpoint_final.pth").is_file():
        return folder / "checkpoint_final.pth"
    candidates = [folder / n for n in ("checkpoint_latest.pth", "checkpoint_best.pth") if (folder / n).is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


@dataclass
class CheckedRun:
    """A checked run: options with a resumed run's stored values filled in, and where it writes."""

    options: TrainOptions
    dataset: str  # DatasetNNN_Name
    fold: int | str
    folder: Path
    checkpoint: Path | None = None  # what --continue loads
    changes: list = field(default_factory=list)  # (flag, stored, given) allowed with --change


def check_run(options: TrainOptions, check_lock: bool = True) -> CheckedRun:
    """Check a run before any work starts (no torch, no nnU-Net import): variant, configuration,
    numbers, dataset, plans, fold, the fold folder's state, and on ``--continue`` the stored options."""
    check_trainer(options.variant)
    if options.hyperparameters and options.variant not in TRAINER_NAMES:
        raise UserError(f"--set changes a variant's hyper-parameters; trainer {options.variant} has none this project "
                        "knows (a trainer of your own takes its settings from its class)")
    if options.configuration not in CONFIGURATIONS:
        raise UserError(f"unknown configuration {options.configuration!r}; use one of {', '.join(CONFIGURATIONS)}")
    for name in ("epochs", "iters_per_epoch", "val_iters_per_epoch", "checkpoint_every"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if options.continue_training and options.overwrite:
        raise UserError("--continue and --overwrite exclude each other; resume the run or start it again")
    check_device_name(options.device)
    check_flag_combinations(options)
    folder_variable("nnUNet_preprocessed")  # unset: say so, before looking the dataset up in the folders
    folder_variable("nnUNet_results")
    name = dataset_name(str(options.dataset))
    preprocessed = folder_variable("nnUNet_preprocessed") / name
    if not preprocessed.is_dir():
        raise UserError(f"{preprocessed} not found; run `improved-nnunet prepare` on the dataset first")
    results = folder_variable("nnUNet_results")
    load_plans(preprocessed, options)
    check_cross_validation(preprocessed, options.fold)
    fold = parse_fold(options.fold, number_of_splits(preprocessed))
    folder = (results / name / f"{trainer_name(options.variant)}__{options.plans}__{options.configuration}"
              / f"fold_{fold}")
    if check_lock:
        check_free(folder)
    run = CheckedRun(options, name, fold, folder)
    if options.validation_only:
        run.checkpoint = folder / ("checkpoint_best.pth" if options.val_best else "checkpoint_final.pth")
        if not run.checkpoint.is_file():
            raise UserError(f"--val: {run.checkpoint} not found; the run must be finished first (train without --val)")
        return run
    if options.continue_training:
        run.checkpoint = resume_checkpoint(folder)
        if run.checkpoint is None:
            if has_content(folder):
                raise UserError(f"{folder} has no checkpoint to resume: the run stopped before its first checkpoint "
                                "(written every --checkpoint-every epochs); start it again with --overwrite")
            raise UserError(f"--continue: there is no run to resume in {folder}; leave out --continue to start one")
        run.options, run.changes = resume_options(options, folder, options.allow_change)
    elif has_content(folder) and not options.overwrite:
        raise UserError(f"{folder} already holds a training run; pass --continue to resume it or "
                        "--overwrite to delete it and start again")
    return run
