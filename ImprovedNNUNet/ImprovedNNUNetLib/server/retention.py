"""How long the server keeps what users send: uploads, and the folders of ended jobs (their inputs, outputs and
log), are removed once older than the retention its operator chose (``serve --keep-days N``, checked when the
server starts and every hour, or once with ``serve purge --older-than-days N``). Nothing is removed unless the
operator chose a retention.

Kept whatever their age: job records (who ran what, when: the job then says its files were removed), jobs still
queued or running, trainings that can still be resumed (cancelled, interrupted, failed), the datasets in
``nnUNet_raw``, trained models in ``nnUNet_results`` and installed models.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field

from ImprovedNNUNetLib.core.errors import UserError

DAY_S = 86400.0
PURGED_PREFIX = "its files were removed"
PURGED = PURGED_PREFIX + " after {days:g} days (the server's retention)"
RESUMABLE = ("cancelled", "interrupted", "failed")  # a training in these states can still be resumed


def checked_days(days) -> float:
    try:
        days = float(days)
    except (TypeError, ValueError):
        raise UserError(f"retention {days!r}: give a number of days") from None
    if not days > 0 or days == float("inf"):
        raise UserError(f"retention {days:g} days: give a positive number of days")
    return days


@dataclass
class Purged:
    uploads: list = field(default_factory=list)  # upload ids
    jobs: list = field(default_factory=list)  # job ids whose folders were removed

    def text(self, dry_run: bool = False) -> str:
        verb = "would remove" if dry_run else "removed"
        return f"{verb} {len(self.uploads)} upload(s) and the files of {len(self.jobs)} ended job(s)"


def was_purged(job) -> bool:
    """Whether the retention removed this job's files (its record says so)."""
    return job.message.startswith(PURGED_PREFIX)


def expired_jobs(store, cutoff: float) -> list:
    """Ended jobs older than ``cutoff`` whose files may go (not resumable trainings, not already purged)."""
    return [job for job in store.ended_before(cutoff)
            if not (job.kind == "train" and job.state in RESUMABLE) and not was_purged(job)]


def purge(store, folder, days, now: float | None = None, dry_run: bool = False) -> Purged:
    """Remove uploads and ended jobs' folders older than ``days`` days (see the module's text for what stays)."""
    days = checked_days(days)
    cutoff = (time.time() if now is None else now) - days * DAY_S
    purged = Purged(uploads=store.uploads_before(cutoff), jobs=[job.id for job in expired_jobs(store, cutoff)])
    if dry_run:
        return purged
    for upload_id in purged.uploads:
        shutil.rmtree(folder.inside(folder.uploads / upload_id), ignore_errors=True)
        store.delete_upload(upload_id)  # after the files: a crash in between leaves a record without files
    for job_id in purged.jobs:
        shutil.rmtree(folder.inside(folder.job_folder(job_id)), ignore_errors=True)
        store.update(job_id, message=PURGED.format(days=days))
    return purged
