"""One training of a study (an arm, a fold and a repeat): its state on disk and the command that (re)starts it.

The state comes from files only, so it is the same whoever asks (the local executor, a SLURM job,
``study status``): ``done`` once ``study_done.json`` is written (after the training and its final
validation ended with status 0), ``running`` while a process holds the fold's lock, ``failed`` when its
last event is an error; otherwise from the fold folder's :class:`~..run_checks.FoldStatus` (the one the
Training panel and ``--continue`` use): ``stopped`` for a run that can be resumed from a checkpoint,
``failed`` for one that ended before its first checkpoint, ``new`` for an empty folder.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.folder_lock import holder_if_locked
from ImprovedNNUNetLib.core.safe_write import write_text_verified
from ImprovedNNUNetTrainingLib.analysis.study.spec import Arm, Study
from ImprovedNNUNetTrainingLib.engine.progress import read_events, read_last_events
from ImprovedNNUNetTrainingLib.engine.run_checks import FoldStatus, fold_status
from ImprovedNNUNetTrainingLib.engine.train_command import TrainCommand

DONE_MARKER = "study_done.json"


@dataclass
class Training:
    study: Study
    arm: Arm
    fold: object
    repeat: int = 0

    @property
    def key(self) -> str:
        return f"{self.arm.name}/fold {self.fold}" + (f"/repeat {self.repeat}" if self.study.repeats > 1 else "")

    @property
    def seed(self) -> int:
        return self.study.seeds[self.repeat]

    @property
    def folder(self) -> Path:
        return self.study.fold_folder(self.arm, self.fold, self.repeat)

    @property
    def log_path(self) -> Path:
        return self.study.log_path(self.arm, self.fold, self.repeat)

    def events(self) -> list[dict]:
        progress = self.folder / "progress.jsonl"
        return read_events(progress) if progress.is_file() else []

    def last_events(self) -> list[dict]:
        """The newest events only (the state and the epoch shown in a status matrix)."""
        progress = self.folder / "progress.jsonl"
        return read_last_events(progress) if progress.is_file() else []

    def _validates_again(self) -> bool:
        """Finished before the study kept probabilities: validated again with --npz."""
        return self.study.npz and not any((self.folder / "validation").glob("*.npz"))

    def state(self) -> str:
        if (self.folder / DONE_MARKER).is_file():
            return "validate" if self._validates_again() else "done"
        if fold_is_locked(self.folder):
            return "running"
        events = self.last_events()
        if events and events[-1]["stage"] == "error":
            return "failed"
        status = fold_status(self.folder)
        if status in (FoldStatus.RESUMABLE, FoldStatus.DONE):  # DONE without the marker: its validation is left
            return "stopped"
        return "failed" if status is FoldStatus.STOPPED else "new"

    def progress_text(self) -> str:
        """``epoch k/N`` of the newest event, or the state."""
        events = self.last_events()
        last = next((e for e in reversed(events) if e["stage"] == "training" and e["epoch"] is not None), None)
        return f"epoch {last['epoch'] + 1}/{last['num_epochs']}" if last else ""

    def arguments(self) -> list[str]:
        """``improved-nnunet`` arguments that start, resume or restart this training."""
        s = self.study
        if (self.folder / DONE_MARKER).is_file() and self._validates_again():
            mode = "validate"
        else:
            mode = fold_status(self.folder).resume_mode
        return TrainCommand(s.dataset, self.arm.variant, self.fold, s.configuration_of(self.arm), s.plans_of(self.arm),
                            s.device, s.epochs, s.iters_per_epoch, s.val_iters_per_epoch, dict(self.arm.settings),
                            npz=s.npz, mode=mode, seed=self.seed,
                            pretrained=self.arm.pretrained if mode in ("new", "overwrite") else None).arguments()

    def environment(self) -> dict:
        """Variables of the training's process: the arm's (repeat's) results root, and the study's MLflow run
        when the study is tracked (``MLFLOW_TRACKING_URI``)."""
        from ImprovedNNUNetTrainingLib.engine.tracking import PARENT_VARIABLE, parent_run_id

        variables = {"nnUNet_results": str(self.study.arm_root(self.arm, self.repeat))}
        parent = parent_run_id(self.study.folder)
        if parent:
            variables[PARENT_VARIABLE] = parent
        return variables

    def mark_done(self) -> None:
        write_text_verified(self.folder / DONE_MARKER, json.dumps({"finished": time.time()}))


def fold_is_locked(folder: Path) -> bool:
    """Whether a live process holds the fold's lock (see ``ImprovedNNUNetLib.core.folder_lock``)."""
    return holder_if_locked(folder) is not None


def trainings(study: Study) -> list[Training]:
    """Every (arm, fold, repeat) of the study, fold by fold and repeat by repeat so that the arms of one fold and
    repeat finish close together."""
    return [Training(study, arm, fold, repeat) for fold in study.folds for repeat in range(study.repeats)
            for arm in study.arms]
