"""`train`: one nnU-Net training run of a variant, with progress events, cancel and resume.

The trainer class comes from the registry and is constructed directly (no nnU-Net name
lookup). The epoch loop is nnU-Net's own hook sequence (``run_training``) with progress
events between iterations and a cancellation point after each one.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.errors import UserError, describe_os_error, full_disk_error

from .cancel import CancelGuard, TrainingCancelled
from .constants import CONFIGURATIONS, DEFAULT_CHECKPOINT_EVERY
from .environment import cores_present, dataset_name, folder_variable, size_worker_pools
from .hyperparameters import with_hyperparameters
from .loop import EpochLoop
from .progress import ProgressReporter, one_line
from .registry import get_variant
from .settings import variant_settings, write_settings


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
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    final_validation: bool = True
    plans: str = "nnUNetPlans"
    hyperparameters: dict = field(default_factory=dict)  # variant class attributes to change (--set)


@dataclass
class RunResult:
    fold_folder: Path
    status: str  # "done" or "cancelled"
    signum: int | None = None


def pick_device(name: str):
    """(torch.device, note) for "auto", "cuda" or "cpu"; UserError when CUDA is asked for but absent."""
    import torch

    if name not in ("auto", "cuda", "cpu"):
        raise UserError(f"unknown device {name!r}; use auto, cuda or cpu")
    has_cuda = torch.cuda.is_available()
    if name == "cuda" and not has_cuda:
        raise UserError("--device cuda: no CUDA GPU is visible to PyTorch; use --device cpu or check the driver")
    if name == "cpu" or not has_cuda:
        note = "no CUDA GPU found: training on CPU, which is slow (use small patches, few iterations)" \
            if name == "auto" else "training on CPU"
        return torch.device("cpu"), note
    return torch.device("cuda", 0), f"training on {torch.cuda.get_device_name(0)}"


def parse_fold(fold: int | str, num_splits: int) -> int | str:
    """A fold index within ``num_splits`` or "all"; UserError otherwise."""
    if str(fold) == "all":
        return "all"
    try:
        index = int(fold)
    except ValueError:
        raise UserError(f"fold {fold!r} is not a number; use 0..{num_splits - 1} or all") from None
    if not 0 <= index < num_splits:
        raise UserError(f"fold {index} is out of range: this dataset has {num_splits} folds (0..{num_splits - 1}) "
                        "or use all")
    return index


def number_of_splits(preprocessed: Path) -> int:
    """Folds in splits_final.json, or nnU-Net's default 5 before the first training creates it."""
    splits = preprocessed / "splits_final.json"
    return len(json.loads(splits.read_text())) if splits.is_file() else 5


def load_plans(preprocessed: Path, options: TrainOptions) -> tuple[dict, dict]:
    """(plans, dataset_json) of a prepared dataset; UserError when it is not prepared."""
    plans_file = preprocessed / f"{options.plans}.json"
    if not plans_file.is_file():
        raise UserError(f"{plans_file} not found; run `improved-nnunet prepare` on the dataset first")
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


def claim_fold_folder(folder: Path, options: TrainOptions) -> None:
    """Refuse to reuse a fold folder with content unless continuing or explicitly overwriting."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if options.overwrite:
        shutil.rmtree(folder)
    elif not options.continue_training:
        raise UserError(f"{folder} already holds a training run; pass --continue to resume it or "
                        "--overwrite to delete it and start again")


def resume_checkpoint(folder: Path) -> Path | None:
    """The checkpoint ``--continue`` resumes from: final, else the newer of latest and best."""
    if (folder / "checkpoint_final.pth").is_file():
        return folder / "checkpoint_final.pth"
    candidates = [folder / n for n in ("checkpoint_latest.pth", "checkpoint_best.pth") if (folder / n).is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def build_trainer(options: TrainOptions, device):
    """The variant's trainer for the options, constructed directly; checks inputs first."""
    trainer_class = with_hyperparameters(get_variant(options.variant), options.hyperparameters)
    if options.configuration not in CONFIGURATIONS:
        raise UserError(f"unknown configuration {options.configuration!r}; use one of {', '.join(CONFIGURATIONS)}")
    for name in ("epochs", "iters_per_epoch", "val_iters_per_epoch", "checkpoint_every"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    name = dataset_name(str(options.dataset))
    preprocessed = folder_variable("nnUNet_preprocessed") / name
    if not preprocessed.is_dir():
        raise UserError(f"{preprocessed} not found; run `improved-nnunet prepare` on the dataset first")
    results = folder_variable("nnUNet_results")
    plans, dataset_json = load_plans(preprocessed, options)
    fold = parse_fold(options.fold, number_of_splits(preprocessed))
    fold_folder = (results / name / f"{trainer_class.__name__}__{options.plans}__{options.configuration}"
                   / f"fold_{fold}")
    claim_fold_folder(fold_folder, options)
    plans["continue_training"] = options.continue_training
    trainer = trainer_class(plans=plans, configuration=options.configuration, fold=fold,
                            dataset_json=dataset_json, device=device)
    if options.epochs is not None:
        trainer.num_epochs = options.epochs
    if options.iters_per_epoch is not None:
        trainer.num_iterations_per_epoch = options.iters_per_epoch
    if options.val_iters_per_epoch is not None:
        trainer.num_val_iterations_per_epoch = options.val_iters_per_epoch
    trainer.save_every = options.checkpoint_every
    write_checkpoints_atomically(trainer)
    return trainer


def write_checkpoints_atomically(trainer) -> None:
    """Make the trainer write each checkpoint to ``<name>.partial`` and rename it when complete, so a
    failed write (full disk, kill) never replaces a good checkpoint with a truncated one."""
    save = trainer.save_checkpoint

    def save_checkpoint(filename: str) -> None:
        partial = f"{filename}.partial"
        try:
            save(partial)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        if os.path.exists(partial):  # nnU-Net skips the write on non-zero ranks or with checkpointing off
            os.replace(partial, filename)

    trainer.save_checkpoint = save_checkpoint


def configure_threads(device) -> None:
    """PyTorch threads as nnU-Net's own entry point sets them: all cores on CPU, one with a GPU."""
    import torch

    if device.type == "cpu":
        torch.set_num_threads(cores_present())
    else:
        torch.set_num_threads(1)


def save_resume_checkpoint(trainer) -> None:
    """Write checkpoint_latest.pth so that a resumed run starts at the current (unfinished) epoch."""
    trainer.current_epoch -= 1  # save_checkpoint stores current_epoch + 1
    try:
        trainer.save_checkpoint(str(Path(trainer.output_folder) / "checkpoint_latest.pth"))
    finally:
        trainer.current_epoch += 1


def stop_data_loaders(trainer) -> None:
    """End the augmentation worker processes of a trainer (safe to call twice)."""
    for augmenter in (trainer.dataloader_train, trainer.dataloader_val):
        if hasattr(augmenter, "_finish"):
            augmenter._finish()


def validation_dice(fold_folder: Path) -> float | None:
    """Mean foreground Dice of nnU-Net's final validation, None without a summary."""
    summary = fold_folder / "validation" / "summary.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text())["foreground_mean"]["Dice"]


def train(options: TrainOptions, reporter: ProgressReporter | None = None) -> RunResult:
    """Train one fold of one variant; returns where and how it ended.

    Events go to ``reporter`` (stdout by default) and to ``progress.jsonl`` in the fold folder.
    SIGTERM/SIGINT end the run after the current iteration with checkpoint_latest.pth written
    and a ``cancelled`` event; other errors report an ``error`` event and propagate.
    """
    size_worker_pools()
    device, note = pick_device(options.device)
    configure_threads(device)
    trainer = build_trainer(options, device)
    folder = Path(trainer.output_folder)
    reporter = reporter or ProgressReporter()
    reporter.log_path = folder / "progress.jsonl"
    started = finished = False
    with CancelGuard() as guard:
        try:
            checkpoint = resume_checkpoint(folder) if options.continue_training else None
            if checkpoint is not None:
                trainer.load_checkpoint(str(checkpoint))
            trainer.on_train_start()
            started = True
            settings = variant_settings(trainer)
            write_settings(settings, folder)
            print("variant settings (variant_settings.json):\n" + json.dumps(settings, indent=2), flush=True)
            resumed = f"resumed from {checkpoint.name} at epoch {trainer.current_epoch}; " if checkpoint else ""
            EpochLoop(trainer, reporter, guard).run(message=resumed + note)
            with guard.protected():
                trainer.on_train_end()  # checkpoint_final.pth, stops the data loaders
            finished = True
            dice = None
            if options.final_validation:
                reporter.emit("validation", epoch=trainer.current_epoch - 1, num_epochs=trainer.num_epochs,
                              message="predicting the validation cases")
                trainer.perform_actual_validation()
                dice = validation_dice(folder)
            reporter.emit("done", epoch=trainer.current_epoch - 1, num_epochs=trainer.num_epochs,
                          message=f"validation mean foreground Dice {dice:.4f}" if dice is not None else "finished")
            return RunResult(folder, "done")
        except TrainingCancelled as exc:
            with guard.protected():
                if started and not finished:
                    save_resume_checkpoint(trainer)
                stop_data_loaders(trainer)
            reporter.emit("cancelled", epoch=trainer.current_epoch, num_epochs=trainer.num_epochs,
                          message=f"{exc}; resume with --continue")
            return RunResult(folder, "cancelled", exc.signum)
        except BaseException as exc:
            stop_data_loaders(trainer)
            full = full_disk_error(folder) if isinstance(exc, (OSError, RuntimeError)) else None
            reporter.emit("error", epoch=trainer.current_epoch, num_epochs=trainer.num_epochs,
                          message=describe_os_error(full) if full else one_line(exc))
            if full is not None:
                raise full from exc  # the command line prints it as one line with the fix
            raise
