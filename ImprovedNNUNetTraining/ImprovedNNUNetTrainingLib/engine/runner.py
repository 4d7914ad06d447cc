"""`train`: one nnU-Net training run of a variant, with progress events, cancel and resume.

The trainer class comes from the registry and is constructed directly (no nnU-Net name
lookup). The epoch loop is nnU-Net's own hook sequence (``run_training``) with progress
events between iterations and a cancellation point after each one.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.devices import device_name, gpu_index
from ImprovedNNUNetLib.core.errors import UserError, describe_os_error, full_disk_error
from ImprovedNNUNetLib.core.folder_lock import FoldLock
from ImprovedNNUNetLib.core.variants import DEFAULT_CHECKPOINT_EVERY
from ImprovedNNUNetLib.core.workers import bind_workers_to_this_process
from ImprovedNNUNetTrainingLib.engine.cancel import CancelGuard, TrainingCancelled, TrainingStopped
from ImprovedNNUNetTrainingLib.engine.compute import record_compute
from ImprovedNNUNetTrainingLib.engine.environment import folder_variable, size_worker_pools
from ImprovedNNUNetTrainingLib.engine.hyperparameters import with_hyperparameters
from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter, nnunet_prints_to, one_line, read_events
from ImprovedNNUNetTrainingLib.engine.registry import get_variant
from ImprovedNNUNetTrainingLib.engine.run_checks import CheckedRun, TrainOptions, check_run, has_content, load_plans
from ImprovedNNUNetTrainingLib.engine.run_record import variant_settings, write_run_options, write_settings
from ImprovedNNUNetTrainingLib.engine.splits import write_small_dataset_splits
from ImprovedNNUNetTrainingLib.engine.startup import configure_threads, seed_everything
from ImprovedNNUNetTrainingLib.engine.tracking import follow_in_mlflow


@dataclass
class RunResult:
    fold_folder: Path
    status: str  # "done", "cancelled" (SIGTERM/SIGINT) or "stopped" (SIGUSR1 at an epoch boundary)
    signum: int | None = None
    epoch: int | None = None  # the epoch that was running when a cancelled run stopped
    num_epochs: int | None = None


def pick_device(name: str):
    """(torch.device, note) for "auto", "cuda", "cuda:N", "mps" or "cpu"; UserError when the device asked for is
    absent."""
    import torch

    name = device_name(name)
    has_cuda = torch.cuda.is_available()
    if name.startswith("cuda") and not has_cuda:
        raise UserError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu or check the driver")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("--device mps: Apple MPS is not available; use --device cpu or auto")
        return torch.device("mps"), "training on Apple MPS"
    if name == "cpu" or not has_cuda:
        note = "no CUDA GPU found: training on CPU, which is slow (use small patches, few iterations)" \
            if name == "auto" else "training on CPU"
        return torch.device("cpu"), note
    if (gpu_index(name) or 0) != 0:
        raise UserError(f"--device {name}: nnU-Net's trainer uses the first visible GPU; choose the GPU with "
                        f"CUDA_VISIBLE_DEVICES (the command line's --device cuda:N does this for you)")
    return torch.device("cuda", 0), f"training on {torch.cuda.get_device_name(0)}"


def empty_fold_folder(folder: Path) -> None:
    """--overwrite: remove the earlier run's files (the fold folder is nnU-Net's and this command's own)."""
    for entry in folder.iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def build_trainer(run: CheckedRun, device):
    """The variant's trainer for a checked run, constructed directly from the registry."""
    options = run.options
    trainer_class = with_hyperparameters(get_variant(options.variant), options.hyperparameters)
    preprocessed = folder_variable("nnUNet_preprocessed") / run.dataset
    plans, dataset_json = load_plans(preprocessed, options)
    plans["continue_training"] = options.continue_training
    trainer = trainer_class(plans=plans, configuration=options.configuration, fold=run.fold,
                            dataset_json=dataset_json, device=device)
    if options.epochs is not None:
        trainer.num_epochs = options.epochs
    if options.iters_per_epoch is not None:
        trainer.num_iterations_per_epoch = options.iters_per_epoch
    if options.val_iters_per_epoch is not None:
        trainer.num_val_iterations_per_epoch = options.val_iters_per_epoch
    trainer.save_every = options.checkpoint_every or DEFAULT_CHECKPOINT_EVERY
    if options.disable_checkpointing:
        trainer.disable_checkpointing = True
    if Path(trainer.output_folder).resolve() != run.folder.resolve():
        raise RuntimeError(f"nnU-Net's fold folder {trainer.output_folder} is not the expected {run.folder}")
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


def keep_log_off_console(trainer) -> None:
    """nnU-Net's own log lines go only to its training_log file (the person's console shows the progress
    bar and epoch summaries instead)."""
    write = trainer.print_to_log_file

    def print_to_log_file(*args, also_print_to_console=True, add_timestamp=True):
        write(*args, also_print_to_console=False, add_timestamp=add_timestamp)

    trainer.print_to_log_file = print_to_log_file


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


def validation_summary(fold_folder: Path) -> dict | None:
    """nnU-Net's final validation summary (``foreground_mean`` and per-label ``mean``), None without one."""
    summary = fold_folder / "validation" / "summary.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text())


def epochs_lost(folder: Path, resumed_epoch: int) -> int:
    """Epochs the interrupted run had finished after the checkpoint now resumed (they are trained again)."""
    progress = folder / "progress.jsonl"
    if not progress.is_file():
        return 0
    finished = [e["epoch"] for e in read_events(progress)
                if e["stage"] == "training" and e.get("epoch_time_s") is not None and e.get("epoch") is not None]
    return max(0, max(finished, default=-1) + 1 - resumed_epoch)


def load_resume_checkpoint(trainer, run: CheckedRun, reporter, folder: Path) -> str:
    """Load the checkpoint --continue resumes from. A damaged one (empty, cut short, not a checkpoint) is not the
    end of the run when another is beside it: the next of checkpoint_latest/checkpoint_best that loads is used and
    the returned note says so; with none left, a UserError names the file and the way out."""
    candidates = [run.checkpoint] + [folder / name for name in ("checkpoint_latest.pth", "checkpoint_best.pth")
                                      if (folder / name) != run.checkpoint and (folder / name).is_file()]
    problems = []
    for candidate in candidates:
        try:
            with nnunet_prints_to(reporter, folder):
                trainer.load_checkpoint(str(candidate))
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged file
            problems.append(f"{candidate.name} is damaged ({type(exc).__name__})")
            continue
        run.checkpoint = candidate
        return f"{'; '.join(problems)}: " if problems else ""
    raise UserError(f"{'; '.join(problems)} in {folder}; no checkpoint to resume from is left: start the fold "
                    "again with --overwrite")


def resume_note(run: CheckedRun, trainer) -> str:
    """The first event's message: where the run starts, in the 1-based epoch numbers of the epoch lines
    (``epoch 3/14: …``), for a fresh and a resumed run alike."""
    where = f"epoch {trainer.current_epoch + 1} of {trainer.num_epochs}"
    if run.checkpoint is None:
        return f"starting at {where}"
    lost = epochs_lost(run.folder, trainer.current_epoch)
    lost_text = (f" ({lost} epoch(s) the interrupted run finished after that checkpoint are trained again)"
                 if lost else "")
    changed = "".join(f"; {flag} changed from {before} to {given}" for flag, before, given in run.changes)
    return f"resumed from {run.checkpoint.name} at {where}{lost_text}{changed}"


def remove_partial_checkpoints(folder: Path) -> None:
    """Checkpoint writes a kill interrupted (``*.pth.partial``): never complete, never loaded."""
    for partial in folder.glob("*.pth.partial"):
        partial.unlink(missing_ok=True)


def train(options: TrainOptions, reporter: ProgressReporter | None = None) -> RunResult:
    """Train one fold of one variant; returns where and how it ended.

    The run is checked first (:func:`check_run`), then the fold folder is locked for this process
    (:class:`FoldLock`). Events go to ``reporter`` (stdout by default) and to ``progress.jsonl``
    in the fold folder. SIGTERM/SIGINT end the run after the current iteration with
    checkpoint_latest.pth written and a ``cancelled`` event; other errors report an ``error``
    event and propagate.
    """
    folder = check_run(options).folder  # quick errors before anything is imported or locked
    reporter = reporter or ProgressReporter()
    size_worker_pools()
    with FoldLock(folder, command=f"train {options.variant}") as lock:
        run = check_run(options, check_lock=False)  # again under the lock: the folder may have changed
        for note in lock.notes:
            print(f"note: {note}", file=sys.stderr, flush=True)
        if options.overwrite and has_content(run.folder):
            empty_fold_folder(run.folder)
        fresh = not has_content(run.folder)
        run.folder.mkdir(parents=True, exist_ok=True)
        remove_partial_checkpoints(run.folder)
        device, note = pick_device(options.device)
        configure_threads(device)
        if run.options.seed is not None:
            seed_everything(run.options.seed)
        with nnunet_prints_to(reporter, run.folder):
            trainer = build_trainer(run, device)
        if not reporter.machine_readable:
            keep_log_off_console(trainer)
        if options.pretrained_weights and not options.validation_only:
            note = f"{start_from_pretrained(trainer, run, reporter, fresh)}; {note}"
        split_note = write_small_dataset_splits(Path(trainer.preprocessed_dataset_folder_base),
                                                Path(trainer.preprocessed_dataset_folder))
        if split_note:
            note = f"{split_note}; {note}"
        bind_workers_to_this_process()
        if options.validation_only:
            return validate_only(trainer, run, reporter)
        return run_trainer(trainer, run, note, reporter)


def start_from_pretrained(trainer, run: CheckedRun, reporter: ProgressReporter, fresh: bool) -> str:
    """Initialise the network and copy the pretrained weights into it, before the run writes anything; a
    checkpoint that does not fit leaves a new fold folder as empty as it was. Returns the note."""
    from ImprovedNNUNetTrainingLib.engine.pretrained import load_pretrained_weights

    try:
        with nnunet_prints_to(reporter, run.folder):
            trainer.initialize()
        copied = load_pretrained_weights(trainer.network, run.options.pretrained_weights)
    except UserError:
        if fresh:
            empty_fold_folder(run.folder)
        raise
    return f"fine-tuning from {run.options.pretrained_weights} ({copied} tensors)"


def final_validation(trainer, run: CheckedRun, reporter: ProgressReporter, folder: Path) -> dict | None:
    """nnU-Net's validation of the fold's validation cases (with checkpoint_best.pth for --val-best)."""
    if run.options.val_best:
        best = folder / "checkpoint_best.pth"
        if not best.is_file():
            raise UserError(f"--val-best: {best} was never written (the run is shorter than nnU-Net's first "
                            "best-checkpoint epoch); validate with the final checkpoint instead")
        with nnunet_prints_to(reporter, folder):
            trainer.load_checkpoint(str(best))
    reporter.emit("validation", epoch=trainer.current_epoch - 1, num_epochs=trainer.num_epochs,
                  message="predicting the validation cases" + (" with checkpoint_best.pth" if run.options.val_best
                                                                  else ""))
    import warnings

    with nnunet_prints_to(reporter, folder), warnings.catch_warnings():
        # nnU-Net's np.nanmean over a label empty in every case warns "Mean of empty slice"; done_message says it
        warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
        trainer.perform_actual_validation(save_probabilities=run.options.save_probabilities)
    return validation_summary(folder)


def validate_only(trainer, run: CheckedRun, reporter: ProgressReporter) -> RunResult:
    """--val: load the finished run's checkpoint and run only nnU-Net's final validation."""
    folder = Path(trainer.output_folder)
    reporter.log_path = folder / "progress.jsonl"
    if not run.options.val_best:  # --val-best loads checkpoint_best.pth in final_validation
        with nnunet_prints_to(reporter, folder):
            trainer.load_checkpoint(str(run.checkpoint))
    summary = final_validation(trainer, run, reporter, folder)
    reporter.emit("done", epoch=trainer.current_epoch - 1, num_epochs=trainer.num_epochs, message=done_message(summary))
    return RunResult(folder, "done")


def done_message(summary: dict | None) -> str:
    """The last line of a run: nnU-Net's validation mean foreground Dice, or why it is undefined. nnU-Net
    averages the labels' means with np.mean, so one label empty in the prediction and the reference of every
    validation case (Dice 0/0, left out per case) makes the whole mean NaN."""
    if summary is None:
        return "finished"
    dice = summary["foreground_mean"]["Dice"]
    if dice is not None and math.isfinite(dice):
        return f"validation mean foreground Dice {dice:.4f}"
    per_label = {label: values.get("Dice") for label, values in summary.get("mean", {}).items()}
    empty = [label for label, value in per_label.items() if value is None or not math.isfinite(value)]
    defined = [value for value in per_label.values() if value is not None and math.isfinite(value)]
    rest = f"; mean over the other labels {sum(defined) / len(defined):.4f}" if defined else ""
    return (f"validation mean foreground Dice undefined: label(s) {', '.join(empty)} are empty in both the "
            f"prediction and the reference of every validation case (Dice 0/0, as nnU-Net leaves it){rest}")


def run_trainer(trainer, run: CheckedRun, note: str, reporter: ProgressReporter) -> RunResult:
    folder = Path(trainer.output_folder)
    reporter.log_path = folder / "progress.jsonl"
    started = finished = False
    with CancelGuard() as guard:
        try:
            damaged = load_resume_checkpoint(trainer, run, reporter, folder) if run.checkpoint is not None else ""
            resumed = damaged + resume_note(run, trainer)
            with nnunet_prints_to(reporter, folder):
                trainer.on_train_start()
            started = True
            follow_in_mlflow(reporter, folder, run.options, trainer)  # when MLFLOW_TRACKING_URI is set
            settings = variant_settings(trainer)
            write_settings(settings, folder)
            write_run_options(folder, trainer, run.options.hyperparameters, run.changes, run.options.seed,
                              run.options.pretrained_weights)
            if reporter.machine_readable:
                print("variant settings (variant_settings.json):\n" + json.dumps(settings, indent=2), flush=True)
            else:
                print(f"{run.options.variant} on {run.dataset} {run.options.configuration} ({run.options.plans}), "
                      f"fold {run.fold}: settings in {folder / 'variant_settings.json'}, log in {folder}",
                      flush=True)
            from ImprovedNNUNetTrainingLib.engine.loop import EpochLoop

            # nnU-Net's own prints during the epochs ("maybe some logging issue!? ...") go to its output file
            loop, clock = EpochLoop(trainer, reporter, guard), time.monotonic()
            with nnunet_prints_to(reporter, folder):
                loop.run(message="; ".join(part for part in (resumed, note) if part))
            with guard.protected(), nnunet_prints_to(reporter, folder):
                trainer.on_train_end()  # checkpoint_final.pth, stops the data loaders
            finished = True
            record_compute(trainer, folder, clock, loop.epoch_times, run.options.plans)  # compute.json
            summary = final_validation(trainer, run, reporter, folder) if run.options.final_validation else None
            reporter.emit("done", epoch=trainer.current_epoch - 1, num_epochs=trainer.num_epochs,
                          message=done_message(summary))
            return RunResult(folder, "done")
        except TrainingStopped as stop:
            # SIGUSR1 at an epoch boundary: every finished epoch is in checkpoint_latest, exit status 0
            with guard.protected():
                save_resume_checkpoint(trainer)
                stop_data_loaders(trainer)
            name = signal.Signals(stop.signum).name
            reporter.emit("cancelled", epoch=trainer.current_epoch, num_epochs=trainer.num_epochs,
                          message=f"stopped by {name} after epoch {trainer.current_epoch} of {trainer.num_epochs} "
                                  "(checkpoint saved); resume with --continue")
            return RunResult(folder, "stopped", stop.signum, trainer.current_epoch, trainer.num_epochs)
        except BaseException as exc:
            if isinstance(exc, TrainingCancelled) or guard.signum is not None:
                # A stop signal also ends the augmentation workers of its process group: whatever error
                # their end caused in this process is part of the stop, not a failure of the run.
                signum = guard.signum
                with guard.protected():
                    if started and not finished:
                        save_resume_checkpoint(trainer)
                    stop_data_loaders(trainer)
                name = signal.Signals(signum).name
                reporter.emit("cancelled", epoch=trainer.current_epoch, num_epochs=trainer.num_epochs,
                              message=f"cancelled by {name} during epoch {trainer.current_epoch + 1} of "
                                      f"{trainer.num_epochs}; resume with --continue")
                return RunResult(folder, "cancelled", signum, trainer.current_epoch, trainer.num_epochs)
            stop_data_loaders(trainer)
            full = full_disk_error(folder) if isinstance(exc, (OSError, RuntimeError)) else None
            reporter.emit("error", epoch=trainer.current_epoch, num_epochs=trainer.num_epochs,
                          message=describe_os_error(full) if full else one_line(exc))
            if full is not None:
                raise full from exc  # the command line prints it as one line with the fix
            raise
