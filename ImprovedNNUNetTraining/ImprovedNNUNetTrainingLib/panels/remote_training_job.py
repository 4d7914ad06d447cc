"""The Training panel's job when it runs on an `improved-nnunet serve` server.

The same face as :class:`~.training_job.TrainingJob` (``status``, per-fold ``curves``, ``poll``, ``cancel``,
``resume``, ``running``, ``detach_scene``), so the panel drives either the same way; the work is a job of the
server: the panel uploads the raw dataset when the server lacks it, starts the training there, and each poll
reads the job's new progress events (each carries its fold) and its state. Closing Slicer leaves the job
running; :meth:`RemoteTrainingJob.attach` finds it again (its curves rebuilt from every event it printed).

A poll has a short timeout and a failed poll is not a failed job: the status says the server is unreachable
and the next poll tries again.
"""
from __future__ import annotations

import time

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.engine.environment import folder_variable
from ImprovedNNUNetTrainingLib.panels.training_curves import TrainingCurves
from ImprovedNNUNetTrainingLib.panels.training_job import CANCELLED_MESSAGE, JobStatus, JobUpdate, TrainingJob
from ImprovedNNUNetTrainingLib.panels.training_request import Step, TrainingRequest

ENDED = {"done": "done", "failed": "failed", "cancelled": "cancelled", "interrupted": "cancelled"}
SETTINGS = ("variant", "configuration", "epochs", "iterations_per_epoch", "validation_iterations_per_epoch",
            "hyperparameters", "overwrite", "planner")


def request_of(spec: dict) -> TrainingRequest:
    """The panel's request a server training job was started with."""
    return TrainingRequest(dataset=spec["dataset"], folds=list(spec.get("folds", [0])),
                           **{name: spec[name] for name in SETTINGS if spec.get(name) is not None})


class RemoteTrainingJob(TrainingJob):
    def __init__(self, request: TrainingRequest, scene, client, job_id: int | None = None):
        super().__init__(request, scene)
        self.client = client
        self.job_id = job_id
        self._next_event = 0
        self.steps = [Step("train", [], str(fold)) for fold in request.folds]

    @classmethod
    def attach(cls, client, scene, job: dict | None = None) -> RemoteTrainingJob | None:
        """The newest training job of this key on the server that has not finished (or ``job``), followed
        from its first event on; None when there is none."""
        if job is None:
            unfinished = [j for j in client.jobs() if j["kind"] == "train" and j["state"] != "done"]
            if not unfinished:
                return None
            job = max(unfinished, key=lambda j: j["id"])
        attached = cls(request_of(job["spec"]), scene, client, job["id"])
        attached.status = JobStatus(state="running")
        attached.log.append(f"--- following training job {job['id']} on {client.url}")
        return attached

    # -- control -------------------------------------------------------------------------------------
    def _start(self, resume: bool) -> RemoteTrainingJob:
        if self.running:
            raise UserError("a training job is already running; cancel it or wait for it to finish")
        self.status = JobStatus(state="running", message="starting on the server")
        self._cancel_requested = False
        if resume and self.job_id is not None:
            self.client.resume(self.job_id)
            self.log.append(f"--- resuming training job {self.job_id} on {self.client.url}")
            return self
        self.request.check()
        name = self.request.dataset_name
        if name not in self.client.datasets():
            raw = folder_variable("nnUNet_raw", self.request.folders) / name
            self.log.append(f"--- sending {raw} to {self.client.url}")
            self.client.upload_dataset(raw)
        settings = {setting: getattr(self.request, setting) for setting in SETTINGS}
        job = self.client.train(name, folds=[str(f) if f == "all" else int(f) for f in self.request.folds],
                                **settings)
        self.job_id, self._next_event = job["id"], 0
        self.log.append(f"--- training job {self.job_id} on {self.client.url}")
        return self

    def cancel(self, wait: bool = True) -> None:
        """Ask the server to stop the job (it stops with a checkpoint); ``wait`` polls until it has."""
        if not self.running:
            return
        self._cancel_requested = True
        self.client.cancel(self.job_id)
        self.status.message = "cancelling"
        while wait and self.running:
            self.poll()
            time.sleep(0.5)

    # -- progress ------------------------------------------------------------------------------------
    def poll(self) -> JobUpdate:
        update = JobUpdate()
        if self.running:
            try:
                events, self._next_event = self.client.events(self.job_id, self._next_event)
                job = self.client.job(self.job_id)
            except UserError as exc:
                self.status.message = f"the server does not answer; trying again ({exc})"
            else:
                update.events = events
                for event in events:
                    self._follow_fold(event.get("fold"))
                    update.epochs_completed += self._take_events([event])
                self._take_state(job)
                update.finished = not self.running
        update.log = self.log[self._log_reported:]
        self._log_reported = len(self.log)
        return update

    def _follow_fold(self, fold) -> None:
        if fold is None or fold == self.status.fold:
            return
        self.status.fold, self.status.step = str(fold), f"train fold {fold}"
        self.step_index = next((i for i, step in enumerate(self.steps) if step.fold == str(fold)), self.step_index)
        self.status.epoch = self.status.iteration = self.status.eta_s = None

    def _take_state(self, job: dict) -> None:
        state = job["state"]
        if state in ENDED:
            message = {"done": "training finished", "cancelled": CANCELLED_MESSAGE,
                       "interrupted": "the server stopped while training; press Resume to continue"}.get(state)
            self._finish(ENDED[state], job["message"] if state == "failed" else message)
        elif state in ("queued", "new"):
            self.status.message = "queued on the server"
        elif self.status.message in ("queued on the server", "starting on the server"):
            self.status.message = ""

    def _curves_for(self, fold: str) -> TrainingCurves | None:
        """The fold's curves, from the server's events only (its progress file is on the server)."""
        if self.scene is None or fold is None:
            return None
        if fold not in self.curves:
            self.curves[fold] = TrainingCurves(self.scene, f"{self.request.variant} fold {fold}")
        return self.curves[fold]

    def model_folder(self):
        raise UserError("the model is on the server: segment there (Segment panel, Run on: server) or download it")

    def finished_folds(self) -> list[str]:
        return [str(f) for f in self.request.folds] if self.status.state == "done" else []
