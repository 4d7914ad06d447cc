"""Checking picked cases before export: the label union and every problem that blocks writing."""
from __future__ import annotations

from dataclasses import dataclass, field

from ImprovedNNUNetLib.evaluation.names import normalise_name
from ImprovedNNUNetLib.panels.scene.labelmaps import segment_infos
from ImprovedNNUNetTrainingLib.panels.scene_dataset.cases import SceneCase, unique_names
from ImprovedNNUNetTrainingLib.panels.scene_dataset.geometry import geometry_problems


@dataclass
class DatasetCheck:
    """What an export would write: channels, labels (name -> value, background 0) and the cases.

    ``problems`` block the export (conflicting segment names, mismatched geometry, missing
    nodes); ``warnings`` do not (a segmentation partly outside its volume is cropped).
    """

    cases: list[SceneCase]
    channel_names: list[str]
    labels: dict[str, int]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """Multi-line summary for a log or dialog."""
        lines = [f"{len(self.cases)} cases, channels: {', '.join(self.channel_names)}",
                 "labels: " + ", ".join(f"{v}={n}" for n, v in self.labels.items())]
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def label_union(cases: list[SceneCase], problems: list[str]) -> dict[str, int]:
    """One value per segment name, numbered in order of first appearance; spelling conflicts
    (names equal up to case, spaces, '_' and '-') and duplicate names inside one segmentation go to ``problems``."""
    labels = {"background": 0}
    spelling: dict[str, str] = {normalise_name("background"): "background"}
    for case in cases:
        names = [info.name for info in segment_infos(case.segmentation)]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"case '{case.name}': more than one segment is named '{name}'; rename or merge them")
        for name in names:
            known = spelling.setdefault(normalise_name(name), name)
            if known != name:
                problems.append(f"case '{case.name}': segment '{name}' conflicts with '{known}' of another "
                                "case or the background; use one spelling for one structure")
            elif name not in labels:
                labels[name] = len(labels)
    return labels


def check_dataset(cases: list[SceneCase], channel_names: list[str]) -> DatasetCheck:
    """Check the cases and compute the label union; writes nothing. Case names become file-name-safe
    and unique (``_2``, ``_3`` ... appended)."""
    for case, name in zip(cases, unique_names([c.name for c in cases])):
        case.name = name
    problems: list[str] = []
    warnings: list[str] = []
    if not channel_names or any(not n.strip() for n in channel_names):
        problems.append("every channel needs a name (for example CT or T1); fill in the channel names")
    usable = []
    for case in cases:
        if not case.volumes or any(v is None for v in case.volumes) or case.segmentation is None:
            problems.append(f"case '{case.name}': a volume or the segmentation is not set; pick both")
        elif len(case.volumes) != len(channel_names):
            problems.append(f"case '{case.name}' has {len(case.volumes)} channel volumes but the dataset has "
                            f"{len(channel_names)} channels ({', '.join(channel_names)}); give every case one volume per channel")
        else:
            usable.append(case)
    for case in usable:
        if case.segmentation.GetSegmentation().GetNumberOfSegments() == 0:
            problems.append(f"case '{case.name}': segmentation '{case.segmentation.GetName()}' has no segments")
        else:
            geometry_problems(case, problems, warnings)
    labels = label_union([c for c in cases if c.segmentation is not None], problems)
    return DatasetCheck(list(cases), [n.strip() for n in channel_names], labels, problems, warnings)
