"""`models export`: a trained model as nnU-Net's model ZIP, with a model card, runnable where users run models.

The ZIP has the layout of ``nnUNetv2_export_model_to_zip`` (``<dataset>/<trainer>__<plans>__<configuration>/``
with dataset.json, plans.json and ``fold_k/checkpoint_final.pth``), so nnU-Net's
``nnUNetv2_install_pretrained_model_from_zip`` and this project's ``models import`` install it. Beside them
``model_card.json``: labels with terminology codes, channels, training data, cross-validation metrics from this
project's evaluator (when the raw labels are at hand), inference time and memory measured on the exporting
machine, software versions and the license given.

``as_stock``: variants whose network is stock nnU-Net's (loss weights, deep-supervision weights, augmentation,
improved, msf: only the training differs) are written under nnU-Net's stock trainer name ``nnUNetTrainer``
after checking that both give the same segmentation, so ``nnUNetv2_predict`` and SlicerNNUNet run them
unchanged. Other trainers (sdm's distance head, msf_deep's network) keep their name; their ZIP carries their
trainer's source and the ``nnUNet_extTrainer`` instructions.
"""
from __future__ import annotations

import json
import platform
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.inference.model_folder import CARD

STOCK_TRAINER = "nnUNetTrainer"
STOCK_NETWORK = ("nnUNetTrainer", "nnUNetTrainerLoss", "nnUNetTrainerDeepSup", "nnUNetTrainerAugment",
                 "nnUNetTrainerImproved", "nnUNetTrainerMSF")
FOLD_FILES = ("progress.png", "debug.json", "validation/summary.json", "variant_settings.json", "compute.json")


def _trainer_of(folder) -> tuple[str, str, str]:
    """(trainer, plans, configuration) from the model folder's name ``Trainer__Plans__configuration``."""
    parts = folder.path.name.split("__")
    if len(parts) != 3:
        raise UserError(f"{folder.path.name}: not an nnU-Net model folder name (Trainer__Plans__configuration); "
                        "export the folder nnU-Net trained into")
    return parts[0], parts[1], parts[2]


def _checkpoints(folder, folds) -> dict:
    return {fold: folder.path / (f"fold_{fold}") / folder.checkpoint_name for fold in folds}


def sample_case(folder, raw: Path | None):
    """One input case for timing and for the stock check: the first training case of the raw dataset, else a
    synthetic volume of the plans' median shape."""
    from ImprovedNNUNetLib.core.imageio import Image, read_image

    channels = len(folder.channel_names)
    ending = folder.dataset_json.get("file_ending", ".nii.gz")
    if raw is not None and (raw / "imagesTr").is_dir():
        firsts = sorted((raw / "imagesTr").glob(f"*_0000{ending}"))
        if firsts:
            base = firsts[0].name[: -len(f"_0000{ending}")]
            return [read_image(raw / "imagesTr" / f"{base}_{k:04d}{ending}") for k in range(channels)], base
    shape = folder.plans.get("original_median_shape_after_transp", [32, 64, 64])
    spacing = folder.plans.get("original_median_spacing_after_transp", [1.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    array = rng.normal(size=[int(s) for s in shape]).astype(np.float32)
    return [Image(array, tuple(float(s) for s in reversed(spacing)))] * channels, "synthetic"


def measure_inference(model_path: Path, folds, case) -> dict:
    """Seconds and peak memory of one prediction of ``case`` with all ``folds`` on this machine."""
    import resource

    import torch

    from ImprovedNNUNetLib.inference import load_model

    started = time.perf_counter()
    model = load_model(model_path, folds=list(folds), device="auto")
    loaded = time.perf_counter()
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = model.predict(case)
    done = time.perf_counter()
    gpu = model.device.type == "cuda"
    peak = (torch.cuda.max_memory_allocated() / 2**20 if gpu else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10)
    return {"device": str(model.device), "load_s": round(loaded - started, 3), "predict_s": round(done - loaded, 3),
            "peak_memory_mb": round(peak, 1), "memory": "GPU peak allocated" if gpu else "CPU RSS (process peak)",
            "case_shape": list(result.segmentation.array.shape), "tta": "device default"}, result


def cross_validation(folder, folds, raw: Path | None) -> dict:
    """Per fold and label mean Dice, HD95 and NSD of the validation predictions against the raw labels (this
    project's evaluator); otherwise nnU-Net's own validation Dice where its summary.json exists."""
    from ImprovedNNUNetLib.evaluation.aggregate import aggregate_label
    from ImprovedNNUNetLib.evaluation.cases import CasePair
    from ImprovedNNUNetLib.evaluation.labels import labels_from_dataset_json
    from ImprovedNNUNetLib.evaluation.runner import evaluate_pairs

    ending = folder.dataset_json.get("file_ending", ".nii.gz")
    out = {}
    for fold in folds:
        validation = folder.path / f"fold_{fold}" / "validation"
        predictions = sorted(validation.glob(f"*{ending}")) if validation.is_dir() else []
        labels_dir = raw / "labelsTr" if raw is not None else None
        pairs = [CasePair(p.name[: -len(ending)], p, labels_dir / p.name) for p in predictions
                 if labels_dir is not None and (labels_dir / p.name).is_file()]
        if pairs:
            labels = labels_from_dataset_json(raw / "dataset.json")
            cases = [c.metrics for c in evaluate_pairs(pairs, labels, 1.0, jobs=1)]
            out[str(fold)] = {"source": "improved-nnunet evaluate (NSD at 1 mm)", "cases": len(cases), "labels": {
                name: {key: _number(aggregate_label(cases, value).stats[key].mean) for key in ("Dice", "HD95", "NSD")}
                for name, value in labels.items()}}
        elif (validation / "summary.json").is_file():
            summary = json.loads((validation / "summary.json").read_text())
            out[str(fold)] = {"source": "nnU-Net's validation summary.json",
                              "mean_foreground_dice": summary.get("foreground_mean", {}).get("Dice")}
    return out


def _number(value):
    return None if value is None or not np.isfinite(value) else float(value)


def versions() -> dict:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in ("improved-nnunet", "nnunetv2", "torch", "numpy", "SimpleITK"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def model_card(folder, trainer: str, exported_trainer: str, plans: str, configuration: str, folds, license_text: str,
               inference: dict | None, cv: dict) -> dict:
    from ImprovedNNUNetLib.evaluation.terminology import terminology_codes

    labels = [{"name": name, "value": value, "terminology": terminology_codes(name) if not isinstance(value, list)
               else None} for name, value in folder.dataset_json.get("labels", {}).items() if name != "background"]
    settings = folder.path / f"fold_{folds[0]}" / "variant_settings.json"
    return {
        "format": "improved-nnunet model card 1",
        "name": folder.path.parent.name, "trainer": exported_trainer, "trained_with": trainer,
        "variant_settings": json.loads(settings.read_text()) if settings.is_file() else None,
        "plans": plans, "configuration": configuration, "folds": [str(f) for f in folds],
        "labels": labels,
        "channels": [{"index": int(k), "name": v} for k, v in folder.dataset_json.get("channel_names", {}).items()],
        "training_data": {"dataset": folder.path.parent.name, "cases": folder.dataset_json.get("numTraining"),
                          "median_spacing": folder.plans.get("original_median_spacing_after_transp"),
                          "median_shape": folder.plans.get("original_median_shape_after_transp")},
        "cross_validation": cv, "inference": inference, "software": versions(), "license": license_text,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def stock_copy(folder, folds, target: Path) -> Path:
    """The model under nnU-Net's stock trainer name in ``target`` (checkpoints' trainer_name rewritten)."""
    import torch

    _, plans, configuration = _trainer_of(folder)
    out = target / folder.path.parent.name / f"{STOCK_TRAINER}__{plans}__{configuration}"
    out.mkdir(parents=True)
    for name in ("dataset.json", "plans.json", "dataset_fingerprint.json"):
        if (folder.path / name).is_file():
            (out / name).write_bytes((folder.path / name).read_bytes())
    for fold, checkpoint in _checkpoints(folder, folds).items():
        data = torch.load(checkpoint, map_location="cpu", weights_only=False)
        data["trainer_name"] = STOCK_TRAINER
        (out / f"fold_{fold}").mkdir()
        torch.save(data, out / f"fold_{fold}" / folder.checkpoint_name)
    return out


def trainer_sources(trainer: str) -> dict[str, str]:
    """{file name: source} of the module defining ``trainer`` and the project modules it needs (sdm, msf_deep)."""
    import importlib
    import inspect

    from ImprovedNNUNetLib.core.variants import TRAINER_MODULES, TRAINER_NAMES

    variant = next((v for v, name in TRAINER_NAMES.items() if name == trainer), None)
    if variant is None:
        return {}
    names = [TRAINER_MODULES[variant]]
    if variant == "sdm":
        names += [n.replace("sdm", s) for n in names for s in ("signed_distance", "signed_distance_torch")]
    if variant == "msf_deep":
        names.append(TRAINER_MODULES["msf"])
    return {name.rsplit(".", 1)[1] + ".py": inspect.getsource(importlib.import_module(name)) for name in names}


EXT_TRAINER_README = """# Trainer {trainer}

This model was trained with {trainer}, a trainer of ImprovedNNUNet that nnU-Net does not ship. The files here
are its source, for reference; they import the ImprovedNNUNet package, so install it where the model runs:

    pip install improved-nnunet
    export nnUNet_extTrainer=$(python -c "import ImprovedNNUNetTrainingLib.trainers as t, os; print(os.path.dirname(t.__file__))")
    nnUNetv2_predict -i IMAGES -o OUT -d {dataset} -c {configuration} -p {plans} -tr {trainer}

`improved-nnunet predict -m MODEL_FOLDER` finds the trainer without the variable.
"""


def export_model(model: str | Path, out: str | Path, folds=None, as_stock: bool = False,
                 license_text: str = "unspecified", overwrite: bool = False, raw: str | Path | None = None,
                 measure: bool = True) -> tuple[Path, dict]:
    """Write ``out`` (a .zip) and return it with the model card (module docstring)."""
    from ImprovedNNUNetLib.inference.model_folder import open_model_folder, select_folds

    folder = open_model_folder(model)
    folds = select_folds(folder, folds)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise UserError(f"{out}: give the ZIP file to write, e.g. {out.with_suffix('.zip').name}")
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists; choose another name or pass --overwrite")
    trainer, plans, configuration = _trainer_of(folder)
    raw_dataset = Path(raw) if raw else _raw_of(folder)
    with tempfile.TemporaryDirectory(prefix="improved-nnunet-export-") as scratch:
        source, exported = folder.path, trainer
        case, _case_id = sample_case(folder, raw_dataset)
        inference, ours = measure_inference(folder.path, folds, case) if measure or as_stock else (None, None)
        if as_stock and trainer != STOCK_TRAINER:
            if trainer not in STOCK_NETWORK:
                raise UserError(f"--as-stock: {trainer} changes the network (not only the training), so stock "
                                f"nnU-Net cannot run it under {STOCK_TRAINER}; export without --as-stock (the ZIP "
                                "then carries the trainer and the nnUNet_extTrainer instructions)")
            source, exported = stock_copy(folder, folds, Path(scratch)), STOCK_TRAINER
            _, stock = measure_inference(source, folds, case)
            if not np.array_equal(stock.segmentation.array, ours.segmentation.array):
                raise UserError(f"--as-stock: the model under {STOCK_TRAINER} segments differently from {trainer}; "
                                "export without --as-stock")
        card = model_card(folder, trainer, exported, plans, configuration, folds, license_text, inference,
                          cross_validation(folder, folds, raw_dataset))
        _write_zip(out, folder, source, exported, plans, configuration, folds, card)
    return out, card


def _raw_of(folder) -> Path | None:
    import os

    raw = os.environ.get("nnUNet_raw")
    candidate = Path(raw) / folder.path.parent.name if raw else None
    return candidate if candidate is not None and candidate.is_dir() else None


def _write_zip(out: Path, folder, source: Path, exported: str, plans: str, configuration: str, folds, card) -> None:
    from ImprovedNNUNetLib.core.safe_write import write_verified

    root = f"{folder.path.parent.name}/{exported}__{plans}__{configuration}"

    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in ("dataset.json", "plans.json", "dataset_fingerprint.json"):
                if (source / name).is_file():
                    archive.write(source / name, f"{root}/{name}")
            for fold in folds:
                archive.write(source / f"fold_{fold}" / folder.checkpoint_name,
                              f"{root}/fold_{fold}/{folder.checkpoint_name}")
                for extra in FOLD_FILES:
                    if (folder.path / f"fold_{fold}" / extra).is_file():
                        archive.write(folder.path / f"fold_{fold}" / extra, f"{root}/fold_{fold}/{extra}")
            archive.writestr(f"{root}/{CARD}", json.dumps(card, indent=1) + "\n")
            sources = trainer_sources(exported) if exported != STOCK_TRAINER else {}
            for name, text in sources.items():
                archive.writestr(f"{root}/trainer/{name}", text)
            if sources:
                archive.writestr(f"{root}/trainer/README.md", EXT_TRAINER_README.format(
                    trainer=exported, dataset=folder.path.parent.name, configuration=configuration, plans=plans))

    out.parent.mkdir(parents=True, exist_ok=True)
    write_verified(out, write)
