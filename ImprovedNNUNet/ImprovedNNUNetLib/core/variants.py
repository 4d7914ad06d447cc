"""The torch-free table of the training variants: names, trainer class names and modules, defaults. The command
line, the registry, the trainer classes (their defaults) and the inference loader read it without importing torch
or nnU-Net."""

VARIANT_NAMES = ("baseline", "loss", "deepsup", "augment", "improved", "sdm", "msf", "msf_deep")
CONFIGURATIONS = ("3d_fullres", "2d", "3d_lowres")
DEFAULT_PLANS = "nnUNetPlans"
# nnU-Net's experiment planners (`nnUNetv2_plan_and_preprocess -pl`) and the plans identifier each writes.
# The residual-encoder presets are nnU-Net's current recommendation (M: ~9-11 GB, L: ~24 GB, XL: ~40 GB VRAM).
PLANNERS = {"ExperimentPlanner": DEFAULT_PLANS, "nnUNetPlannerResEncM": "nnUNetResEncUNetMPlans",
            "nnUNetPlannerResEncL": "nnUNetResEncUNetLPlans", "nnUNetPlannerResEncXL": "nnUNetResEncUNetXLPlans"}
# Short names accepted for the planners.
PLANNER_ALIASES = {"default": "ExperimentPlanner", "ResEncM": "nnUNetPlannerResEncM",
                   "ResEncL": "nnUNetPlannerResEncL", "ResEncXL": "nnUNetPlannerResEncXL"}
DEFAULT_CHECKPOINT_EVERY = 5
# The trainer class name of each variant: it names the nnU-Net model folder (<trainer>__<plans>__<config>).
# The registry and the inference loader import each class from TRAINER_MODULES by this name.
TRAINER_NAMES = {"baseline": "nnUNetTrainer", "loss": "nnUNetTrainerLoss", "deepsup": "nnUNetTrainerDeepSup",
                 "augment": "nnUNetTrainerAugment", "improved": "nnUNetTrainerImproved", "sdm": "nnUNetTrainerSDM",
                 "msf": "nnUNetTrainerMSF", "msf_deep": "nnUNetTrainerMSFDeep"}
# The module that defines each variant's trainer class (`baseline` is nnU-Net's own nnUNetTrainer).
_TRAINERS = "ImprovedNNUNetTrainingLib.trainers."
TRAINER_MODULES = {"baseline": "nnunetv2.training.nnUNetTrainer.nnUNetTrainer", "loss": _TRAINERS + "loss_weights",
                   "deepsup": _TRAINERS + "deep_supervision", "augment": _TRAINERS + "augmentation",
                   "improved": _TRAINERS + "improved", "sdm": _TRAINERS + "sdm", "msf": _TRAINERS + "msf",
                   "msf_deep": _TRAINERS + "msf_deep"}


def trainer_class_named(class_name: str) -> type | None:
    """The project's trainer class (or stock nnUNetTrainer) called ``class_name``, imported from the module the
    table names; None for any other name. The registry and the inference loader both find classes here."""
    import importlib

    variant = next((v for v, name in TRAINER_NAMES.items() if name == class_name), None)
    return None if variant is None else getattr(importlib.import_module(TRAINER_MODULES[variant]), class_name)

def trainer_name(variant: str) -> str:
    """The trainer class name of a run's variant: the variant's own, or the name itself for any other trainer
    (``train --trainer NAME``, a study arm of a stock nnU-Net or ``nnUNet_extTrainer`` trainer)."""
    return TRAINER_NAMES.get(variant, variant)


def variant_for_trainer(name: str) -> str:
    """``train --trainer NAME`` -> the run's variant: a variant's short name for its own class (``nnUNetTrainer`` ->
    ``baseline``), the class name itself for any other trainer."""
    return next((variant for variant, class_name in TRAINER_NAMES.items() if class_name == name), name)


_AUGMENT = {"rotation_probability": 0.3, "noise_probability": 0.15, "noise_variance": [0.0, 0.2],
            "low_resolution_probability": 0.3, "low_resolution_scale": [0.7, 1.0]}
_LOSS = {"dice_weight": 1.5, "ce_weight": 0.5}
_DEEPSUP = {"deep_supervision_decay": 4.0}
_MSF = {"msf_weight": 1.0, "msf_dilation_radius": 2, "msf_stage1_fraction": 0.5}
# Each variant's settable hyper-parameters with their defaults (what `train --set` accepts): the one table of
# the numbers of the papers. The trainer classes read their class attributes from it, and callers that must
# not import torch (the Slicer panel, study files) read it directly.
VARIANT_DEFAULTS = {
    "baseline": {},
    "loss": dict(_LOSS),
    "deepsup": dict(_DEEPSUP),
    "augment": dict(_AUGMENT),
    "improved": {**_AUGMENT, **_DEEPSUP, **_LOSS},
    "sdm": {"sdm_weight": 1.0},
    "msf": dict(_MSF),
    "msf_deep": dict(_MSF),
}
