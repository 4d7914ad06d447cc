"""Temporary helper nodes that MRML operations need in the scene."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def scratch_nodes(scene):
    """Remove every node added to ``scene`` inside the block when it ends."""
    before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    try:
        yield
    finally:
        added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
        for node in added:
            if node.GetID() not in before:
                scene.RemoveNode(node)
