"""A reference (segmentation node or labelmap volume) as a label image in the model's values.

Reference segments are matched to the model's labels by name (case, spaces, underscores
and hyphens ignored); a segment whose name matches no label falls back to its value
(segment position or labelmap value, see `labelmaps`). Whatever stays unmatched is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation.names import normalise_name
from ImprovedNNUNetLib.panels.scene.labelmaps import SegmentInfo, export_label_image, segment_infos
from ImprovedNNUNetLib.panels.scene.volumes import image_from_volume


@dataclass
class LabelMatch:
    """How one reference segment (or labelmap value) was assigned to a model label."""

    reference_name: str
    label_name: str
    value: int
    by: str  # "name" or "value"


@dataclass
class ReferenceLabels:
    """The reference as a label image in model values, and how it was matched."""

    image: Image
    matches: list[LabelMatch]
    unmatched_reference: list[str] = field(default_factory=list)  # reference names with no label
    missing_labels: list[str] = field(default_factory=list)  # model labels absent from the reference

    def report(self) -> str:
        """One line per fallback or mismatch, empty when every name matched."""
        lines = [
            f"reference '{m.reference_name}' matched to label '{m.label_name}' by value {m.value}"
            for m in self.matches
            if m.by == "value"
        ]
        if self.unmatched_reference:
            lines.append("reference segments matching no model label (ignored): " + ", ".join(self.unmatched_reference))
        if self.missing_labels:
            lines.append("model labels with no reference segment: " + ", ".join(self.missing_labels))
        return "\n".join(lines)


def match_labels(candidates: list[SegmentInfo], labels: dict[str, int]) -> dict[str, LabelMatch]:
    """Assign candidates to foreground ``labels`` (name -> value): by name first, then by value.

    Returns ``{candidate segment id: match}`` in candidate order; unmatched candidates are absent.
    """
    foreground = {name: int(value) for name, value in labels.items() if int(value) != 0}
    by_name = {normalise_name(name): name for name in foreground}
    taken: set[str] = set()
    assigned: dict[str, LabelMatch] = {}
    for info in candidates:
        label = by_name.get(normalise_name(info.name))
        if label is not None and label not in taken:
            assigned[info.segment_id] = LabelMatch(info.name, label, foreground[label], "name")
            taken.add(label)
    by_value = {value: name for name, value in foreground.items()}
    for info in candidates:
        label = by_value.get(info.value)
        if info.segment_id not in assigned and label is not None and label not in taken:
            assigned[info.segment_id] = LabelMatch(info.name, label, info.value, "value")
            taken.add(label)
    return {info.segment_id: assigned[info.segment_id] for info in candidates if info.segment_id in assigned}


def _labelmap_candidates(node, array: np.ndarray) -> list[SegmentInfo]:
    display = node.GetDisplayNode()
    colors = display.GetColorNode() if display is not None else None
    candidates = []
    for value in np.unique(array):
        value = int(value)
        if value == 0:
            continue
        name = colors.GetColorName(value) if colors is not None else ""
        candidates.append(SegmentInfo(str(value), name or str(value), value))
    return candidates


def reference_labels(reference_node, labels: dict[str, int]) -> ReferenceLabels:
    """Label image of a reference node in the model's label values.

    A segmentation is exported on its own reference geometry; a labelmap keeps its grid.
    Raises `UserError` when no reference segment matches any model label.
    """
    if reference_node is None:
        raise UserError("no reference selected; select a segmentation or labelmap volume as reference")
    if reference_node.IsA("vtkMRMLSegmentationNode"):
        candidates = segment_infos(reference_node)
        source_image = None
    elif reference_node.IsA("vtkMRMLLabelMapVolumeNode"):
        source_image = image_from_volume(reference_node)
        candidates = _labelmap_candidates(reference_node, source_image.array)
    else:
        raise UserError(
            f"reference '{reference_node.GetName()}' is a {reference_node.GetClassName()}; "
            "select a segmentation or a labelmap volume"
        )
    matches = match_labels(candidates, labels)
    if not matches:
        raise UserError(
            f"no segment of reference '{reference_node.GetName()}' "
            f"({', '.join(c.name for c in candidates) or 'empty'}) matches a model label "
            f"({', '.join(n for n, v in labels.items() if int(v) != 0)}) by name or value; "
            "rename the reference segments to the model's label names"
        )
    matched = [c for c in candidates if c.segment_id in matches]
    if source_image is None:
        image = export_label_image(
            reference_node, [SegmentInfo(c.segment_id, c.name, matches[c.segment_id].value) for c in matched]
        )
    else:
        lookup = np.zeros(int(source_image.array.max()) + 1, dtype=np.int32)
        for c in matched:
            lookup[c.value] = matches[c.segment_id].value
        image = source_image.with_array(lookup[np.clip(source_image.array, 0, None).astype(np.int64)])
    matched_labels = {m.label_name for m in matches.values()}
    return ReferenceLabels(
        image=image,
        matches=list(matches.values()),
        unmatched_reference=[c.name for c in candidates if c.segment_id not in matches],
        missing_labels=[n for n, v in labels.items() if int(v) != 0 and n not in matched_labels],
    )
