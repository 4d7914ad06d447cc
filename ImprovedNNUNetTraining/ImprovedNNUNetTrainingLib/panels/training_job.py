"""A training job for the Slicer panel: `prepare` and one `train` per fold as child processes.

The job runs the backend command line (``improved-nnunet prepare`` / ``train``) through
:class:`ImprovedNNUNetLib.core.process.ChildProcess`, one step after another. The caller polls
it (a GUI timer, or :meth:`TrainingJob.wait` in scripts); each poll turns the progress
events the child printed into a :class:`JobStatus` and into per-fold training curves
(table and plot chart nodes, :mod:`.training_curves`). :meth:`TrainingJob.cancel` ends the
process tree; :meth:`TrainingJob.resume` starts the job again from what is on disk: finished
folds are skipped, interrupted ones continue from their checkpoint.

No Qt here, so the same logic runs in Slicer, in scripts and in tests.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.durations import duration_text
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.process import ChildProcess, child_environment, cli_command
from ImprovedNNUNetTrainingLib.engine.environment import folder_values
from ImprovedNNUNetTrainingLib.engine.progress import read_events
from ImprovedNNUNetTrainingLib.engine.run_checks import FoldStatus, fold_status
from ImprovedNNUNetTrainingLib.panels.training_curves import TrainingCurves, is_epoch_end
from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest

POLL_INTERVAL_S = 0.5


@dataclass
class JobStatus:
    """What the panel shows: state, current step, epoch/iteration, overall fraction and ETA."""

    state: str = "idle"  # idle, running, done, cancelled, failed
    step: str = ""
    stage: str = ""
    fold: str | None = None
    epoch: int | None = None
    num_epochs: int | None = None
    iteration: int | None = None
    num_iterations: int | None = None
    fraction: float = 0.0
    eta_s: float | None = None
    message: str = ""

    def progress_text(self) -> str:
        """One line such as ``train fold 0: epoch 3/10, iteration 5/250, ETA 4 min``."""
        details = []
        if self.epoch is not None and self.num_epochs:
            details.append(f"epoch {self.epoch + 1}/{self.num_epochs}")
        if self.iteration is not None and self.num_iterations:
            details.append(f"iteration {self.iteration}/{self.num_iterations}")
        if self.eta_s is not None:
            details.append(f"ETA {duration_text(self.eta_s)}")
        head = self.step or self.state
        return f"{head}: {', '.join(details)}" if details else head


@dataclass
class JobUpdate:
    """What one :meth:`TrainingJob.poll` collected."""

    events: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # new lines of the job's log
    epochs_completed: int = 0
    finished: bool = False  # the current step's process ended during this poll


CANCELLED_MESSAGE = "cancelled; press Resume to continue from the last checkpoint"


class TrainingJob:
    """Prepare (when the dataset is not planned yet) and train each requested fold in turn."""

    def __init__(self, request: TrainingRequest, scene):
        self.request = request
        self.scene = scene
        self.curves: dict[str, TrainingCurves] = {}
        self.status = JobStatus()
        self.steps = []
        self.step_index = 0
        self.process: ChildProcess | None = None
        self.log: list[str] = []  # the children's log lines and the job's own notes, in order
        self._log_reported = 0  # lines of ``log`` already handed out by ``poll``
        self._epoch_times: list[float] = []
        self._cancel_requested = False

    # -- control -------------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        """Start from scratch; refuses folds that already hold a run unless the request overwrites."""
        return self._start(resume=False)

    def resume(self) -> "TrainingJob":
        """Start again from the state on disk: skip finished folds, continue interrupted ones."""
        return self._start(resume=True)

    def cancel(self, wait: bool = True) -> None:
        """End the running child process and everything it started.

        ``wait=False`` (a GUI's Cancel) sends the stop and returns at once; keep polling: the
        job ends as "cancelled" once the process tree is gone."""
        if not self.running:
            return
        self._cancel_requested = True
        if self.process is not None and self.process.running:
            if not wait:
                self.status.message = "cancelling"
                self.process.cancel_in_background()
                return
            self.process.cancel()
            self._take_output()
        self._finish("cancelled", CANCELLED_MESSAGE)

    @property
    def running(self) -> bool:
        return self.status.state == "running"

    def _start(self, resume: bool) -> "TrainingJob":
        if self.running:
            raise UserError("a training job is already running; cancel it or wait for it to finish")
        self.steps = self.request.steps(resume)
        self._cancel_requested = False
        self.step_index = 0
        self.status = JobStatus(state="running")
        if not self.steps:
            self._finish("done", "every requested fold is already trained")
            return self
        self._start_step()
        return self

    def _start_step(self) -> None:
        step = self.steps[self.step_index]
        if step.kind == "train":
            self._curves_for(step.fold)
        self.status.step, self.status.fold = step.title, step.fold
        self.status.epoch = self.status.iteration = self.status.eta_s = None
        self.log.append(f"--- {step.title}: improved-nnunet {' '.join(step.arguments)}")
        try:
            self.process = ChildProcess.start(cli_command(*step.arguments),
                                              env=child_environment(folder_values(self.request.folders)))
        except Exception as exc:
            self._finish("failed", f"{step.title} could not start: {exc}")
            raise

    def _finish(self, state: str, message: str) -> None:
        self.status.state, self.status.message = state, message
        if state == "done":
            self.status.fraction, self.status.eta_s = 1.0, 0.0

    # -- progress ------------------------------------------------------------------------------------
    def poll(self) -> JobUpdate:
        """Read what the current child printed, update status and curves, start the next step when
        one ends. Never blocks. The update's log holds every line added to ``log`` since the last poll."""
        update = JobUpdate()
        if self.running and self.process is not None:
            update = self._take_output()
            if update.finished:
                self._step_ended()
        update.log = self.log[self._log_reported:]
        self._log_reported = len(self.log)
        return update

    def wait(self, timeout_s: float | None = None, on_update=None) -> JobStatus:
        """Poll until the job ends (scripts and tests); ``on_update(job, update)`` after each poll."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.running:
            update = self.poll()
            if on_update is not None:
                on_update(self, update)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"training job still running after {timeout_s} s")
            time.sleep(POLL_INTERVAL_S)
        return self.status

    def _take_output(self) -> JobUpdate:
        output = self.process.poll()
        self.log.extend(output.log)
        return JobUpdate(output.events, [], self._take_events(output.events), output.finished)

    def _step_ended(self) -> None:
        process = self.process
        if self._cancel_requested:
            self._finish("cancelled", CANCELLED_MESSAGE)
            return
        if process.returncode != 0:
            reason = process.last_error_line or f"exit status {process.returncode}"
            self._finish("failed", f"{self.steps[self.step_index].title} failed: {reason}")
            return
        self.step_index += 1
        if self.step_index == len(self.steps):
            self._finish("done", "training finished")
        else:
            self._start_step()

    def _take_events(self, events: list[dict]) -> int:
        completed = 0
        for event in events:
            stage = event.get("stage")
            if stage is None:
                continue
            self.status.stage = stage
            if event.get("message"):
                self.log.append(f"[{stage}] {event['message']}")
            if stage == "training":
                self._take_training_event(event)
                curves = self._curves_for(self.status.fold)
                if curves is not None and curves.add_event(event):
                    completed += 1
        return completed

    def _take_training_event(self, event: dict) -> None:
        s = self.status
        s.epoch, s.num_epochs = event.get("epoch"), event.get("num_epochs") or s.num_epochs
        s.iteration, s.num_iterations = event.get("iteration"), event.get("num_iterations") or s.num_iterations
        if is_epoch_end(event):
            self._epoch_times.append(float(event["epoch_time_s"]))
        done_in_fold = 0.0
        if s.epoch is not None and s.num_epochs:
            within = 1.0 if is_epoch_end(event) else (s.iteration or 0) / (s.num_iterations or 1)
            done_in_fold = min(1.0, (s.epoch + within) / s.num_epochs)
        train_steps = [step for step in self.steps if step.kind == "train"]
        finished_folds = sum(1 for step in self.steps[:self.step_index] if step.kind == "train")
        s.fraction = (finished_folds + done_in_fold) / max(1, len(train_steps))
        remaining_folds = len(train_steps) - finished_folds - 1
        eta = event.get("eta_s")
        if eta is not None and self._epoch_times and s.num_epochs:
            eta += remaining_folds * s.num_epochs * sum(self._epoch_times) / len(self._epoch_times)
        s.eta_s = eta

    def detach_scene(self) -> None:
        """The scene is closing: the job goes on (and stays cancellable) but adds no more nodes to any scene;
        the curve nodes made so far leave with the closed scene."""
        self.scene = None
        self.curves = {}

    def _curves_for(self, fold: str) -> TrainingCurves | None:
        """The fold's curves (None once the job left its scene); new ones start from the fold's progress.jsonl
        (a resumed run). Curve nodes of an earlier job of the same variant and fold are replaced, not added to."""
        if self.scene is None or fold is None:
            return None
        if fold not in self.curves:
            curves = TrainingCurves(self.scene, f"{self.request.variant} fold {fold}")
            progress = self.request.fold_folder(fold) / "progress.jsonl"
            if progress.is_file():
                curves.add_events(read_events(progress))
            self.curves[fold] = curves
        return self.curves[fold]

    # -- results -------------------------------------------------------------------------------------
    def model_folder(self) -> Path:
        """The trained model folder (``<trainer>__<plans>__<configuration>``) that inference loads."""
        return self.request.model_folder()

    def finished_folds(self) -> list[str]:
        return [str(f) for f in self.request.folds if fold_status(self.request.fold_folder(f)) is FoldStatus.DONE]
