"""Temporary helper nodes that MRML operations need in the scene."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def scratch_nodes(scene):
    """Remove every node added to ``scene`` inside the block when it ends.

    Scene-wide nodes created on first use inside the block stay: singletons and the
    subject hierarchy node.
    """
    before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    try:
        yield
    finally:
        nodes = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
        for node in nodes:
            if node.GetID() not in before and not _scene_wide(node):
                scene.RemoveNode(node)


def _scene_wide(node) -> bool:
    return bool(node.GetSingletonTag()) or node.IsA("vtkMRMLSubjectHierarchyNode")
