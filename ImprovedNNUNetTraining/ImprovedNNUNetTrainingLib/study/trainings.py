"""One training of a study (an arm and a fold): its state on disk and the command that (re)starts it.

The state comes from files only, so it is the same whoever asks (the local executor, a SLURM job,
``study status``): ``done`` once ``study_done.json`` is written (after the training and its final
validation ended with status 0), ``running`` while a process holds the fold's lock, ``stopped`` for a
run that can be resumed from a checkpoint, ``failed`` when its last event is an error, ``new`` otherwise.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.folder_lock import holder_if_locked
from ImprovedNNUNetLib.safe_write import write_text_verified

from ..progress import read_events
from ..run_plan import resume_checkpoint
from .spec import Arm, Study

DONE_MARKER = "study_done.json"


@dataclass
class Training:
    study: Study
    arm: Arm
    fold: object

    @property
    def key(self) -> str:
        return f"{self.arm.name}/fold {self.fold}"

    @property
    def folder(self) -> Path:
        return self.study.fold_folder(self.arm, self.fold)

    @property
    def log_path(self) -> Path:
        return self.study.log_path(self.arm, self.fold)

    def events(self) -> list[dict]:
        progress = self.folder / "progress.jsonl"
        return read_events(progress) if progress.is_file() else []

    def state(self) -> str:
        if (self.folder / DONE_MARKER).is_file():
            if self.study.npz and not any((self.folder / "validation").glob("*.npz")):
                return "validate"  # finished before the study kept probabilities: validated again with --npz
            return "done"
        if fold_is_locked(self.folder):
            return "running"
        events = self.events()
        if events and events[-1]["stage"] == "error":
            return "failed"
        if resume_checkpoint(self.folder) is not None:
            return "stopped"
        if self.folder.is_dir() and any(self.folder.iterdir()):
            return "failed"
        return "new"

    def progress_text(self) -> str:
        """``epoch k/N`` of the newest event, or the state."""
        events = self.events()
        last = next((e for e in reversed(events) if e["stage"] == "training" and e["epoch"] is not None), None)
        return f"epoch {last['epoch'] + 1}/{last['num_epochs']}" if last else ""

    def arguments(self) -> list[str]:
        """``improved-nnunet`` arguments that start, resume or restart this training."""
        s = self.study
        arguments = ["train", s.dataset, "--variant", self.arm.variant, "--config", s.configuration,
                     "--plans", s.plans, "--fold", str(self.fold), "--device", s.device]
        for option, value in (("--epochs", s.epochs), ("--iters-per-epoch", s.iters_per_epoch),
                              ("--val-iters-per-epoch", s.val_iters_per_epoch)):
            if value is not None:
                arguments += [option, str(value)]
        for name, value in self.arm.settings.items():
            arguments += ["--set", f"{name}={json.dumps(value)}"]
        if s.npz:
            arguments.append("--npz")
        if self.state() == "validate":
            return arguments + ["--val"]
        if resume_checkpoint(self.folder) is not None:
            arguments.append("--continue")
        elif self.folder.is_dir() and any(self.folder.iterdir()):
            arguments.append("--overwrite")  # stopped before its first checkpoint: nothing to resume
        return arguments

    def environment(self) -> dict:
        """Variables of the training's process: the arm's results root."""
        return {"nnUNet_results": str(self.study.arm_root(self.arm))}

    def mark_done(self) -> None:
        write_text_verified(self.folder / DONE_MARKER, json.dumps({"finished": time.time()}))


def fold_is_locked(folder: Path) -> bool:
    """Whether a live process holds the fold's lock (see ``ImprovedNNUNetLib.folder_lock``)."""
    return holder_if_locked(folder) is not None


def trainings(study: Study) -> list[Training]:
    """Every (arm, fold) of the study, fold by fold so that each fold's arms finish close together."""
    return [Training(study, arm, fold) for fold in study.folds for arm in study.arms]
