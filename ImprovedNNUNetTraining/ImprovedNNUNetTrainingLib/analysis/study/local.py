"""The local executor: a queue of a study's trainings over the local GPUs (one training per GPU) or
N CPU slots, each training a child process (``improved-nnunet train``) writing to its log."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.process import ChildProcess, child_environment, cli_command
from ImprovedNNUNetTrainingLib.analysis.study.trainings import Training

POLL_S = 1.0
STOP_GRACE_S = 300.0  # a training stopping writes its checkpoint first; killed only when it hangs


@dataclass
class Slot:
    """Where one training runs: a GPU (``CUDA_VISIBLE_DEVICES``) or a set of CPU cores."""

    name: str
    environment: dict = field(default_factory=dict)
    cores: tuple = ()


def slots(gpus: list[str] | None, parallel: int) -> list[Slot]:
    """One slot per GPU of ``gpus``, else ``parallel`` CPU slots sharing the cores between them."""
    if gpus:
        return [Slot(f"GPU {gpu}", {"CUDA_VISIBLE_DEVICES": str(gpu)}) for gpu in gpus]
    if parallel < 1:
        raise UserError(f"--parallel {parallel}: give 1 or more trainings at once")
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        available = list(range(os.cpu_count() or 1))
    share = max(1, len(available) // parallel)
    result = []
    for index in range(parallel):
        cores = tuple(available[index * share:(index + 1) * share]) or tuple(available)
        result.append(Slot(f"CPU slot {index}", {"nnUNet_n_proc_DA": str(len(cores)),
                                                  "nnUNet_def_n_proc": str(len(cores))}, cores))
    return result


def start(training: Training, slot: Slot) -> ChildProcess:
    """The training as a child process of the project's one kind (its output appended to its log, pinned to
    the slot's cores)."""
    arguments = training.arguments()
    training.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(training.log_path, "a", encoding="utf-8") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} on {slot.name}: improved-nnunet {' '.join(arguments)}\n")
    return ChildProcess.start(cli_command(*arguments),
                              env=child_environment({**training.environment(), **slot.environment}),
                              log_path=training.log_path, cpu_cores=slot.cores)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_local(pending: list[Training], gpus: list[str] | None = None, parallel: int = 1, out=None) -> dict:
    """Run ``pending`` trainings, as many at once as there are slots; returns {key: exit status}.
    Ctrl-C or SIGTERM stops the running trainings with a checkpoint."""
    import signal
    import threading

    out = out or sys.stderr
    if threading.current_thread() is not threading.main_thread():
        return _run_queue(pending, gpus, parallel, out)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops the trainings as Ctrl-C does
    try:
        return _run_queue(pending, gpus, parallel, out)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_queue(pending: list[Training], gpus, parallel: int, out) -> dict:
    from tqdm import tqdm

    free = slots(gpus, parallel)
    queue = list(pending)
    running: dict[str, tuple[Training, Slot, ChildProcess]] = {}
    results = {}
    with tqdm(total=len(queue), desc="study", unit="training", file=out, disable=None) as bar:
        try:
            while queue or running:
                while queue and free:
                    training, slot = queue.pop(0), free.pop(0)
                    running[training.key] = (training, slot, start(training, slot))
                    bar.write(f"started {training.key} on {slot.name} (log: {training.log_path})", file=out)
                for key, (training, slot, process) in list(running.items()):
                    if not process.poll().finished:
                        continue
                    del running[key]
                    free.append(slot)
                    results[key] = process.returncode
                    if process.returncode == 0:
                        training.mark_done()
                        bar.write(f"done    {key}", file=out)
                    else:
                        bar.write(f"failed  {key} (exit status {process.returncode}); see {training.log_path}",
                                  file=out)
                    bar.update()
                bar.set_postfix_str(", ".join(f"{k}: {t.progress_text()}" for k, (t, _, _) in running.items()))
                time.sleep(POLL_S if running else 0)
        except KeyboardInterrupt:
            stop(running.values(), results)
            raise
    return results


def stop(running, results: dict) -> None:
    """Ctrl-C or SIGTERM of the study: each training's process tree is cancelled the project's one way
    (SIGTERM, on which a training writes its checkpoint and ends; SIGKILL only after ``STOP_GRACE_S``); the
    next run of the study resumes it."""
    running = list(running)
    for _, _, process in running:
        process.cancel_in_background(STOP_GRACE_S)
    for training, _, process in running:
        process.cancel(STOP_GRACE_S)
        results[training.key] = process.returncode
