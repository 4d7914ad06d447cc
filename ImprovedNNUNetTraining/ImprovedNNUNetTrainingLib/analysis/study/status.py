"""``study status``: the matrix of arms × folds (× repeats) from the files (and the SLURM queue when jobs were submitted)."""
from __future__ import annotations

import json
import shutil
import subprocess

from ImprovedNNUNetTrainingLib.analysis.study.spec import Study
from ImprovedNNUNetTrainingLib.analysis.study.trainings import trainings

SLURM_JOBS = "slurm_jobs.json"


def queued_jobs(study: Study) -> dict:
    """{training key: "queued"/"running (SLURM)"} for this study's jobs in ``squeue`` (none without SLURM)."""
    record = study.folder / SLURM_JOBS
    if not record.is_file() or shutil.which("squeue") is None:
        return {}
    jobs = json.loads(record.read_text())
    try:
        listed = subprocess.run(["squeue", "-h", "-o", "%i %T", "-j", ",".join(jobs.values())],
                                capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = dict(line.split()[:2] for line in listed.splitlines() if len(line.split()) >= 2)
    by_job = {job: key for key, job in jobs.items()}
    return {by_job[job]: state.lower() for job, state in states.items() if job in by_job}


def status_matrix(study: Study) -> list[list[str]]:
    """Rows of [arm, fold 0 state, fold 1 state, ...] (with repeats: fold 0 repeat 0, fold 0 repeat 1, ...)."""
    queue = queued_jobs(study)
    rows = []
    for arm in study.arms:
        row = [arm.name]
        for training in (t for t in trainings(study) if t.arm.name == arm.name):
            state = training.state()
            if state == "running":
                state = f"running {training.progress_text()}".strip()
            elif state != "done" and training.key in queue:
                state = "queued" if queue[training.key] == "pending" else f"{queue[training.key]} (SLURM)"
            row.append(state)
        rows.append(row)
    return rows


def status_header(study: Study) -> list[str]:
    """The matrix's column titles: arm, then each fold (and repeat)."""
    return ["arm", *[f"fold {f}" + (f" r{r}" if study.repeats > 1 else "") for f in study.folds
                     for r in range(study.repeats)]]


def format_status(study: Study) -> str:
    rows = status_matrix(study)
    head = status_header(study)
    widths = [max(len(str(r[i])) for r in [head, *rows]) + 2 for i in range(len(head))]
    lines = ["".join(str(c).ljust(w) for c, w in zip(head, widths))]
    lines += ["".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
