"""The SLURM executor: one SLURM job per training, submitted with submitit.

Each job runs :class:`TrainingTask`, which starts ``improved-nnunet train`` (resuming from the fold's
checkpoint when there is one) as a child process with ``nnUNet_n_proc_DA`` set from the CPUs SLURM
gave the job. Before the wall-time limit or on preemption submitit calls :meth:`TrainingTask.checkpoint`:
the training is stopped with SIGTERM (it writes its checkpoint) and the job is requeued; the requeued
job resumes the same run. A job that SLURM itself requeues (``scontrol requeue``, preemption with
``PreemptMode=REQUEUE``) resumes the same way, because progress is on disk. Job states come from the
study's files plus ``squeue``, so clusters without accounting (no ``sacct``) work.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified
from ImprovedNNUNetTrainingLib.analysis.study.spec import Study
from ImprovedNNUNetTrainingLib.analysis.study.status import SLURM_JOBS
from ImprovedNNUNetTrainingLib.analysis.study.trainings import Training

WAIT_POLL_S = 2.0


@dataclass
class SlurmOptions:
    partition: str | None = None
    gpus_per_job: int = 0
    time_min: int = 24 * 60
    cpus_per_task: int | None = None
    python: str | None = None  # the cluster environment's python (default: this one)
    extra: dict = field(default_factory=dict)  # further sbatch options, e.g. {"account": "lab"}
    wait: bool = True
    signal_delay_s: int = 120  # submitit's USR2 before the time limit: time to write a checkpoint


_child: subprocess.Popen | None = None  # the running training of this job (kept out of the pickled task)


class TrainingTask:
    """What a SLURM job runs: one training of a study, resumable (submitit ``Checkpointable``)."""

    def __init__(self, study: dict, arm: str, fold, repeat: int = 0):
        self.study, self.arm, self.fold, self.repeat = study, arm, fold, repeat

    def training(self) -> Training:
        study = Study.from_dict(self.study)
        arm = next(a for a in study.arms if a.name == self.arm)
        return Training(study, arm, self.fold, getattr(self, "repeat", 0))

    def __call__(self) -> int:
        global _child
        from ImprovedNNUNetLib.core.process import child_environment, cli_command

        training = self.training()
        if training.state() == "done":
            return 0
        cpus = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("SLURM_CPUS_ON_NODE")
        extra = dict(training.environment())
        if cpus:
            extra.update(nnUNet_n_proc_DA=cpus, nnUNet_def_n_proc=cpus)
        training.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(training.log_path, "a", encoding="utf-8") as log:
            log.write(f"--- SLURM job {os.environ.get('SLURM_JOB_ID', '?')} (restart "
                      f"{os.environ.get('SLURM_RESTART_COUNT', '0')}): improved-nnunet "
                      f"{' '.join(training.arguments())}\n")
            log.flush()
            _child = subprocess.Popen(cli_command(*training.arguments()), stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=child_environment(extra))
            status = _child.wait()
        if status == 0:
            training.mark_done()
            return 0
        raise RuntimeError(f"{training.key}: improved-nnunet train exited with status {status}; "
                           f"see {training.log_path}")

    def checkpoint(self, *args, **kwargs):
        """submitit calls this on USR2 (time limit or preemption): stop the training with a checkpoint and
        requeue this task."""
        import submitit

        if _child is not None and _child.poll() is None:
            _child.send_signal(signal.SIGTERM)
            try:
                _child.wait(timeout=max(10, SlurmOptions.signal_delay_s - 20))
            except subprocess.TimeoutExpired:
                pass
        return submitit.helpers.DelayedSubmission(TrainingTask(self.study, self.arm, self.fold,
                                                               getattr(self, "repeat", 0)))


def _executor(study: Study, options: SlurmOptions):
    import submitit

    if shutil.which("sbatch") is None:
        raise UserError("--executor slurm: sbatch is not on PATH; run on a SLURM login node, or use --executor local")
    executor = submitit.SlurmExecutor(folder=str(study.folder / "slurm" / "%j"), python=options.python,
                                      max_num_timeout=100)
    pythonpath = os.environ.get("PYTHONPATH", "")
    parameters = dict(time=options.time_min, signal_delay_s=options.signal_delay_s, nodes=1, ntasks_per_node=1,
                      additional_parameters=dict(options.extra))
    if pythonpath:
        parameters["setup"] = [f"export PYTHONPATH={pythonpath}"]
    if options.partition:
        parameters["partition"] = options.partition
    if options.cpus_per_task:
        parameters["cpus_per_task"] = options.cpus_per_task
    if options.gpus_per_job:
        parameters["gpus_per_node"] = options.gpus_per_job
    executor.update_parameters(**parameters)
    return executor


def submit(study: Study, pending: list[Training], options: SlurmOptions) -> dict:
    """Submit one job per training; returns and records {training key: job id}."""
    executor = _executor(study, options)
    record = study.folder / SLURM_JOBS
    jobs = json.loads(record.read_text()) if record.is_file() else {}
    for training in pending:
        executor.update_parameters(job_name=f"{study.name}:{training.arm.name}:f{training.fold}"
                                            + (f":r{training.repeat}" if training.repeat else ""))
        job = executor.submit(TrainingTask(study.to_dict(), training.arm.name, training.fold, training.repeat))
        jobs[training.key] = str(job.job_id)
    write_text_verified(record, json.dumps(jobs, indent=1))
    return {t.key: jobs[t.key] for t in pending}


def in_queue(job_ids) -> set[str]:
    listed = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(job_ids)], capture_output=True, text=True,
                            timeout=60)
    return set(listed.stdout.split())


def run_slurm(study: Study, pending: list[Training], options: SlurmOptions | None, out=None) -> dict:
    """Submit the trainings; with ``options.wait`` wait until every job has left the queue and return
    {key: "done"/"failed"}, else {key: job id}."""
    out = out or sys.stderr
    options = options or SlurmOptions()
    jobs = submit(study, pending, options)
    for key, job in jobs.items():
        print(f"submitted {key} as SLURM job {job}", file=out)
    if not options.wait:
        return jobs
    by_key = {t.key: t for t in pending}
    remaining = dict(jobs)
    results = {}
    while remaining:
        queued = in_queue(remaining.values())
        for key, job in list(remaining.items()):
            training = by_key[key]
            done = training.state() == "done"
            if not done and job not in queued:  # the job wrote its marker before exiting; a shared file
                time.sleep(1.0)                 # system may show it a moment later
                done = training.state() == "done"
            if done or job not in queued:
                results[key] = "done" if done else "failed"
                print(f"done    {key} (SLURM job {job})" if done else
                      f"failed  {key} (SLURM job {job}); see {training.log_path}", file=out)
                del remaining[key]
        if remaining:
            time.sleep(WAIT_POLL_S)
    return results
