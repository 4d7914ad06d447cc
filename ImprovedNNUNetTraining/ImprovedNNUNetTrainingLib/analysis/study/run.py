"""Running a study: every training not done yet, on the chosen executor; idempotent.

A finished training (``study_done.json``) is never retrained; an interrupted or failed one resumes from
its checkpoint (or starts again when it stopped before the first one); one that another process is
training is left to it. The report is written when every training is done.
"""
from __future__ import annotations

import sys

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folder_lock import FolderLock, describe_holder
from ImprovedNNUNetTrainingLib.analysis.study.spec import Study
from ImprovedNNUNetTrainingLib.analysis.study.trainings import Training, trainings


def pending_trainings(study: Study, out=None) -> list[Training]:
    out = out or sys.stderr
    pending = []
    for training in trainings(study):
        state = training.state()
        if state == "done":
            continue
        if state == "running":
            print(f"{training.key} is being trained by another process; left to it", file=out)
            continue
        if state == "failed":
            print(f"{training.key} failed earlier (log: {training.log_path}); trying it again", file=out)
        elif state == "stopped":
            print(f"{training.key} resumes from its checkpoint", file=out)
        elif state == "validate":
            print(f"{training.key} is trained; its validation runs again to keep the probabilities (--npz)",
                  file=out)
        pending.append(training)
    return pending


def run_study(study: Study, executor: str = "local", gpus=None, parallel: int = 1, slurm=None,
              out=None) -> dict:
    """Run what is left of ``study`` (checked first by the caller: ``Study.check_against_record`` and the
    trainings' arguments); returns {training key: exit status or job state}. One run of a study at a
    time: a second `study run` of it is refused at once, naming the process (two would start the same
    trainings and each report the other's fold-lock refusals as failures)."""
    from ImprovedNNUNetTrainingLib.engine.tracking import end_study_run, start_study_run

    with StudyLock(study.folder, "study run"):
        start_study_run(study)  # MLflow, when MLFLOW_TRACKING_URI is set: the trainings nest under it
        results = _run_study(study, executor, gpus, parallel, slurm, out)
        if executor != "slurm" or (slurm is not None and slurm.wait):
            end_study_run(study, all_done(study))
        return results


class StudyLock(FolderLock):
    """The fold lock's mechanism (an OS file lock beside the folder, released when its holder ends) for a study."""

    def busy_error(self, holder: dict) -> UserError:
        pid = holder.get("pid")
        return UserError(f"study {self.fold_folder.name} is being run by {describe_holder(holder)}; wait for it (or "
                         f"stop it{f': kill {pid}' if pid else ''}) and follow it with `improved-nnunet study status`")


def _run_study(study: Study, executor: str, gpus, parallel: int, slurm, out) -> dict:
    study.save()
    pending = pending_trainings(study, out)
    if not pending:
        return {}
    if executor == "slurm":
        from ImprovedNNUNetTrainingLib.analysis.study.slurm import run_slurm

        return run_slurm(study, pending, slurm, out=out)
    from ImprovedNNUNetTrainingLib.analysis.study.local import run_local

    return run_local(pending, gpus=gpus, parallel=parallel, out=out)


def all_done(study: Study) -> bool:
    return all(t.state() == "done" for t in trainings(study))
