"""The options a training run was started with, kept in its fold folder so ``--continue`` resumes the same run.

``run_options.json`` holds the schedule (epochs, iterations, validation iterations, checkpoint
interval) as the run used it and the ``--set`` hyper-parameters. A resume takes every option it
is not given from there; an option given with another value is an error naming both values,
unless the user allows the change (``--change``), which is then recorded in the file's history.
Fold folders written before this file existed are read from ``variant_settings.json``.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from ImprovedNNUNetLib.errors import UserError
from ImprovedNNUNetLib.safe_write import write_text_verified

FILE_NAME = "run_options.json"
# option attribute -> (command-line flag, variant_settings.json key)
SCHEDULE = {
    "epochs": ("--epochs", "num_epochs"),
    "iters_per_epoch": ("--iters-per-epoch", "num_iterations_per_epoch"),
    "val_iters_per_epoch": ("--val-iters-per-epoch", "num_val_iterations_per_epoch"),
    "checkpoint_every": ("--checkpoint-every", "checkpoint_every"),
}


def stored_options(fold_folder: Path) -> dict | None:
    """``{"epochs": .., ..., "hyperparameters": {..}}`` of the run in ``fold_folder``, None if unknown."""
    path = Path(fold_folder) / FILE_NAME
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            raise UserError(f"{path} is damaged; restore it, or start the fold again with --overwrite") from None
    settings = Path(fold_folder) / "variant_settings.json"
    if settings.is_file():
        try:
            values = json.loads(settings.read_text())
        except ValueError:
            return None
        return {name: values.get(key) for name, (_, key) in SCHEDULE.items()}
    return None


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def resume_options(options, fold_folder: Path, allow_change: bool = False):
    """``options`` with every value it leaves unset taken from the stored run, and the list of
    ``(option, stored, given)`` changes. UserError on a conflicting value unless ``allow_change``."""
    stored = stored_options(fold_folder)
    if stored is None:
        return options, []
    updates, changes = {}, []
    for name, (flag, _) in SCHEDULE.items():
        given, before = getattr(options, name), stored.get(name)
        if before is None:
            continue
        if given is None:
            updates[name] = before
        elif given != before:
            changes.append((flag, before, given))
    if "hyperparameters" in stored:
        given, before = options.hyperparameters, stored["hyperparameters"] or {}
        if not given:
            updates["hyperparameters"] = dict(before)
        else:
            for key in sorted(set(given) | set(before)):
                if not _same(given.get(key), before.get(key)):
                    changes.append((f"--set {key}", before.get(key, "(variant default)"),
                                    given.get(key, "(variant default)")))
    if changes and not allow_change:
        flag, before, given = changes[0]
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise UserError(f"{flag} {given} differs from the run being resumed ({flag} {before}, recorded in "
                        f"{Path(fold_folder) / FILE_NAME}){more}; leave it out to continue the same run, or add "
                        "--change to change it (the change is recorded)")
    return replace(options, **updates), changes


def write_run_options(fold_folder: Path, trainer, hyperparameters: dict, changes=()) -> Path:
    """Record the run's effective schedule and ``--set`` values; append ``changes`` to the history."""
    path = Path(fold_folder) / FILE_NAME
    history = []
    if path.is_file():
        try:
            history = json.loads(path.read_text()).get("history", [])
        except ValueError:
            history = []
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    if not history:
        history.append({"time": now, "event": "started"})
    if changes:
        history.append({"time": now, "event": "changed on resume",
                        "changes": [{"option": flag, "from": before, "to": given} for flag, before, given in changes]})
    record = {
        "epochs": trainer.num_epochs,
        "iters_per_epoch": trainer.num_iterations_per_epoch,
        "val_iters_per_epoch": trainer.num_val_iterations_per_epoch,
        "checkpoint_every": trainer.save_every,
        "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in hyperparameters.items()},
        "history": history,
    }
    write_text_verified(path, json.dumps(record, indent=2))
    return path
