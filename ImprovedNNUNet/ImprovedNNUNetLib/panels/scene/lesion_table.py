"""Lesion-wise results -> a vtkMRMLTableNode (one row per lesion), and centring the slice views on a lesion.

Rows: missed, false and matched lesions of every evaluated label in the order to review them (missed ones, largest
first; then false ones, largest first; then matched ones, worst Dice first), with Dice, volumes, HD95 and the lesion's
centre in RAS millimetres (the scene's coordinates; the evaluation's physical points are LPS, as in ITK).
"""
from __future__ import annotations

import math

from ImprovedNNUNetLib.core.errors import UserError

# (header, unit, description)
LESION_COLUMNS = (
    ("Segment", "", "label the lesion belongs to"),
    ("Lesion", "", "number of the lesion in this table"),
    ("Kind", "", "matched (found), missed (reference lesion without a match) or false (predicted, no match)"),
    ("Dice", "", "Dice of the matched pair; 0 for missed and false lesions"),
    ("Reference volume (ml)", "ml", "volume of the reference lesion"),
    ("Predicted volume (ml)", "ml", "volume of the predicted lesion"),
    ("HD95 (mm)", "mm", "95th-percentile Hausdorff distance of the matched pair"),
    ("R (mm)", "mm", "centre of the lesion, right"),
    ("A (mm)", "mm", "centre of the lesion, anterior"),
    ("S (mm)", "mm", "centre of the lesion, superior"),
)
TEXT_COLUMNS = ("Segment", "Kind")


REVIEW_ORDER = {"missed": 0, "false": 1, "matched": 2}


def _review_key(row: dict) -> tuple:
    """Missed lesions first (largest first), then false ones (largest first), then matched ones (worst Dice
    first): the order in which to look at them."""
    size = row["Reference volume (ml)"] if row["Kind"] == "missed" else row["Predicted volume (ml)"]
    return REVIEW_ORDER.get(row["Kind"], 3), row["Dice"] if row["Kind"] == "matched" else -size


def lesion_rows(metrics, names: dict) -> list[dict]:
    """One dict per lesion of every evaluated label that has lesion results (``names``: value -> name), in
    review order (:func:`_review_key`), numbered in that order."""
    rows = []
    for value, m in metrics.labels.items():
        if m.instances is None:
            continue
        for lesion in m.instances.lesions:
            x, y, z = lesion.centre_mm if lesion.centre_mm else (math.nan,) * 3
            rows.append({"Segment": names.get(value, str(value)), "Kind": lesion.kind,
                         "Dice": lesion.dice, "Reference volume (ml)": lesion.volume_ref_ml,
                         "Predicted volume (ml)": lesion.volume_pred_ml, "HD95 (mm)": lesion.hd95,
                         "R (mm)": -x, "A (mm)": -y, "S (mm)": z})
    rows.sort(key=_review_key)  # stable: lesions of equal rank keep the evaluation's order
    return [{"Lesion": number, **row} for number, row in enumerate(rows, 1)]


def fill_lesion_table(table_node, rows: list[dict]) -> None:
    """Replace the table's content with ``rows`` (see :func:`lesion_rows`)."""
    import vtk

    table = table_node.GetTable()
    table.Initialize()
    for header, unit, description in LESION_COLUMNS:
        column = vtk.vtkStringArray() if header in TEXT_COLUMNS else (
            vtk.vtkIntArray() if header == "Lesion" else vtk.vtkDoubleArray())
        column.SetName(header)
        for row in rows:
            value = row[header]
            column.InsertNextValue(value if header in TEXT_COLUMNS else (int(value) if header == "Lesion"
                                                                          else float(value)))
        table.AddColumn(column)
    for header, unit, description in LESION_COLUMNS:
        table_node.SetColumnUnitLabel(header, unit)
        table_node.SetColumnDescription(header, description)
    table_node.Modified()


def lesion_table(scene, rows: list[dict], name: str, table_node=None):
    """The lesion rows in ``table_node``, or in a new table node of ``scene``."""
    node = table_node if table_node is not None else scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    fill_lesion_table(node, rows)
    return node


def lesion_centre(table_node, row: int) -> tuple[float, float, float]:
    """The RAS centre (mm) of the lesion in ``row`` of a lesion table."""
    table = table_node.GetTable() if table_node is not None else None
    if table is None or not 0 <= row < table.GetNumberOfRows():
        raise UserError("no such lesion in the table; compute metrics with lesion-wise metrics on first")
    columns = {table.GetColumn(i).GetName(): table.GetColumn(i) for i in range(table.GetNumberOfColumns())}
    try:
        return tuple(float(columns[f"{axis} (mm)"].GetValue(row)) for axis in "RAS")
    except KeyError:
        raise UserError(f"table '{table_node.GetName()}' is not a lesion table (no R/A/S columns)") from None


def jump_to_lesion(table_node, row: int) -> tuple[float, float, float]:
    """Centre every slice view of the table's scene on the lesion in ``row``; returns its RAS centre."""
    from slicer import vtkMRMLSliceNode

    centre = lesion_centre(table_node, row)
    if not all(math.isfinite(c) for c in centre):
        raise UserError("this lesion has no position; compute metrics again")
    vtkMRMLSliceNode.JumpAllSlices(table_node.GetScene(), *centre, vtkMRMLSliceNode.CenteredJumpSlice)
    return centre
