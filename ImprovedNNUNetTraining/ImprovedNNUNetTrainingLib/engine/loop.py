"""The epoch loop of a started nnU-Net trainer with progress events and cancellation points.

It calls nnU-Net's hooks in the order of ``nnUNetTrainer.run_training`` so that every variant's
overrides apply unchanged; only event reporting and cancellation points are added.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ImprovedNNUNetTrainingLib.engine.cancel import CancelGuard
from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

PROGRESS_INTERVAL_S = 2.0


def current_lr(trainer) -> float:
    return trainer.optimizer.param_groups[0]["lr"]


class EpochLoop:
    """Runs the remaining epochs of a trainer whose ``on_train_start`` has run."""

    def __init__(self, trainer, reporter: ProgressReporter, guard: CancelGuard,
                 progress_interval_s: float = PROGRESS_INTERVAL_S):
        self.trainer = trainer
        self.reporter = reporter
        self.guard = guard
        self.progress_interval_s = progress_interval_s
        self.epoch_times: list[float] = []

    def eta_s(self) -> float | None:
        if not self.epoch_times:
            return None
        return float(np.mean(self.epoch_times)) * (self.trainer.num_epochs - self.trainer.current_epoch)

    def emit(self, **values):
        t = self.trainer
        self.reporter.emit("training", num_epochs=t.num_epochs, num_iterations=t.num_iterations_per_epoch,
                           lr=current_lr(t), eta_s=self.eta_s(), **values)

    def train_epoch(self) -> list[dict]:
        t = self.trainer
        outputs = []
        last_report = time.monotonic()
        for iteration in range(t.num_iterations_per_epoch):
            with self.guard.protected():
                outputs.append(t.train_step(next(t.dataloader_train)))
            if time.monotonic() - last_report >= self.progress_interval_s:
                last_report = time.monotonic()
                self.emit(epoch=t.current_epoch, iteration=iteration + 1,
                          train_loss=float(np.mean([o["loss"] for o in outputs])))
        return outputs

    def validate_epoch(self) -> None:
        """Validation as nnU-Net runs it: start hook, steps and end hook, all inside ``torch.no_grad()``."""
        t = self.trainer
        with torch.no_grad():
            t.on_validation_epoch_start()
            outputs = [t.validation_step(next(t.dataloader_val)) for _ in range(t.num_val_iterations_per_epoch)]
            t.on_validation_epoch_end(outputs)

    def run(self, message: str | None = None) -> None:
        t = self.trainer
        self.emit(epoch=t.current_epoch, iteration=0, message=message)
        while t.current_epoch < t.num_epochs:
            epoch, started = t.current_epoch, time.monotonic()
            t.on_epoch_start()
            t.on_train_epoch_start()
            t.on_train_epoch_end(self.train_epoch())
            self.validate_epoch()
            # The epoch's end and its event are one step: a cancellation arriving here is raised only
            # after the event, so every epoch the checkpoint counts as done is also reported.
            with self.guard.protected():
                t.on_epoch_end()  # may write checkpoint_latest / checkpoint_best
                self.epoch_times.append(time.monotonic() - started)
                self.emit(epoch=epoch, iteration=t.num_iterations_per_epoch,
                          train_loss=t.logger.get_value("train_losses", step=-1),
                          val_loss=t.logger.get_value("val_losses", step=-1),
                          pseudo_dice=t.logger.get_value("mean_fg_dice", step=-1),
                          epoch_time_s=round(self.epoch_times[-1], 3))
            if t.current_epoch < t.num_epochs:
                self.guard.check_epoch_end()  # SIGUSR1: stop here (the runner writes the checkpoint)
