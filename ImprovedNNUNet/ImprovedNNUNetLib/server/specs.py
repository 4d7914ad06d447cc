"""What a client may ask of the server, checked: job settings of each kind (segment, train, evaluate, study),
the uploads and jobs a key owns, and a raw dataset from an uploaded ZIP. Every check fails with an HTTP status
and a one-line reason; client names pass :func:`~.files.safe_name` before they touch a path."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.server.files import safe_name

if TYPE_CHECKING:
    from ImprovedNNUNetLib.server.app import Server

INPUT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def add_raw_dataset(archive: Path, raw: Path) -> str:
    """Extract a ZIP holding one raw dataset folder into ``raw``; returns the dataset's name. The archive is
    extracted beside its final place first, so a failure leaves no half dataset."""
    import tempfile

    from ImprovedNNUNetLib.core.dataset_names import is_dataset_name
    from ImprovedNNUNetLib.inference.models.safe_zip import safe_extract

    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw, prefix=".upload-") as scratch:
        safe_extract(archive, scratch)
        entries = [p for p in Path(scratch).iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir() or not is_dataset_name(entries[0].name):
            raise UserError("the ZIP must hold one folder named like Dataset001_Name (the raw dataset)")
        name = safe_name(entries[0].name, "dataset")
        if not (entries[0] / "dataset.json").is_file():
            raise UserError(f"{name} has no dataset.json; zip the whole raw dataset folder")
        target = raw / name
        same_id = sorted(p.name for p in raw.glob(name.split("_", 1)[0] + "_*"))
        if target.exists() or same_id:
            raise UserError(f"{', '.join(same_id) or name} is already on the server; give the new dataset another id")
        entries[0].rename(target)
    return name


def fail(status: int, message: str):
    raise HTTPException(status_code=status, detail=message)


def own_job(state: Server, job_id: int, key):
    job = state.store.job(job_id)
    if job is None or (job.owner != key.name and not key.admin):
        fail(404, f"job {job_id}: no such job of this key")
    return job


def own_upload(state: Server, upload_id: str, key) -> Path:
    owner = state.store.upload_owner(upload_id)
    if owner is None or (owner != key.name and not key.admin):
        fail(404, f"upload {upload_id!r}: no such upload of this key")
    return state.files.upload(upload_id)


def segment_model(state: Server, body: dict, key) -> tuple[str, str]:
    """(name, folder) of the model a segmentation uses: one installed on the server (``model``), or the model
    a finished training job of this key made (``training_job``)."""
    from ImprovedNNUNetLib.inference.models import resolve_model

    if body.get("training_job") is not None:
        training = own_job(state, int(body["training_job"]), key)
        if training.kind != "train" or training.state != "done":
            fail(409, f"job {training.id} is a {training.kind} job that is {training.state}; segment with a "
                      "finished training")
        return f"job {training.id}", str(state.scheduler.training_request(training.spec).model_folder())
    name = safe_name(str(body.get("model", "")), "model name")
    return name, str(resolve_model(name))


def segment_spec(state: Server, body: dict, key) -> dict:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        fail(422, "'inputs': the upload ids of the case's channel images, in channel order")
    for upload_id in inputs:
        if not own_upload(state, upload_id, key).name.endswith(INPUT_SUFFIXES):
            fail(422, "give NIfTI (.nii.gz, .nii), NRRD or MetaImage (.mha) images")
    name, folder = segment_model(state, body, key)
    from ImprovedNNUNetLib.inference.model_folder import open_model_folder

    labels = open_model_folder(folder).labels  # checked here: a folder that is no model is refused now
    folds = body.get("folds")
    if folds is not None and not (isinstance(folds, list) and all(str(f).isdigit() or f == "all" for f in folds)):
        fail(422, "'folds': a list such as [0, 1] or ['all']")
    return {"model": name, "_model_path": folder, "labels": labels, "inputs": inputs, "folds": folds,
            "tta": body.get("tta"), "sdm": bool(body.get("sdm")), "probabilities": bool(body.get("probabilities")),
            "uncertainty": bool(body.get("uncertainty"))}


ARM = re.compile(r"[A-Za-z0-9_]+(=[A-Za-z0-9_]+(:[A-Za-z0-9_.,=\[\]-]+)?)?")  # matched whole (fullmatch)
STUDY_SETTINGS = {"dataset", "arms", "name", "folds", "epochs", "iters_per_epoch", "val_iters_per_epoch",
                  "configuration", "plans", "executor", "repeats"}


def study_spec(body: dict) -> dict:
    """A study (``study run``): arms as on the command line (``NAME=VARIANT[:K=V,...]``), the schedule, the
    executor (``local`` on this job's slot, or ``slurm`` through submitit)."""
    unknown = sorted(set(body) - STUDY_SETTINGS)
    if unknown:
        fail(422, f"unknown study settings: {', '.join(unknown)}")
    safe_name(str(body.get("dataset", "")), "dataset")
    arms = body.get("arms")
    if not isinstance(arms, list) or not arms or not all(isinstance(a, str) and ARM.fullmatch(a) for a in arms):
        fail(422, "'arms': a list such as ['baseline', 'improved', 'msf_d5=msf:msf_dilation_radius=5']")
    name = safe_name(str(body.get("name") or "-vs-".join(a.split("=")[0] for a in arms)), "study name")
    if body.get("executor", "local") not in ("local", "slurm"):
        fail(422, "'executor': local or slurm")
    for option in ("epochs", "iters_per_epoch", "val_iters_per_epoch", "repeats"):
        if body.get(option) is not None and not (isinstance(body[option], int) and body[option] > 0):
            fail(422, f"'{option}': a positive whole number")
    for option in ("folds", "configuration", "plans"):
        if body.get(option) is not None and not re.fullmatch(r"[A-Za-z0-9_,]+", str(body[option])):
            fail(422, f"'{option}': letters, digits, '_' and ','")
    return {**body, "name": name}


EVALUATE_SETTINGS = {"kind", "prediction", "reference", "labels", "tau", "profile", "metrics", "instances",
                     "connectivity", "match_iou", "size_bins"}


def _number(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _evaluate_labels(labels):
    """{name: value} or, for a region, {name: [values]} (a dataset.json's labels); names stay JSON content."""
    def value_ok(v):
        if isinstance(v, list):
            return bool(v) and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 65536 for x in v)
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 65536

    if labels is not None and not (isinstance(labels, dict) and all(isinstance(k, str) and value_ok(v)
                                                                   for k, v in labels.items())):
        fail(422, "'labels': {name: value} or {name: [values]} for a region (a dataset.json's labels)")
    return labels


def _evaluate_tau(tau):
    """One tolerance in mm, or {label value: mm} with an optional "default" for the other labels (written
    ``1=2.0,2=1.0,0.5`` for the command)."""
    if tau is None:
        return None
    if _number(tau, 0, 100):
        return float(tau)
    if isinstance(tau, dict) and tau and all((str(k).isdigit() or k == "default") and _number(v, 0, 100)
                                             for k, v in tau.items()):
        return {k if k == "default" else str(int(k)): float(v) for k, v in tau.items()}
    fail(422, "'tau': the NSD tolerance in mm (0 to 100), or {label value: mm} (\"default\": the others)")


def evaluate_spec(state: Server, body: dict, key) -> dict:
    """A prediction and a reference (uploads of this key) and what evaluate takes on the command line:
    ``labels`` (regions too), ``tau`` (one or per label), ``profile``, ``metrics`` (groups), ``instances`` and
    its ``connectivity``, ``match_iou``, ``size_bins`` (ml). Each setting is checked here; the job's command
    gets them as ``--option=value``."""
    from ImprovedNNUNetLib.evaluation.options import GROUPS, PROFILES

    unknown = sorted(set(body) - EVALUATE_SETTINGS)
    if unknown:
        fail(422, f"unknown evaluation settings: {', '.join(unknown)}")
    for side in ("prediction", "reference"):
        if not own_upload(state, str(body.get(side, "")), key).name.endswith(INPUT_SUFFIXES + (".seg.nrrd",)):
            fail(422, f"'{side}': an uploaded image (.nii.gz, .nii, .nrrd, .seg.nrrd, .mha)")
    profile, metrics = body.get("profile"), body.get("metrics")
    if profile is not None and profile not in PROFILES:
        fail(422, f"'profile': one of {', '.join(PROFILES)}")
    if metrics is not None and not (isinstance(metrics, list) and metrics and all(m in GROUPS for m in metrics)):
        fail(422, f"'metrics': a list of metric groups among {', '.join(GROUPS)}")
    connectivity, match_iou, bins = body.get("connectivity"), body.get("match_iou"), body.get("size_bins")
    if connectivity is not None and not (type(connectivity) is int and connectivity in (4, 6, 8, 18, 26)):
        fail(422, "'connectivity': 6, 18 or 26 (3-D), 4 or 8 (2-D)")
    if match_iou is not None and not (_number(match_iou, 0, 1) and match_iou > 0):
        fail(422, "'match_iou': an IoU above 0 and at most 1")
    if bins is not None and not (isinstance(bins, list) and bins and all(_number(b, 0, 1e6) and b > 0 for b in bins)
                                 and bins == sorted(set(bins))):
        fail(422, "'size_bins': increasing positive volumes in ml, e.g. [0.1, 1, 10]")
    return {"prediction": body["prediction"], "reference": body["reference"],
            "labels": _evaluate_labels(body.get("labels")), "tau": _evaluate_tau(body.get("tau")),
            "profile": profile, "metrics": metrics, "instances": bool(body.get("instances")),
            "connectivity": connectivity, "match_iou": match_iou, "size_bins": bins}


TRAIN_SETTINGS = {"dataset", "variant", "configuration", "folds", "epochs", "iterations_per_epoch",
                  "validation_iterations_per_epoch", "hyperparameters", "overwrite", "planner"}


def train_spec(state: Server, body: dict) -> dict:
    safe_name(str(body.get("dataset", "")), "dataset")
    unknown = sorted(set(body) - TRAIN_SETTINGS)
    if unknown:
        fail(422, f"unknown training settings: {', '.join(unknown)}")
    request = state.scheduler.training_request(body)
    request.check()  # the Training panel's own checks: variant, planner, folds, schedule, the dataset's name
    request.model_folder()
    return dict(body)


def link_inputs(state: Server, job_id: int, inputs: dict[str, str], key) -> None:
    """Uploads into the job's folder under the names the job's command reads (``{stem: upload id}``: a
    segmentation's ``case_0000``..., an evaluation's ``prediction`` and ``reference``), suffixes kept."""
    folder = state.files.job_folder(job_id) / "inputs"
    folder.mkdir(parents=True)
    for stem, upload_id in inputs.items():
        source = own_upload(state, upload_id, key)
        suffix = next(s for s in (".seg.nrrd", *INPUT_SUFFIXES) if source.name.endswith(s))
        try:
            (folder / f"{stem}{suffix}").hardlink_to(source)
        except OSError:  # another file system
            shutil.copyfile(source, folder / f"{stem}{suffix}")


