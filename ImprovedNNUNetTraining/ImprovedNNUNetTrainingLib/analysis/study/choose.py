"""`study find-best`: nnU-Net's choice of the best model or pair of models, over a study's arms.

Each arm trains in its own results root, and two arms may share a trainer class, so nnU-Net's
``find_best_configuration`` (which looks for ``<nnUNet_results>/<dataset>/<trainer>__<plans>__<config>``)
is pointed at ``<study>/find_best/``, where each arm's model folder appears as a symbolic link named
``<arm>__<plans>__<config>`` (the arm's own plans and configuration; a study with repeats compares repeat 0).
nnU-Net writes its merged cross-validation into the arms' folders and its
ensembles, postprocessing and ``inference_information.json`` under ``find_best/``.
"""
from __future__ import annotations

import os
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.analysis.find_best import candidate_models, run_nnunet_choice
from ImprovedNNUNetTrainingLib.engine.environment import results_root


def link_arms(study) -> dict:
    """``{arm name: its model folder}``, each linked into ``<study>/find_best/<dataset>/``."""
    root = study.folder / "find_best" / study.dataset
    root.mkdir(parents=True, exist_ok=True)
    folders = {}
    for arm in study.arms:
        if "__" in arm.name:
            raise UserError(f"arm {arm.name!r}: nnU-Net's model names split at '__'; rename the arm to compare it")
        target = study.fold_folder(arm, study.folds[0]).parent
        link = root / f"{arm.name}__{study.plans_of(arm)}__{study.configuration_of(arm)}"
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == target:
                folders[arm.name] = target
                continue
            if not link.is_symlink():
                raise UserError(f"{link} exists and is not this study's link; move it away")
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
        folders[arm.name] = target
    return folders


def study_find_best(study, ensembling: bool = True, jobs: int = 1) -> dict:
    """nnU-Net's result dict for the study's arms, plus ``"model_folders"`` (arm -> model folder)."""
    if any(str(fold) == "all" for fold in study.folds):
        raise UserError("find-best compares cross-validation folds; this study trains fold 'all'")
    folders = link_arms(study)
    npz_fix = (f"run `improved-nnunet study run --file {study.folder / 'study.json'} --npz` (finished folds are "
               "validated again, not retrained)")  # study.folder depends on nnUNet_results: before it changes
    with results_root(study.folder / "find_best"):
        plans = list(dict.fromkeys(study.plans_of(arm) for arm in study.arms))  # arms may bring their own
        configurations = list(dict.fromkeys(study.configuration_of(arm) for arm in study.arms))
        models = candidate_models(study.dataset, [arm.name for arm in study.arms], plans, configurations, study.folds,
                                  ensembling, npz_fix=npz_fix)
        result = run_nnunet_choice(study.dataset, models, tuple(int(f) for f in study.folds), ensembling, jobs)
    result["model_folders"] = folders
    return result
