"""What an evaluation measures: metric groups, profiles, and the lesion (instance) settings.

Profiles follow Metrics Reloaded (Maier-Hein et al., Nat. Methods 2024): an overlap metric with a boundary
metric for every task, NSD at a task tolerance, instance metrics where instances matter, clDice for tubular
structures. Costly groups can be switched off with ``metrics``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ImprovedNNUNetLib.core.errors import UserError

# the metric groups: overlap counts are always computed (they are nearly free)
GROUPS = ("overlap", "distance", "nsd", "cldice", "instances", "calibration")
COSTLY = ("distance", "nsd", "cldice", "instances")

PROFILES = {
    # name: (groups, NSD tolerance in mm)
    "organ": (("overlap", "distance", "nsd", "calibration"), 2.0),
    "lesion": (("overlap", "distance", "nsd", "instances", "calibration"), 1.0),
    "tubular": (("overlap", "distance", "nsd", "cldice", "calibration"), 1.0),
}
DEFAULT_GROUPS = ("overlap", "distance", "nsd", "calibration")
DEFAULT_TAU_MM = 1.0


@dataclass(frozen=True)
class InstanceOptions:
    """How lesions (instances) are found and matched.

    * ``connectivity``: connected components of each label (6/18/26 in 3-D, 4/8 in 2-D; None: 26 / 8, as
      panoptica's cc3d and the BraTS lesion-wise code use);
    * ``match_iou``: a predicted and a reference lesion match when their IoU is at least this (panoptica's
      ``NaiveThresholdMatching``, default 0.5: above 0.5 a lesion can match one other only); candidate pairs
      are taken greedily by decreasing IoU, each lesion matched at most once;
    * ``size_bins_ml``: edges of the reference-lesion size bins of the detection rates (ml; mm² in 2-D);
    * ``brats_dilation`` / ``brats_min_volume_mm3``: the BraTS 2023 lesion-wise Dice (reference lesions
      dilated this many times, by the 18-neighbourhood, for matching; reference lesions of at most this
      volume left out). Defaults: the BraTS-GLI setting (3, 50 mm³); BraTS-MET uses 1 and 2 mm³.
    """

    connectivity: int | None = None
    match_iou: float = 0.5
    size_bins_ml: tuple[float, ...] = (0.1, 1.0, 10.0)
    brats_dilation: int = 3
    brats_min_volume_mm3: float = 50.0

    def __post_init__(self):
        if not 0.0 < float(self.match_iou) <= 1.0:
            raise UserError(f"--match-iou {self.match_iou}: give an IoU threshold above 0 and at most 1")
        bins = tuple(float(b) for b in self.size_bins_ml)
        if any(b <= 0 for b in bins) or list(bins) != sorted(set(bins)):
            raise UserError(f"--size-bins {','.join(map(str, bins))}: give increasing positive volumes in ml, "
                            "e.g. 0.1,1,10")
        if int(self.brats_dilation) != self.brats_dilation or self.brats_dilation < 0:
            raise UserError(f"BraTS dilation {self.brats_dilation}: give a whole number of voxels ≥ 0")


@dataclass(frozen=True)
class MetricOptions:
    """Which metric groups an evaluation computes, and its lesion settings."""

    groups: tuple[str, ...] = DEFAULT_GROUPS
    instances: InstanceOptions = field(default_factory=InstanceOptions)
    profile: str | None = None

    def has(self, group: str) -> bool:
        return group in self.groups

    def with_groups(self, groups) -> MetricOptions:
        return replace(self, groups=checked_groups(groups))


def checked_groups(groups) -> tuple[str, ...]:
    groups = tuple(dict.fromkeys(str(g).strip().lower() for g in groups if str(g).strip()))
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise UserError(f"--metrics {','.join(unknown)}: unknown metric group; choose from {', '.join(GROUPS)}")
    return tuple(g for g in GROUPS if g in groups or g == "overlap")


def metric_options(profile: str | None = None, metrics=None, instances: InstanceOptions | None = None,
                   instances_on: bool = False) -> tuple[MetricOptions, float]:
    """The options and the default NSD tolerance (mm) of a profile, with ``metrics`` (a group list) replacing
    the profile's groups and ``instances_on`` adding the lesion metrics."""
    if profile is not None and profile not in PROFILES:
        raise UserError(f"--profile {profile}: unknown profile; choose organ, lesion or tubular")
    groups, tau = PROFILES[profile] if profile else (DEFAULT_GROUPS, DEFAULT_TAU_MM)
    if metrics is not None:
        groups = checked_groups(metrics)
    if instances_on and "instances" not in groups:
        groups = checked_groups((*groups, "instances"))
    return MetricOptions(tuple(groups), instances or InstanceOptions(), profile), tau
