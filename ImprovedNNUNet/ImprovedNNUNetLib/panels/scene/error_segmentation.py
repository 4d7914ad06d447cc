"""Mis-segmentation maps -> a segmentation "<prediction> errors" with FP and FN segments per label.

False positives of different labels never overlap (a voxel has one predicted label), nor do
false negatives, so each error type is one label image and one segmentation layer.
"""
from __future__ import annotations

from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.panels.scene.hierarchy import place_next_to
from ImprovedNNUNetLib.panels.scene.segmentation import SegmentSpec, add_segments_from_label_image, new_segmentation_node

FP_COLOR = (1.0, 0.85, 0.0)  # yellow: predicted but not in the reference
FN_COLOR = (0.0, 0.75, 1.0)  # cyan: in the reference but missed
MISSED_COLOR = (0.9, 0.1, 0.1)  # red: a whole reference lesion the prediction missed
FALSE_COLOR = (0.85, 0.2, 0.85)  # magenta: a whole predicted lesion the reference does not have
ERROR_TYPES = (("FP", FP_COLOR), ("FN", FN_COLOR))
LESION_TYPES = (("missed lesions", MISSED_COLOR), ("false lesions", FALSE_COLOR))
ERRORS_OF_ATTRIBUTE = "ImprovedNNUNet.ErrorsOf"  # node ID of the prediction an errors node belongs to


def errors_name(prediction_name: str) -> str:
    return f"{prediction_name} errors"


def _errors_node(prediction_node):
    """The errors node made earlier for this prediction (emptied), or a new one."""
    scene = prediction_node.GetScene()
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLSegmentationNode")
        if node.GetAttribute(ERRORS_OF_ATTRIBUTE) == prediction_node.GetID():
            node.GetSegmentation().RemoveAllSegments()
            node.SetName(errors_name(prediction_node.GetName()))
            return node
    node = new_segmentation_node(scene, errors_name(prediction_node.GetName()))
    node.SetAttribute(ERRORS_OF_ATTRIBUTE, prediction_node.GetID())
    return node


def add_error_segmentation(prediction_node, fp_labels: Image, fn_labels: Image, names: dict[int, str],
                           missed_labels: Image | None = None, false_labels: Image | None = None):
    """Segmentation "<prediction> errors" on the error maps' grid, next to ``prediction_node``.

    Showing errors again for the same prediction refills the same node.

    ``fp_labels`` holds at each false-positive voxel the predicted label value (else 0),
    ``fn_labels`` at each false-negative voxel the reference label value; ``names`` maps
    the evaluated label values to names. Segments are "<label> FP" and "<label> FN" per
    label (empty when there is no such error), in the fixed colours `FP_COLOR` and
    `FN_COLOR`; each carries its label value as tag. With ``missed_labels`` and ``false_labels`` (whole
    lesions without a match) the segments "<label> missed lesions" (`MISSED_COLOR`) and "<label> false lesions"
    (`FALSE_COLOR`) follow, and FP/FN hold the boundary errors.
    """
    node = _errors_node(prediction_node)
    values = sorted(names)
    layers = [(fp_labels, *ERROR_TYPES[0]), (fn_labels, *ERROR_TYPES[1])]
    if missed_labels is not None and false_labels is not None:
        layers += [(missed_labels, *LESION_TYPES[0]), (false_labels, *LESION_TYPES[1])]
    ids_per_type = [
        add_segments_from_label_image(
            node, layer, [SegmentSpec(v, f"{names[v]} {kind}", color) for v in values], adopt_geometry=True
        )
        for layer, kind, color in layers
    ]
    segmentation = node.GetSegmentation()
    for position, segment_id in enumerate(i for pair in zip(*ids_per_type) for i in pair):
        segmentation.SetSegmentIndex(segment_id, position)
    display = node.GetDisplayNode()
    display.SetVisibility(True)
    display.SetOpacity2DFill(0.6)
    place_next_to(node, prediction_node)
    return node
