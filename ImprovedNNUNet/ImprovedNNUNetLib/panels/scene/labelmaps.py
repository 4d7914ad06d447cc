"""Segmentation nodes -> label arrays with geometry.

A segment's label value is the model value stored on it by this package (tag
``LABEL_VALUE_TAG``), otherwise its 1-based position in the segmentation, which is the
value Slicer gives it when exporting all segments to a labelmap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.panels.scene.scratch import scratch_nodes
from ImprovedNNUNetLib.panels.scene.volumes import ensure_default_colors, image_from_ijk_to_ras, image_from_volume, numpy_matrix

LABEL_VALUE_TAG = "ImprovedNNUNet.LabelValue"


@dataclass(frozen=True)
class SegmentInfo:
    segment_id: str
    name: str
    value: int


def segment_tag(segment, name: str) -> str | None:
    """Value of a segment tag, None when the segment has no such tag."""
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else None


def segment_infos(segmentation_node) -> list[SegmentInfo]:
    """The segments of a segmentation node in display order, with their label values."""
    segmentation = segmentation_node.GetSegmentation()
    infos = []
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        value = int(segment_tag(segment, LABEL_VALUE_TAG) or index + 1)
        infos.append(SegmentInfo(segment_id, segment.GetName(), value))
    return infos


def reference_grid(segmentation_node) -> Image:
    """The segmentation's reference geometry as an image (contents unspecified)."""
    import slicer
    import vtk

    geometry = slicer.vtkOrientedImageData()
    text = segmentation_node.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(text, geometry, False)
    matrix = vtk.vtkMatrix4x4()
    geometry.GetImageToWorldMatrix(matrix)
    ijk_to_ras = numpy_matrix(matrix)
    extent = geometry.GetExtent()
    ijk_to_ras[:3, 3] = ijk_to_ras[:3, :3] @ np.array(extent[0::2], dtype=float) + ijk_to_ras[:3, 3]
    shape = tuple(extent[2 * axis + 1] - extent[2 * axis] + 1 for axis in (2, 1, 0))
    return image_from_ijk_to_ras(np.zeros(shape, dtype=np.uint8), ijk_to_ras)


def export_label_image(segmentation_node, segments: list[SegmentInfo], reference_volume=None) -> Image:
    """Label image of ``segments`` (each voxel gets its segment's value; later segments win).

    The grid is ``reference_volume``'s when given, otherwise the segmentation's own
    reference geometry (its full extent, never cropped to the segments).
    """
    import slicer
    import vtk

    scene = segmentation_node.GetScene()
    ensure_default_colors(scene)  # the scratch label map's display node needs Slicer's "Labels" colours
    ids = vtk.vtkStringArray()
    for info in segments:
        ids.InsertNextValue(info.segment_id)
    with scratch_nodes(scene):
        labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, ids, labelmap, reference_volume, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY
        )
        if not ok:
            raise RuntimeError(f"exporting segments of '{segmentation_node.GetName()}' to a labelmap failed")
        if labelmap.GetImageData().GetPointData().GetScalars() is None:  # every exported segment is empty
            grid = image_from_volume(reference_volume) if reference_volume else reference_grid(segmentation_node)
            return grid.with_array(np.zeros(grid.array.shape, dtype=np.uint8))
        exported = image_from_volume(labelmap)
    lookup = np.zeros(len(segments) + 1, dtype=np.int64)
    lookup[1:] = [info.value for info in segments]
    dtype = np.uint8 if lookup.max(initial=0) < 256 else np.int32
    indices = exported.array  # 1..n: the exported segments in order
    if np.array_equal(lookup, np.arange(len(lookup))):  # segment k has value k: no remapping needed
        return exported.with_array(indices if indices.dtype == dtype else indices.astype(dtype))
    # a lookup table in the output type indexed by the exported array as it is (no 64-bit copy of a full CT)
    return exported.with_array(lookup.astype(dtype)[indices])
