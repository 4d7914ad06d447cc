"""A study started from the Training panel: ``improved-nnunet study run`` as a child process on this computer (its
local or SLURM executor), or a study job on an ``improved-nnunet serve`` server through its client; the arms ×
folds (× repeats) status matrix as a table node; the report to open.

The panel's Study section gives the arms, repeats, executor and name; the dataset, folds, configuration, planner,
device and schedule are the Training section's. Plain Python (no Qt): the panel polls :meth:`StudyJob.poll` from
a timer, and Cancel ends the child's whole process tree (every training stops with a checkpoint, and running the
study again continues it).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError


@dataclass
class StudyRequest:
    dataset: str
    arms: list[str]
    folds: str = ""
    configuration: str = "3d_fullres"
    plans: str = "nnUNetPlans"
    device: str = "auto"
    epochs: int | None = None
    iters_per_epoch: int | None = None
    val_iters_per_epoch: int | None = None
    repeats: int = 1
    executor: str = "local"
    name: str = ""
    folders: dict = field(default_factory=dict)  # nnU-Net's folders of the panel (nnUNet_results, ...)

    @property
    def study_name(self) -> str:
        return self.name or "-vs-".join(arm.split("=")[0] for arm in self.arms)

    def arguments(self) -> list[str]:
        """``improved-nnunet`` arguments of ``study run`` (arms as ``--arm=`` so no arm passes for an option)."""
        device, gpus = self.device, None
        if device.startswith("cuda:"):  # one chosen GPU: the local executor's --gpus
            device, gpus = "cuda", device.split(":", 1)[1]
        arguments = ["study", "run", self.dataset, *[f"--arm={arm}" for arm in self.arms], "--config",
                     self.configuration, "--plans", self.plans, "--device", device, "--executor", self.executor,
                     "--repeats", str(self.repeats), "--name", self.study_name]
        if self.folds.strip():
            arguments += ["--folds", self.folds.strip()]
        for flag, value in (("--epochs", self.epochs), ("--iters-per-epoch", self.iters_per_epoch),
                            ("--val-iters-per-epoch", self.val_iters_per_epoch)):
            if value is not None:
                arguments += [flag, str(value)]
        if gpus is not None and self.executor == "local":
            arguments += ["--gpus", gpus]
        return arguments


def study_request(parameters, folders: dict) -> StudyRequest:
    """The panel's parameters as a study; each arm checked as ``study run`` checks it (one line naming the arm)."""
    from ImprovedNNUNetLib.core.variants import PLANNERS
    from ImprovedNNUNetTrainingLib.analysis.study.spec import ARM_NAME, parse_arm

    dataset = str(parameters.dataset).strip()
    if not dataset:
        raise UserError("no dataset: export the cases or use a raw dataset in the Dataset section first")
    try:
        arms = shlex.split(str(parameters.studyArms))
    except ValueError as exc:
        raise UserError(f"Arms: {exc}; separate arms by spaces, quote one that holds a space") from None
    if not arms:
        raise UserError("no arms: write at least one, e.g. baseline improved")
    for arm in arms:
        parse_arm(arm)
    name = str(parameters.studyName).strip()
    if name and not ARM_NAME.match(name):
        raise UserError(f"study name {name!r}: use letters, digits, '.', '_' and '-'")
    return StudyRequest(dataset=dataset, arms=arms, folds=str(parameters.folds), configuration=parameters.configuration,
                        plans=PLANNERS.get(parameters.planner, parameters.planner), device=parameters.device,
                        epochs=parameters.epochs, iters_per_epoch=parameters.iterationsPerEpoch,
                        val_iters_per_epoch=parameters.validationIterationsPerEpoch, repeats=int(parameters.studyRepeats),
                        executor=parameters.studyExecutor, name=name, folders=dict(folders))


class StudyJob:
    """A running study: ``poll()`` -> new log lines; ``running``, ``returncode``, ``cancel()``, ``report``."""

    def __init__(self, request: StudyRequest, server=None):
        self.request, self.server = request, server
        self.process = None
        self.job_id = None
        self._state = None
        self.report: Path | None = None  # report.html once written (or downloaded from the server)

    def start(self) -> "StudyJob":
        if self.server is not None:
            settings = {"name": self.request.study_name, "folds": self.request.folds.strip() or None,
                        "epochs": self.request.epochs, "iters_per_epoch": self.request.iters_per_epoch,
                        "val_iters_per_epoch": self.request.val_iters_per_epoch,
                        "configuration": self.request.configuration, "plans": self.request.plans,
                        "executor": self.request.executor, "repeats": self.request.repeats}
            job = self.server.study(self.request.dataset, list(self.request.arms),
                                    **{k: v for k, v in settings.items() if v is not None})
            self.job_id, self._state = job["id"], job["state"]
            return self
        from ImprovedNNUNetLib.core.process import ChildProcess, child_environment, cli_command

        self.process = ChildProcess.start(cli_command(*self.request.arguments()),
                                          env=child_environment(self.request.folders))
        return self

    @property
    def running(self) -> bool:
        if self.server is not None:
            return self._state not in ("done", "failed", "cancelled")
        return self.process is not None and self.process.running

    @property
    def succeeded(self) -> bool:
        return self._state == "done" if self.server is not None else self.process.returncode == 0

    def poll(self) -> list[str]:
        """New lines for the panel's log (the child's output, or the server job's state changes)."""
        if self.server is not None:
            job = self.server.job(self.job_id)
            lines = [] if job["state"] == self._state else [f"study job {self.job_id} on the server: {job['state']}"
                                                          + (f" ({job['message']})" if job.get("message") else "")]
            self._state = job["state"]
            if self._state == "done" and self.report is None:
                self.report = self._download()
                lines.append(f"report: {self.report}")
            return lines
        output = self.process.poll()
        lines = list(output.log)
        if output.finished:
            found = self.local_report()
            if found is not None:
                self.report = found
        return lines

    def local_report(self) -> Path | None:
        """The study's report.html on this computer, None before it is written."""
        from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable

        folders = self.request.folders
        try:
            path = (folder_variable("nnUNet_results", folders) / dataset_name(self.request.dataset, folders) / "studies"
                    / self.request.study_name / "report" / "report.html")
        except UserError:
            return None
        return path if path.is_file() else None

    def _download(self) -> Path:
        base = Path(self.request.folders.get("nnUNet_results") or Path.home())
        folder = base / f"{self.request.study_name}-report"
        self.server.download(self.job_id, folder)
        return folder / "report.html"

    def status(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the study's matrix: read from its files on this computer, or asked of the server."""
        if self.server is not None:
            return self.server.study_status(self.job_id)
        return status_rows(self.request.dataset, self.request.study_name, self.request.folders)

    def cancel(self) -> None:
        """Stop the study: on this computer its whole process tree (each training writes its checkpoint first, the
        call returns at once); on the server its job."""
        if self.server is not None:
            self.server.cancel(self.job_id)
        elif self.process is not None and self.process.running:
            self.process.cancel_in_background()


def status_rows(dataset: str, name: str, folders: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the study's status matrix read from its files (``study status``), or ([], []) before the
    study has written its study.json."""
    from ImprovedNNUNetTrainingLib.analysis.study.spec import load_study
    from ImprovedNNUNetTrainingLib.analysis.study.status import status_header, status_matrix

    try:
        study = load_study(dataset, name, folders)
    except UserError:
        return [], []
    return status_header(study), status_matrix(study)


def fill_status_table(table_node, header: list[str], rows: list[list[str]]) -> None:
    """Replace the table node's content with the status matrix (text columns)."""
    import vtk

    table = vtk.vtkTable()
    for index, title in enumerate(header):
        array = vtk.vtkStringArray()
        array.SetName(title)
        for row in rows:
            array.InsertNextValue(str(row[index]) if index < len(row) else "")
        table.AddColumn(array)
    table_node.SetAndObserveTable(table)
