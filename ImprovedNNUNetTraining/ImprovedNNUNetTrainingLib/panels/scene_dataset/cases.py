"""Training cases picked in a scene: one volume per channel plus one segmentation."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ImprovedNNUNetLib.core.errors import UserError


@dataclass
class SceneCase:
    """One training case: ``volumes[i]`` is channel i; the segmentation holds its labels."""

    name: str
    volumes: list
    segmentation: object


def safe_case_name(name: str) -> str:
    """A file-name-safe case identifier made from a node or folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "_", name).strip("_")
    return cleaned or "case"


def unique_names(names: list[str]) -> list[str]:
    """File-name-safe names, suffixed ``_2``, ``_3``, ... where they would repeat."""
    result, seen = [], set()
    for name in names:
        base = safe_case_name(name)
        candidate, count = base, 1
        while candidate in seen:
            count += 1
            candidate = f"{base}_{count}"
        seen.add(candidate)
        result.append(candidate)
    return result


def cases_from_pairs(pairs, names: list[str] | None = None) -> list[SceneCase]:
    """Cases from ``(volumes, segmentation)`` pairs; ``volumes`` is one node or a list, one per channel.

    Case names default to the first volume's node name (made unique by ``check_dataset``).
    """
    pairs = [([volumes] if not isinstance(volumes, (list, tuple)) else list(volumes), seg) for volumes, seg in pairs]
    if not pairs:
        raise UserError("no cases were given; pick at least one (volume, segmentation) pair")
    if names is not None and len(names) != len(pairs):
        raise UserError(f"{len(names)} case names for {len(pairs)} cases; give one name per case or none")
    names = names or [volumes[0].GetName() if volumes and volumes[0] else "case" for volumes, _ in pairs]
    return [SceneCase(name, volumes, seg) for name, (volumes, seg) in zip(names, pairs)]


def cases_from_folders(scene, folder_item_ids) -> list[SceneCase]:
    """One case per subject-hierarchy folder, named after it: its scalar volumes (in folder order)
    are the channels, its one segmentation node holds the labels. Nested items count."""
    import slicer
    import vtk

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    cases = []
    for item in folder_item_ids:
        children = vtk.vtkIdList()
        hierarchy.GetItemChildren(item, children, True)
        nodes = [hierarchy.GetItemDataNode(children.GetId(i)) for i in range(children.GetNumberOfIds())]
        volumes = [n for n in nodes if n is not None and n.IsA("vtkMRMLScalarVolumeNode")
                   and not n.IsA("vtkMRMLLabelMapVolumeNode")]
        segmentations = [n for n in nodes if n is not None and n.IsA("vtkMRMLSegmentationNode")]
        folder_name = hierarchy.GetItemName(item)
        if not volumes or len(segmentations) != 1:
            raise UserError(
                f"folder '{folder_name}' holds {len(volumes)} volumes and {len(segmentations)} segmentations; "
                "put at least one volume and exactly one segmentation into each case folder")
        cases.append(SceneCase(folder_name, volumes, segmentations[0]))
    if not cases:
        raise UserError("no case folders were given; pick one subject-hierarchy folder per case")
    return cases
