"""Result structures of an evaluation: metrics of one label, of one case."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

# Column/key names of summary.json and metrics.csv, in output order.
METRIC_KEYS = (
    "Dice", "IoU", "Sensitivity", "Specificity", "HD", "HD95", "HD99.9", "ASSD", "NSD",
    "Accuracy", "MCC", "RVD", "VolumeRef_ml", "VolumePred_ml", "clDice", "ECE", "Brier", "NLL", "LesionF1",
    "status",
)
# computed only when asked for (metric groups "cldice", "calibration", "instances"); NaN otherwise
OPTIONAL_KEYS = ("clDice", "ECE", "Brier", "NLL", "LesionF1")

STATUS_OK = "ok"
STATUS_BOTH_EMPTY = "both empty"
STATUS_PRED_EMPTY = "prediction empty"
STATUS_REF_EMPTY = "reference empty"


@dataclass
class LabelMetrics:
    """All metrics of one foreground label (prediction against reference).

    Distances are in mm, volumes in ml. One-sided empty structures have infinite
    distances; undefined ratios (e.g. sensitivity without reference voxels) are NaN.
    """

    label: int | tuple  # a label value, or a region's tuple of values
    name: str | None
    dice: float
    iou: float
    sensitivity: float
    specificity: float
    hd: float
    hd95: float
    hd99_9: float
    assd: float
    nsd: float
    volume_ref_ml: float
    volume_pred_ml: float
    status: str
    tau_mm: float
    accuracy: float = float("nan")
    mcc: float = float("nan")
    rvd: float = float("nan")
    cldice: float = float("nan")
    ece: float = float("nan")
    brier: float = float("nan")
    nll: float = float("nan")
    instances: object | None = None  # InstanceMetrics (lesion-wise results) when asked for

    def to_dict(self) -> dict:
        """The metrics under their summary.json / metrics.csv keys (floats stay inf/NaN)."""
        return {
            "Dice": self.dice,
            "IoU": self.iou,
            "Sensitivity": self.sensitivity,
            "Specificity": self.specificity,
            "HD": self.hd,
            "HD95": self.hd95,
            "HD99.9": self.hd99_9,
            "ASSD": self.assd,
            "NSD": self.nsd,
            "Accuracy": self.accuracy,
            "MCC": self.mcc,
            "RVD": self.rvd,
            "VolumeRef_ml": self.volume_ref_ml,
            "VolumePred_ml": self.volume_pred_ml,
            "clDice": self.cldice,
            "ECE": self.ece,
            "Brier": self.brier,
            "NLL": self.nll,
            "LesionF1": self.instances.f1 if self.instances is not None else float("nan"),
            "status": self.status,
        }


@dataclass
class CaseMetrics:
    """Metrics of every evaluated label of one case, keyed by label value.

    ``resampled`` is True when the prediction was resampled (nearest neighbour) to the
    reference grid; ``notes`` says so in words, for display.
    """

    labels: dict  # label key (value or region tuple) -> LabelMetrics
    resampled: bool = False
    notes: list[str] = field(default_factory=list)
    pixel_accuracy: float = float("nan")  # voxels with the same value in both images (every value) / all
    calibration: dict | None = None  # case-level calibration (top-label ECE) when probabilities were given

    def __getitem__(self, label: int) -> LabelMetrics:
        return self.labels[label]

    def to_dict(self) -> dict:
        """``{"<label value>": {metric key: value}}`` as in summary.json (floats unconverted)."""
        return {str(value): m.to_dict() for value, m in self.labels.items()}


def json_number(value):
    """A float for JSON: inf and NaN become None (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
