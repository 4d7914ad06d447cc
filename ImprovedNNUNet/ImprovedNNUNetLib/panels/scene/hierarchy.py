"""Subject-hierarchy placement of the nodes this package creates."""
from __future__ import annotations


def place_next_to(node, anchor_node) -> None:
    """Put ``node`` under the same subject-hierarchy parent (e.g. the study) as ``anchor_node``.

    Without an item for the anchor (a scene built without Slicer's subject-hierarchy
    plugins) the node goes to the scene level.
    """
    import slicer

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene())
    anchor_item = hierarchy.GetItemByDataNode(anchor_node)
    parent = hierarchy.GetItemParent(anchor_item) if anchor_item else hierarchy.GetSceneItemID()
    item = hierarchy.GetItemByDataNode(node)
    if item:
        hierarchy.SetItemParent(item, parent)
    else:
        hierarchy.CreateItem(parent, node)
