"""Volume nodes <-> `Image`, and the per-channel input check.

MRML volumes carry their geometry as an IJK-to-RAS matrix; `Image` (like the files and
SimpleITK) uses LPS. The two differ by the sign of the first two physical axes.
"""
from __future__ import annotations

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image

_RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0])


def ijk_to_ras(image: Image) -> np.ndarray:
    """4x4 IJK-to-RAS matrix of an image's geometry."""
    direction = np.asarray(image.direction, dtype=float).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = _RAS_FROM_LPS @ direction @ np.diag(image.spacing)
    matrix[:3, 3] = _RAS_FROM_LPS @ np.asarray(image.origin, dtype=float)
    return matrix


def _vtk_matrix(matrix: np.ndarray):
    import vtk

    result = vtk.vtkMatrix4x4()
    for row in range(4):
        for col in range(4):
            result.SetElement(row, col, float(matrix[row, col]))
    return result


def numpy_matrix(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _node_ijk_to_ras(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return numpy_matrix(matrix)


def image_from_volume(node) -> Image:
    """Copy of a scalar or labelmap volume node's voxels with its geometry (LPS)."""
    import slicer.util

    if node is None or node.GetImageData() is None:
        name = node.GetName() if node is not None else "(none)"
        raise UserError(f"volume '{name}' has no voxels; load or select a volume that contains an image")
    transform = node.GetParentTransformNode()
    if transform is not None:
        raise UserError(
            f"volume '{node.GetName()}' is under the transform '{transform.GetName()}'; "
            "harden the transform (Data module, right-click, Harden transform) and try again"
        )
    return image_from_ijk_to_ras(np.array(slicer.util.arrayFromVolume(node), copy=True), _node_ijk_to_ras(node))


def image_from_ijk_to_ras(array: np.ndarray, matrix: np.ndarray) -> Image:
    """An (z, y, x) array placed by a 4x4 IJK-to-RAS matrix, as an `Image` (LPS)."""
    lps = _RAS_FROM_LPS @ matrix[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    return Image(
        array,
        tuple(float(v) for v in spacing),
        tuple(float(v) for v in _RAS_FROM_LPS @ matrix[:3, 3]),
        tuple(float(v) for v in (lps / spacing).ravel()),
    )


def set_volume_from_image(node, image: Image) -> None:
    """Replace a volume node's voxels and geometry with an image's."""
    import slicer.util

    array = image.array
    if array.dtype in (np.int64, np.uint64):
        array = array.astype(np.int32)
    elif array.dtype == bool:
        array = array.astype(np.uint8)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras(image)))


def ensure_default_colors(scene) -> None:
    """Slicer's default colour tables in ``scene`` when they are missing.

    The application's colour module adds them to every scene; a scene made with slicer-core alone (a headless
    script, the tests) has none, and a label map's display node then warns "the color table node:
    vtkMRMLColorTableNodeLabels can't be found" for every volume. slicer-core's own ``vtkMRMLColorLogic`` adds
    the same default nodes; inside Slicer this does nothing."""
    import slicer

    if scene.GetNodeByID("vtkMRMLColorTableNodeLabels") is None:
        logic = slicer.vtkMRMLColorLogic()
        logic.SetMRMLScene(scene)
        logic.SetMRMLScene(None)  # the nodes stay; the logic need not observe the scene


def add_volume_from_image(scene, image: Image, name: str, class_name: str = "vtkMRMLScalarVolumeNode"):
    """New volume node in ``scene`` holding ``image``, with display nodes."""
    ensure_default_colors(scene)
    node = scene.AddNewNodeByClass(class_name, name)
    set_volume_from_image(node, image)
    node.CreateDefaultDisplayNodes()
    return node


def channel_images(volume_nodes, channel_names: dict) -> list[Image]:
    """One image per model channel, in channel order, all on one voxel grid.

    ``channel_names`` is the model's ``dataset.json`` mapping (index -> name).
    """
    nodes = [node for node in volume_nodes if node is not None]
    expected = [channel_names[key] for key in sorted(channel_names, key=int)]
    if len(nodes) != len(expected):
        raise UserError(
            f"the model expects {len(expected)} input volume(s) ({', '.join(expected)}), "
            f"{len(nodes)} selected; select one volume per channel"
        )
    images = [image_from_volume(node) for node in nodes]
    for node, image in zip(nodes[1:], images[1:]):
        if not image.same_grid(images[0]):
            raise UserError(
                f"volumes '{nodes[0].GetName()}' and '{node.GetName()}' are on different voxel grids; "
                "resample one onto the other (Resample Scalar/Vector/DWI Volume module) first"
            )
    return images


OVERLAY_COLORS = "vtkMRMLPETProceduralColorNodePET-Heat"  # a procedural table every scene has (slicer-core too)
OVERLAY_THRESHOLD = 0.05  # uncertainty below this is transparent over the image
OVERLAY_OPACITY = 0.5


def show_as_overlay(node, low: float = 0.0, high: float = 1.0) -> None:
    """Show a [low, high] map (uncertainty) in a heat colour table as the foreground layer of every slice view,
    values below ``OVERLAY_THRESHOLD`` transparent; the background (the image) stays."""
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(OVERLAY_COLORS)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    display.SetThreshold(OVERLAY_THRESHOLD, high)
    display.ApplyThresholdOn()
    scene = node.GetScene()
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(index, "vtkMRMLSliceCompositeNode")
        composite.SetForegroundVolumeID(node.GetID())
        composite.SetForegroundOpacity(OVERLAY_OPACITY)
