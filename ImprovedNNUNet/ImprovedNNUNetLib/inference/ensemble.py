"""`ensemble`: the mean of the probability files (``.npz`` + ``.pkl``) of several predictions of the same
cases, as ``nnUNetv2_ensemble`` computes it (float32 sum in the order given, divided by the count), turned
into a segmentation by the model's label rules (argmax, or regions) and written with each case's geometry."""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.inference.npz import check_probability_file, image_of, read_probabilities, read_properties, write_npz


def folder_cases(folders: list[Path]) -> list[str]:
    """The case names every folder has a ``.npz`` for; UserError naming what is missing where."""
    if len(folders) < 2:
        raise UserError("ensembling needs at least two input folders (-i A B ...)")
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder; give folders written by predict --save_probabilities")
        cases = {p.name[:-4] for p in folder.glob("*.npz")}
        if not cases:
            raise UserError(f"{folder} holds no .npz probability files; predict with --save_probabilities "
                            "(or nnUNetv2_predict --save_probabilities) first")
        found.append(cases)
    every = set().union(*found)
    for folder, cases in zip(folders, found):
        missing = sorted(every - cases)
        if missing:
            raise UserError(f"{folder} lacks {missing[0]}.npz ({len(missing)} case(s) missing); every folder must "
                            "hold the same cases")
    return sorted(every)


def model_files(folders: list[Path], dataset_json: Path | None, plans_json: Path | None) -> tuple[dict, dict]:
    """dataset.json and plans.json: given, else those of the first folder (as nnU-Net does)."""
    loaded = []
    for given, name in ((dataset_json, "dataset.json"), (plans_json, "plans.json")):
        path = Path(given) if given else folders[0] / name
        if not path.is_file():
            raise UserError(f"{path} not found; predictions written with --save_probabilities carry dataset.json and "
                            f"plans.json, or pass --{name.split('.')[0]}-json")
        loaded.append(json.loads(path.read_text()))
    return loaded[0], loaded[1]


def merge_case(files: list[Path], output_base: Path, file_ending: str, label_manager, save_npz: bool) -> Path:
    from ImprovedNNUNetLib.core.imageio import write_image
    from ImprovedNNUNetLib.inference.outputs import segmentation_dtype

    properties = read_properties(files[0])
    mean = None
    for path in files:
        probabilities = read_probabilities(path)
        if mean is None:
            mean = probabilities.astype(np.float32)  # a copy, also when already float32
        else:
            if probabilities.shape != mean.shape:
                raise UserError(f"{path} holds probabilities of shape {probabilities.shape}, {files[0]} of "
                                f"{mean.shape}; the folders must be predictions of the same cases and labels")
            mean += probabilities
    mean /= len(files)
    segmentation = np.asarray(label_manager.convert_probabilities_to_segmentation(mean))
    segmentation = segmentation.astype(segmentation_dtype(label_manager))
    target = output_base.with_name(output_base.name + file_ending)
    write_image(image_of(segmentation, properties), target, overwrite=True)
    if save_npz:
        write_npz(output_base, mean, properties)
    return target


def ensemble_folders(folders, output, save_npz: bool = False, jobs: int = 1, overwrite: bool = False,
                     dataset_json=None, plans_json=None) -> list[Path]:
    """Ensemble the cases common to ``folders`` into ``output``; returns the segmentation files written."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folders = [Path(f) for f in folders]
    output = Path(output)
    cases = folder_cases(folders)
    dataset, plans = model_files(folders, dataset_json, plans_json)
    ending = dataset.get("file_ending", ".nii.gz")
    targets = [output / f"{case}{ending}" for case in cases]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} exists ({len(existing)} output file(s) in the way); choose another output "
                        "folder or add --overwrite")
    label_manager = PlansManager(plans).get_label_manager(dataset)
    for folder in folders:  # a cut .npz or an empty .pkl is named before anything is written
        for case in cases:
            check_probability_file(folder / f"{case}.npz")
    from ImprovedNNUNetLib.core.safe_write import write_text_verified

    output.mkdir(parents=True, exist_ok=True)
    write_text_verified(output / "dataset.json", json.dumps(dataset, indent=2))
    write_text_verified(output / "plans.json", json.dumps(plans, indent=2))
    arguments = [([folder / f"{case}.npz" for folder in folders], output / case, ending, label_manager, save_npz)
                 for case in cases]
    if jobs <= 1 or len(cases) == 1:
        return [merge_case(*a) for a in arguments]
    import os

    from ImprovedNNUNetLib.core.workers import end_with_parent

    with ProcessPoolExecutor(min(jobs, len(cases)), initializer=end_with_parent, initargs=(os.getpid(),)) as pool:
        return list(pool.map(merge_case, *zip(*arguments)))
