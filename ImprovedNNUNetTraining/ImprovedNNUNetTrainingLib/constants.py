"""Names and defaults the command line needs without importing torch or nnU-Net."""

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
# The trainer class name of each variant: it names the nnU-Net model folder (<trainer>__<plans>__<config>);
# the registry asserts that it matches the classes.
TRAINER_NAMES = {"baseline": "nnUNetTrainer", "loss": "nnUNetTrainerLoss", "deepsup": "nnUNetTrainerDeepSup",
                 "augment": "nnUNetTrainerAugment", "improved": "nnUNetTrainerImproved", "sdm": "nnUNetTrainerSDM",
                 "msf": "nnUNetTrainerMSF", "msf_deep": "nnUNetTrainerMSFDeep"}

_AUGMENT = {"rotation_probability": 0.3, "noise_probability": 0.15, "noise_variance": [0.0, 0.2],
            "low_resolution_probability": 0.3, "low_resolution_scale": [0.7, 1.0]}
_MSF = {"msf_weight": 1.0, "msf_dilation_radius": 2, "msf_stage1_fraction": 0.5}
# Each variant's settable hyper-parameters with their defaults (what `train --set` accepts), for
# callers that must not import torch (the Slicer panel); a test checks them against the trainer
# classes' attributes, which are the source of truth.
VARIANT_DEFAULTS = {
    "baseline": {},
    "loss": {"dice_weight": 1.5, "ce_weight": 0.5},
    "deepsup": {"deep_supervision_decay": 4.0},
    "augment": dict(_AUGMENT),
    "improved": {**_AUGMENT, "deep_supervision_decay": 4.0, "dice_weight": 1.5, "ce_weight": 0.5},
    "sdm": {"sdm_weight": 1.0},
    "msf": dict(_MSF),
    "msf_deep": dict(_MSF),
}
