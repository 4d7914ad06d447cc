"""Experiment tracking with MLflow, optional: on only when ``MLFLOW_TRACKING_URI`` is set.

Each training is one MLflow run: its parameters when it starts (dataset, variant or trainer, plans,
configuration, fold, seed, schedule, ``--set`` values, the checkpoint it is fine-tuned from), every finished
epoch's losses, pseudo Dice, learning rate and time (step = epoch), and when it ends nnU-Net's validation Dice
(mean and per label) and the compute record (wall time, GPU-hours, peak memory, parameters). A resumed
training goes on logging into the same run (its id is kept in the fold folder's ``mlflow_run.json``); a
cancel ends the run KILLED, an error FAILED.

A study is one run too (``mlflow_run.json`` in the study folder), and its trainings are nested under it:
the study passes its run id to each training's process in ``IMPROVED_NNUNET_MLFLOW_PARENT``, which becomes
MLflow's ``mlflow.parentRunId`` tag. The experiment is ``MLFLOW_EXPERIMENT_NAME`` when set, else the dataset.

Only MLflow's client is used (``MlflowClient``: no active-run state in the process), so any store MLflow
speaks to works: a tracking server, a database, or a local file store (MLflow 3 asks for
``MLFLOW_ALLOW_FILE_STORE=true`` with the latter).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

TRACKING_VARIABLE = "MLFLOW_TRACKING_URI"
PARENT_VARIABLE = "IMPROVED_NNUNET_MLFLOW_PARENT"
RUN_FILE = "mlflow_run.json"
EPOCH_METRICS = ("train_loss", "val_loss", "pseudo_dice", "lr", "epoch_time_s")


def tracking_enabled() -> bool:
    return bool(os.environ.get(TRACKING_VARIABLE, "").strip())


def client():
    """MLflow's client for the tracking URI; one line with the fix when mlflow is missing."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError(f"{TRACKING_VARIABLE} is set, but MLflow is not installed: pip install "
                        f"'improved-nnunet[tracking]' (or mlflow-skinny), or unset {TRACKING_VARIABLE} to train without "
                        "tracking") from None
    return MlflowClient()


def experiment_id(mlflow, dataset: str) -> str:
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or dataset
    found = mlflow.get_experiment_by_name(name)
    return found.experiment_id if found is not None else mlflow.create_experiment(name)


def stored_run_id(folder: Path) -> str | None:
    path = Path(folder) / RUN_FILE
    try:
        return json.loads(path.read_text())["run_id"] if path.is_file() else None
    except (ValueError, KeyError, OSError):
        return None


def open_run(mlflow, folder: Path, dataset: str, run_name: str, parent: str | None = None) -> str:
    """The run recorded in ``folder`` (reopened), or a new one recorded there."""
    from ImprovedNNUNetLib.core.safe_write import write_text_verified

    run_id = stored_run_id(folder)
    if run_id is not None:
        try:
            mlflow.update_run(run_id, status="RUNNING")
            return run_id
        except Exception:  # noqa: BLE001 - a run deleted from the store, or another store: start a new one
            pass
    tags = {"mlflow.parentRunId": parent} if parent else {}
    run = mlflow.create_run(experiment_id(mlflow, dataset), run_name=run_name, tags=tags)
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_text_verified(Path(folder) / RUN_FILE, json.dumps({"run_id": run.info.run_id,
                                                             "tracking_uri": os.environ[TRACKING_VARIABLE]}))
    return run.info.run_id


def log_params(mlflow, run_id: str, params: dict) -> None:
    """Parameters once: a resumed run logs only those not logged before (MLflow refuses to change a value)."""
    from mlflow.entities import Param

    logged = mlflow.get_run(run_id).data.params
    new = [Param(key, str(value)[:6000]) for key, value in params.items() if value is not None and key not in logged]
    if new:
        mlflow.log_batch(run_id, params=new)


def log_metrics(mlflow, run_id: str, values: dict, step: int = 0) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, step) for key, value in values.items() if value is not None]
    if metrics:
        mlflow.log_batch(run_id, metrics=metrics)


def parent_run_id(study_folder: Path) -> str | None:
    """The study's run id, for its trainings' processes (None when tracking is off or the study has none)."""
    return stored_run_id(study_folder) if tracking_enabled() else None


def start_study_run(study) -> str | None:
    """Open (or reopen) the study's run and log its design; None when tracking is off."""
    if not tracking_enabled():
        return None
    mlflow = client()
    run_id = open_run(mlflow, study.folder, study.dataset, f"study {study.name}")
    log_params(mlflow, run_id, {"dataset": study.dataset, "arms": json.dumps([a.record() | {"name": a.name}
                                                                              for a in study.arms]),
                                "folds": ",".join(map(str, study.folds)), "repeats": study.repeats,
                                "seeds": ",".join(map(str, study.seeds)), "epochs": study.epochs,
                                "configuration": study.configuration, "plans": study.plans})
    return run_id


def end_study_run(study, finished: bool) -> None:
    run_id = parent_run_id(study.folder)
    if run_id is not None:
        client().set_terminated(run_id, status="FINISHED" if finished else "KILLED")


class TrainingTracker:
    """A progress-event listener that logs one training to MLflow (see the module text)."""

    def __init__(self, folder: Path, options, trainer):
        self.folder = Path(folder)
        self.mlflow = client()
        dataset = Path(trainer.preprocessed_dataset_folder_base).name
        name = f"{options.variant} fold {options.fold}" + (f" seed {options.seed}" if options.seed is not None else "")
        self.run_id = open_run(self.mlflow, self.folder, dataset, name, os.environ.get(PARENT_VARIABLE) or None)
        log_params(self.mlflow, self.run_id, {
            "dataset": dataset, "variant": options.variant,
            "trainer": type(trainer).__name__, "plans": options.plans, "configuration": options.configuration,
            "fold": options.fold, "seed": options.seed, "epochs": trainer.num_epochs,
            "iters_per_epoch": trainer.num_iterations_per_epoch, "pretrained_weights": options.pretrained_weights,
            **{f"set.{k}": v for k, v in options.hyperparameters.items()}})

    def __call__(self, event: dict) -> None:
        stage = event["stage"]
        if stage == "training" and event.get("epoch_time_s") is not None and event.get("epoch") is not None:
            log_metrics(self.mlflow, self.run_id, {k: event.get(k) for k in EPOCH_METRICS}, step=event["epoch"])
        elif stage == "done":
            log_metrics(self.mlflow, self.run_id, self.final_scores(), step=event.get("epoch") or 0)
            self.mlflow.set_terminated(self.run_id, status="FINISHED")
        elif stage in ("cancelled", "error"):
            self.mlflow.set_terminated(self.run_id, status="KILLED" if stage == "cancelled" else "FAILED")

    def final_scores(self) -> dict:
        """nnU-Net's validation Dice (foreground mean and per label) and the compute record's numbers."""
        scores = {}
        summary = self.folder / "validation" / "summary.json"
        if summary.is_file():
            data = json.loads(summary.read_text())
            scores["validation_dice"] = (data.get("foreground_mean") or {}).get("Dice")
            for label, values in (data.get("mean") or {}).items():
                scores[f"validation_dice_label_{label}"] = values.get("Dice")
        compute = self.folder / "compute.json"
        if compute.is_file():
            record = json.loads(compute.read_text())
            scores.update({key: record.get(key) for key in ("wall_s", "gpu_hours", "peak_memory_mb", "mean_epoch_s",
                                                            "parameters")})
        return {k: v for k, v in scores.items() if isinstance(v, (int, float)) and v == v}


def follow_in_mlflow(reporter, folder: Path, options, trainer) -> None:
    """With ``MLFLOW_TRACKING_URI`` set, a training's events also go to MLflow through a :class:`TrainingTracker`."""
    if not tracking_enabled():
        return
    client()  # MLflow missing: one line with the fix, before anything trains
    try:
        reporter.listeners.append(TrainingTracker(folder, options, trainer))
    except Exception as exc:  # noqa: BLE001 - an unreachable or refusing store must not stop the training
        import sys

        print(f"note: MLflow tracking is off for this training ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''}); the training goes on", file=sys.stderr, flush=True)
