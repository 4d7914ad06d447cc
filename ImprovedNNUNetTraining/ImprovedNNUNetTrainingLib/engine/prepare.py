"""`prepare`: nnU-Net's fingerprint, integrity check, planning and preprocessing of one raw dataset."""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from ImprovedNNUNetLib.core.dataset_names import DATASET_NAME
from ImprovedNNUNetLib.core.errors import UserError, full_disk_error
from ImprovedNNUNetLib.core.image_integrity import check_all_complete
from ImprovedNNUNetLib.core.imageio import is_image_file
from ImprovedNNUNetLib.core.variants import PLANNER_ALIASES, PLANNERS
from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable, size_worker_pools
from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter, nnunet_prints_to, one_line

DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")


def planner_and_plans(planner: str, plans_name: str | None = None) -> tuple[str, str]:
    """(nnU-Net planner class name, plans identifier) for a planner name or alias; UserError for an unknown one."""
    name = PLANNER_ALIASES.get(planner, planner)
    if name not in PLANNERS:
        raise UserError(f"unknown planner {planner!r}; use one of {', '.join([*PLANNERS, *PLANNER_ALIASES])}")
    if plans_name is not None and not plans_name.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"plans name {plans_name!r} may hold only letters, digits, '_' and '-'; choose another")
    return name, plans_name or PLANNERS[name]


def planner_class(name: str):
    """nnU-Net's planner class of a name of PLANNERS."""
    if name == "ExperimentPlanner":
        from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

        return ExperimentPlanner
    from nnunetv2.experiment_planning.experiment_planners.residual_unets import residual_encoder_unet_planners

    return getattr(residual_encoder_unet_planners, name)


def raw_dataset_folder(dataset: str) -> Path:
    """The raw dataset folder of a path, id or name.

    A path to a ``DatasetNNN_Name`` folder sets ``nnUNet_raw`` (for this process) to its parent.
    """
    path = Path(dataset).expanduser()
    if path.is_dir():
        path = path.resolve()
        if not DATASET_NAME.match(path.name):
            raise UserError(f"{path}: the folder name must look like Dataset001_Name (nnU-Net's rule); rename it")
        os.environ["nnUNet_raw"] = str(path.parent)
        return path
    if os.sep in dataset or dataset.startswith("."):
        raise UserError(f"{dataset}: no such dataset folder; check the path")
    folder = folder_variable("nnUNet_raw") / dataset_name(dataset)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such dataset folder; check the dataset id/name or nnUNet_raw")
    return folder


def check_raw_layout(folder: Path) -> None:
    """UserError unless the folder has nnU-Net's raw layout."""
    for name, kind in (("dataset.json", "file"), ("imagesTr", "folder"), ("labelsTr", "folder")):
        entry = folder / name
        if not (entry.is_file() if kind == "file" else entry.is_dir()):
            raise UserError(f"{folder}: missing {kind} {name}; a raw dataset needs dataset.json, imagesTr/ and "
                            "labelsTr/ (nnU-Net's dataset format)")


def check_raw_files_complete(folder: Path, workers: int) -> int:
    """Refuse truncated images in imagesTr/ and labelsTr/ before nnU-Net reads them (it would read the
    missing voxels as zeros); returns the number of files checked."""
    files = [p for sub in ("imagesTr", "labelsTr") for p in sorted((folder / sub).iterdir()) if is_image_file(p)]
    check_all_complete(files, workers)
    return len(files)


def integrity_details(folder: Path) -> str | None:
    """What nnU-Net's integrity check found, as one line.

    nnU-Net prints the details from its worker processes and raises "check text output above"; the
    same per-case checks run here again with their output captured, so the message names the files."""
    import io
    import json
    from contextlib import redirect_stdout

    from nnunetv2.experiment_planning.verify_dataset_integrity import check_cases, verify_labels
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json
    from nnunetv2.utilities.label_handling.label_handling import LabelManager
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    dataset_json = json.loads((folder / "dataset.json").read_text())
    cases = get_filenames_of_train_images_and_targets(str(folder), dataset_json)
    if not cases:
        return None
    manager = LabelManager(dataset_json["labels"], regions_class_order=dataset_json.get("regions_class_order"))
    expected = list(manager.all_labels) + ([manager.ignore_label] if manager.has_ignore_label else [])
    reader = determine_reader_writer_from_dataset_json(dataset_json, next(iter(cases.values()))["images"][0])
    channels = len(dataset_json.get("channel_names") or dataset_json.get("modality") or {})
    problems = []
    for case in cases.values():
        captured = io.StringIO()
        with redirect_stdout(captured):
            ok = verify_labels(case["label"], reader, expected) and check_cases(case["images"], case["label"],
                                                                                 channels, reader)
        if not ok:
            text = " ".join(line.strip() for line in captured.getvalue().splitlines()
                            if line.strip() and not line.startswith(("Warning", "WARNING")))
            problems.append(text.replace(str(folder) + "/", "").replace("Error: ", ""))
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more case(s) with problems)" if len(problems) > 1 else ""
    return problems[0] + more


@contextmanager
def planner_threads():
    """nnU-Net's planner passes nnUNet_n_proc_DA to torch.set_num_threads, which refuses 0
    (0 is valid for training: no augmentation workers); use 1 while planning."""
    value = os.environ.get("nnUNet_n_proc_DA")
    if value == "0":
        os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        yield
    finally:
        if value == "0":
            os.environ["nnUNet_n_proc_DA"] = value


def prepare_dataset(dataset: str, configurations: Sequence[str] = DEFAULT_CONFIGURATIONS,
                    overwrite: bool = False, reporter: ProgressReporter | None = None,
                    planner: str = "ExperimentPlanner", gpu_memory_target: float | None = None,
                    plans_name: str | None = None) -> Path:
    """Fingerprint (with nnU-Net's integrity check), plan and preprocess a raw dataset.

    ``dataset``: a ``DatasetNNN_Name`` folder, or an id/name inside ``nnUNet_raw``. ``planner``: one of
    nnU-Net's planners (``ExperimentPlanner``, ``nnUNetPlannerResEncM/L/XL``, or ``default``/``ResEncM``/
    ``ResEncL``/``ResEncXL``); ``gpu_memory_target`` (GB) and ``plans_name`` as nnU-Net's
    ``-gpu_memory_target`` and ``-overwrite_plans_name``. Returns the dataset's folder in
    ``nnUNet_preprocessed``. Existing plans of the same name are kept unless ``overwrite`` is set; plans
    of other planners are never touched.
    """
    reporter = reporter or ProgressReporter()
    planner, plans = planner_and_plans(planner, plans_name)
    if gpu_memory_target is not None and not gpu_memory_target > 0:
        raise UserError(f"--gpu-memory-target {gpu_memory_target}: give the GPU memory in GB, e.g. 8")
    raw = raw_dataset_folder(dataset)
    check_raw_layout(raw)
    target = folder_variable("nnUNet_preprocessed") / raw.name
    if (target / f"{plans}.json").exists() and not overwrite:
        raise UserError(f"{target} already has {plans}.json; pass --overwrite to plan and preprocess it again")
    cores = size_worker_pools()
    reporter.emit("planning", message=f"checking that the images of {raw.name} are complete")
    check_raw_files_complete(raw, cores)
    dataset_id = int(DATASET_NAME.match(raw.name).group(1))

    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
        preprocess_dataset,
    )

    reporter.emit("planning", message=f"fingerprint and integrity check of {raw.name}")
    try:
        with nnunet_prints_to(reporter, target):
            extract_fingerprint_dataset(dataset_id, num_processes=cores, check_dataset_integrity=True,
                                        clean=overwrite or not (target / "dataset_fingerprint.json").is_file(),
                                        show_progress_bar=False)
    except (AssertionError, RuntimeError, ValueError, FileNotFoundError, KeyError) as exc:
        details = integrity_details(raw) if "output above" in str(exc) else None
        raise UserError(f"{raw}: nnU-Net's integrity check failed: {details or one_line(exc)}; "
                        "fix the dataset") from exc
    reporter.emit("planning", message=f"planning {raw.name} with {planner} ({plans})")
    with planner_threads(), nnunet_prints_to(reporter, target):
        plan_experiment_dataset(dataset_id, planner_class(planner), gpu_memory_target_in_gb=gpu_memory_target,
                                overwrite_plans_name=plans_name)
    reporter.emit("preprocessing", message=f"preprocessing {', '.join(configurations)}")
    try:
        with nnunet_prints_to(reporter, target):
            preprocess_dataset(dataset_id, plans, list(configurations), [cores] * len(configurations),
                               show_progress_bar=False)
    except Exception as exc:  # noqa: BLE001 - a full disk reaches us as nnU-Net's/blosc2's RuntimeError
        full = full_disk_error(target)
        if full is None and not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            raise
        # half-written preprocessed data would train on missing cases: remove this run's configurations
        # (their data folders) and its plans, so training refuses until prepare ran to the end
        remove_preprocessed(target, plans, configurations)
        raise full or OSError(errno.ENOSPC, "No space left on device", str(target)) from None
    reporter.emit("done", message=f"prepared {raw.name} in {target} (plans {plans})")
    return target


def remove_preprocessed(target: Path, plans: str, configurations) -> None:
    """The data folders of ``configurations`` under ``plans`` and the plans file itself (a prepare that failed
    midway); the fingerprint and other planners' plans stay."""
    import json
    import shutil

    try:
        identifiers = {name: cfg.get("data_identifier", f"{plans}_{name}") for name, cfg in
                       json.loads((target / f"{plans}.json").read_text())["configurations"].items()}
    except (OSError, ValueError, KeyError):
        identifiers = {}
    for configuration in configurations:
        shutil.rmtree(target / identifiers.get(configuration, f"{plans}_{configuration}"), ignore_errors=True)
    (target / f"{plans}.json").unlink(missing_ok=True)
