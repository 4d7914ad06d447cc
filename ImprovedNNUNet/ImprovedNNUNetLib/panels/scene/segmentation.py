"""Label images -> segmentation nodes with named, coloured segments."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation.labels import isin_labels
from ImprovedNNUNetLib.evaluation.terminology import distinct_color, terminology_entry
from ImprovedNNUNetLib.panels.scene.hierarchy import place_next_to
from ImprovedNNUNetLib.panels.scene.labelmaps import LABEL_VALUE_TAG
from ImprovedNNUNetLib.panels.scene.scratch import scratch_nodes
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image


@dataclass(frozen=True)
class SegmentSpec:
    """What one label value becomes in a segmentation."""

    value: int
    name: str
    color: tuple[float, float, float]
    terminology: str | None = None


def label_segments(labels: dict[str, int]) -> list[SegmentSpec]:
    """Segment specs for a model's foreground labels (name -> value), in value order."""
    foreground = sorted((int(v), n) for n, v in labels.items() if int(v) != 0)
    return [SegmentSpec(v, n, distinct_color(i), terminology_entry(n)) for i, (v, n) in enumerate(foreground)]


def new_segmentation_node(scene, name: str):
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    return node


def add_segments_from_label_image(
    segmentation_node, image: Image, specs: list[SegmentSpec], adopt_geometry: bool = False
) -> list[str]:
    """Add one segment per spec from the voxels of ``image`` equal to its value.

    Specs whose value is absent from the image become empty segments, values without a
    spec are not imported. The new segments follow the existing ones in spec order.
    ``adopt_geometry``: make the image's grid the segmentation's reference geometry.
    Returns the new segment ids in spec order.
    """
    import slicer

    scene = segmentation_node.GetScene()
    segmentation = segmentation_node.GetSegmentation()
    before = {segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())}
    wanted = {spec.value for spec in specs}
    with scratch_nodes(scene):
        keep = isin_labels(image.array, wanted)
        masked = image.array if keep.all() else np.where(keep, image.array, 0).astype(image.array.dtype)
        labelmap = add_volume_from_image(scene, image.with_array(masked), "labels", "vtkMRMLLabelMapVolumeNode")
        if adopt_geometry:
            segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(labelmap)
        if masked.any() and not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
            labelmap, segmentation_node
        ):
            raise RuntimeError(f"importing labels into '{segmentation_node.GetName()}' failed")
    imported = {
        segmentation.GetSegment(segment_id).GetLabelValue(): segment_id
        for segment_id in (segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments()))
        if segment_id not in before
    }
    ids = []
    for spec in specs:
        segment_id = imported.get(spec.value) or _add_empty_segment(segmentation, spec.name)
        segment = segmentation.GetSegment(segment_id)
        segment.SetName(spec.name)
        segment.SetColor(*spec.color)
        segment.SetTag(LABEL_VALUE_TAG, str(spec.value))
        if spec.terminology:
            segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), spec.terminology)
        else:  # no generic default ("Tissue") for a structure whose code is unknown
            segment.RemoveTag(slicer.vtkSegment.GetTerminologyEntryTagName())
        ids.append(segment_id)
    for position, segment_id in enumerate(ids, start=len(before)):
        segmentation.SetSegmentIndex(segment_id, position)
    return ids


def _add_empty_segment(segmentation, name: str) -> str:
    """Add a segment without voxels; returns its id.

    Built with an empty binary labelmap of its own, which needs no representation
    converter (slicer-core registers none, so ``AddEmptySegment`` cannot build one there).
    """
    import slicer

    segment = slicer.vtkSegment()
    segment.SetName(name)
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(),
                              slicer.vtkOrientedImageData())
    segment_id = segmentation.GenerateUniqueSegmentID(name)
    segmentation.AddSegment(segment, segment_id)
    return segment_id


def add_prediction_segmentation(label_image: Image, labels: dict[str, int], input_volume, name: str, node=None):
    """Segmentation node of a model's label image, on ``input_volume``'s geometry and next to it.

    Segment names come from the model's labels (name -> value), colours are distinct, known
    structure names get their standard terminology. ``node``: an existing segmentation
    node to fill instead (its segments are replaced, its name kept).
    """
    if node is None:
        node = new_segmentation_node(input_volume.GetScene(), name)
    else:
        node.GetSegmentation().RemoveAllSegments()
        node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(input_volume)
    add_segments_from_label_image(node, label_image, label_segments(labels))
    place_next_to(node, input_volume)
    return node
