"""Reading MRML volume and segmentation nodes as arrays with their physical geometry."""
from __future__ import annotations

import numpy as np

from ImprovedNNUNetLib.imageio import Image

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def image_from_volume_node(volume_node) -> Image:
    """The voxels of a scalar volume node as an ``Image`` in ITK (LPS) geometry.

    The array is a view of the node's voxels (no copy): read it, do not modify it.
    """
    import slicer.util
    import vtk

    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = np.array([[ijk_to_ras.GetElement(r, c) for c in range(4)] for r in range(4)])
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    direction = RAS_TO_LPS @ (matrix[:3, :3] / spacing)
    origin = RAS_TO_LPS @ matrix[:3, 3]
    array = slicer.util.arrayFromVolume(volume_node)
    return Image(array, tuple(spacing.tolist()), tuple(origin.tolist()), tuple(direction.ravel().tolist()))


def segment_mask(segmentation_node, segment_id: str, reference_volume) -> np.ndarray:
    """Boolean (z, y, x) mask of one segment resampled onto the reference volume's grid."""
    import slicer
    import slicer.util
    import vtk

    scene = segmentation_node.GetScene()
    labelmap = slicer.vtkMRMLLabelMapVolumeNode()
    scene.AddNode(labelmap)
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, ids, labelmap, reference_volume)
        return slicer.util.arrayFromVolume(labelmap) > 0
    finally:
        display = labelmap.GetDisplayNode()
        if display is not None:
            scene.RemoveNode(display)
        scene.RemoveNode(labelmap)


def segment_names(segmentation_node) -> list[tuple[str, str]]:
    """(segment id, segment name) of every segment, in the segmentation's order."""
    segmentation = segmentation_node.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    return [(segment_id, segmentation.GetSegment(segment_id).GetName()) for segment_id in ids]


def ras_bounds(node) -> tuple[float, ...]:
    """(xmin, xmax, ymin, ymax, zmin, zmax) of a node in RAS, transforms included."""
    bounds = [0.0] * 6
    node.GetRASBounds(bounds)
    return tuple(bounds)
