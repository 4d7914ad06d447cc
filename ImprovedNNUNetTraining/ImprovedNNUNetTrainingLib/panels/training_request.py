"""What the panel asks to train, and the backend command lines that do it.

A :class:`TrainingRequest` names a dataset, a variant with optional hyper-parameter
overrides, a configuration, the folds (trained one after another), the device, and the
schedule (epochs, iterations per epoch). :meth:`TrainingRequest.steps` turns it into the
``improved-nnunet prepare`` / ``train`` argument lists, looking at the nnU-Net folders to
decide what still has to run.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folds import required_folds
from ImprovedNNUNetLib.core.variants import PLANNERS, TRAINER_NAMES, VARIANT_DEFAULTS, VARIANT_NAMES
from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable
from ImprovedNNUNetTrainingLib.engine.run_checks import FoldStatus, fold_status
from ImprovedNNUNetTrainingLib.engine.train_command import TrainCommand


@dataclass
class Step:
    """One child process of the job: ``kind`` is "prepare" or "train" (then ``fold`` is set)."""

    kind: str
    arguments: list[str]
    fold: str | None = None

    @property
    def title(self) -> str:
        return "prepare" if self.kind == "prepare" else f"train fold {self.fold}"


def parse_folds(text: str) -> list:
    """``"0"``, ``"0,1,2"`` or ``"all"`` -> the folds to train one after another."""
    return required_folds(text)


def variant_defaults(variant: str) -> dict:
    """The variant's settable hyper-parameters and their defaults, e.g. ``{"dice_weight": 1.5, ...}``
    (what ``train --set NAME=VALUE`` accepts). Imports neither torch nor nnU-Net."""
    if variant not in VARIANT_DEFAULTS:
        raise UserError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANT_NAMES)}")
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in VARIANT_DEFAULTS[variant].items()}


@dataclass
class TrainingRequest:
    """One training job: every fold of ``folds`` with the same variant and settings.

    ``hyperparameters`` overrides the variant's defaults (see :func:`variant_defaults`);
    ``epochs`` / ``iterations_per_epoch`` / ``validation_iterations_per_epoch`` of None keep
    nnU-Net's schedule (1000 / 250 / 50).
    ``overwrite`` lets :meth:`steps` replace folds that already hold a run.
    """

    dataset: str
    variant: str = "improved"
    configuration: str = "3d_fullres"
    folds: list = field(default_factory=lambda: [0])
    device: str = "auto"
    epochs: int | None = None
    iterations_per_epoch: int | None = None
    validation_iterations_per_epoch: int | None = None
    hyperparameters: dict = field(default_factory=dict)
    overwrite: bool = False
    planner: str = "ExperimentPlanner"  # nnU-Net's planner; its plans identifier names the model folder
    folders: dict = field(default_factory=dict)  # nnU-Net's folder variables chosen in the panel, over the environment

    @property
    def plans(self) -> str:
        if self.planner not in PLANNERS:
            raise UserError(f"unknown planner {self.planner!r}; choose one of {', '.join(PLANNERS)}")
        return PLANNERS[self.planner]

    @property
    def dataset_name(self) -> str:
        return dataset_name(str(self.dataset), self.folders)

    def trainer_name(self) -> str:
        """The trainer class: a variant's, or any trainer nnU-Net can find, named by its class (as ``train
        --trainer`` takes it; a server's training job too). Checked without importing torch."""
        from ImprovedNNUNetLib.core.trainers import check_trainer

        if self.variant in TRAINER_NAMES:
            return TRAINER_NAMES[self.variant]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", str(self.variant)):  # a class name, never a path
            raise UserError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANT_NAMES)}, or the "
                            "class name of a trainer nnU-Net can find")
        return check_trainer(self.variant)

    def model_folder(self) -> Path:
        """``<nnUNet_results>/<dataset>/<trainer>__<plans>__<configuration>``: what inference loads."""
        return (folder_variable("nnUNet_results", self.folders) / self.dataset_name
                / f"{self.trainer_name()}__{self.plans}__{self.configuration}")

    def fold_folder(self, fold) -> Path:
        return self.model_folder() / f"fold_{fold}"

    def needs_prepare(self) -> bool:
        """True until the dataset has nnU-Net plans and preprocessed data for the configuration."""
        preprocessed = folder_variable("nnUNet_preprocessed", self.folders) / self.dataset_name
        plans = preprocessed / f"{self.plans}.json"
        if not plans.is_file():
            return True
        configurations = json.loads(plans.read_text()).get("configurations", {})
        identifier = configurations.get(self.configuration, {}).get("data_identifier",
                                                                    f"{self.plans}_{self.configuration}")
        return not (preprocessed / identifier).is_dir()

    def check(self) -> None:
        if self.hyperparameters and self.variant not in VARIANT_NAMES:
            raise UserError(f"hyper-parameters are settable for the project's variants; {self.variant} is trained "
                            "with its own settings (leave the settings out)")
        if not self.folds:
            raise UserError("no fold selected; pick at least one fold (0-4 or all)")
        for name, value in (("epochs", self.epochs), ("iterations per epoch", self.iterations_per_epoch),
                            ("validation iterations per epoch", self.validation_iterations_per_epoch)):
            if value is not None and value < 1:
                raise UserError(f"{name} must be at least 1, got {value}")

    def prepare_arguments(self) -> list[str]:
        arguments = ["prepare", self.dataset_name, "--config", self.configuration, "--planner", self.planner, "--json"]
        return arguments + (["--overwrite"] if self.overwrite else [])

    def train_arguments(self, fold, mode: str) -> list[str]:
        """``train`` arguments for one fold; ``mode`` is "new", "continue" or "overwrite"."""
        return TrainCommand(self.dataset_name, self.variant, fold, self.configuration, self.plans, self.device,
                            self.epochs, self.iterations_per_epoch, self.validation_iterations_per_epoch,
                            dict(self.hyperparameters), json_events=True, mode=mode).arguments()

    def steps(self, resume: bool) -> list[Step]:
        """The child processes still to run.

        Fresh start: every fold is trained; folds that already hold a run are refused unless
        ``overwrite``. Resume: finished folds are skipped, interrupted ones continue.
        """
        self.check()
        steps = [Step("prepare", self.prepare_arguments())] if self.needs_prepare() else []
        for fold in self.folds:
            state = fold_status(self.fold_folder(fold))
            if resume:
                if state is FoldStatus.STOPPED and not self.overwrite:
                    raise UserError(f"fold {fold} of {self.variant} stopped before its first checkpoint, so there is "
                                    "nothing to resume; tick Overwrite to train it again")
                if state is not FoldStatus.DONE:
                    steps.append(Step("train", self.train_arguments(fold, state.resume_mode), str(fold)))
            elif state is FoldStatus.NEW or self.overwrite:
                steps.append(Step("train", self.train_arguments(fold, "new" if state is FoldStatus.NEW else "overwrite"),
                                  str(fold)))
            else:
                raise UserError(f"fold {fold} of {self.variant} already holds a run ({self.fold_folder(fold)}); "
                                "press Resume to continue it, or tick Overwrite to train it again")
        return steps
