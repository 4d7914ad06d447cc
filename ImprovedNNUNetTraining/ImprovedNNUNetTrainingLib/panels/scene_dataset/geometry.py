"""Geometry checks of a case's nodes: channels on one voxel grid, segmentation over its volume."""
from __future__ import annotations

import numpy as np

from ImprovedNNUNetTrainingLib.panels.scene_dataset.cases import SceneCase


def ras_bounds(node) -> tuple[float, ...]:
    """(xmin, xmax, ymin, ymax, zmin, zmax) of a node in RAS, transforms included."""
    bounds = [0.0] * 6
    node.GetRASBounds(bounds)
    return tuple(bounds)


def same_grid(a, b) -> bool:
    """True when two volume nodes have the same voxel dimensions and IJK-to-RAS matrix."""
    import vtk

    matrices = []
    for node in (a, b):
        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        matrices.append([matrix.GetElement(r, c) for r in range(3) for c in range(4)])
    dims = [n.GetImageData().GetDimensions() if n.GetImageData() else None for n in (a, b)]
    return dims[0] == dims[1] and np.allclose(matrices[0], matrices[1], atol=1e-4)


def geometry_problems(case: SceneCase, problems: list[str], warnings: list[str]) -> None:
    """Channels must share one grid; the segmentation must overlap it."""
    for index, volume in enumerate(case.volumes[1:], start=1):
        if not same_grid(case.volumes[0], volume):
            problems.append(
                f"case '{case.name}': channel {index} ('{case.volumes[index].GetName()}') is not on the grid of "
                f"channel 0 ('{case.volumes[0].GetName()}'); resample it onto channel 0 first "
                "(Resample Scalar/Vector/DWI Volume)")
    for node in [*case.volumes, case.segmentation]:
        if node.GetParentTransformNode() is not None:
            problems.append(f"case '{case.name}': '{node.GetName()}' is under a transform; harden the transform first")
    volume, segmentation = ras_bounds(case.volumes[0]), ras_bounds(case.segmentation)
    overlaps = all(segmentation[2 * a] <= volume[2 * a + 1] and volume[2 * a] <= segmentation[2 * a + 1] for a in range(3))
    inside = all(volume[2 * a] - 1e-3 <= segmentation[2 * a] and segmentation[2 * a + 1] <= volume[2 * a + 1] + 1e-3
                 for a in range(3))
    if not overlaps:
        problems.append(f"case '{case.name}': segmentation '{case.segmentation.GetName()}' does not overlap volume "
                        f"'{case.volumes[0].GetName()}'; pair each segmentation with the volume it was drawn on")
    elif not inside:
        warnings.append(f"case '{case.name}': segmentation '{case.segmentation.GetName()}' extends beyond volume "
                        f"'{case.volumes[0].GetName()}'; the part outside is cropped")
