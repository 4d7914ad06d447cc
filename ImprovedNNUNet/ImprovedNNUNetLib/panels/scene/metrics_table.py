"""Per-label metrics -> a vtkMRMLTableNode (one row per label) and its CSV export.

Columns are the evaluation's metric keys with their units in the headers; the table node also
carries each unit as the column's unit label.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified

# (metric key, column header, unit, description)
METRIC_COLUMNS = (
    ("Dice", "Dice", "", "2|P∩G| / (|P|+|G|)"),
    ("IoU", "IoU", "", "|P∩G| / |P∪G|"),
    ("Sensitivity", "Sensitivity", "", "TP / (TP+FN)"),
    ("Specificity", "Specificity", "", "TN / (TN+FP) over the whole image"),
    ("HD", "HD (mm)", "mm", "Hausdorff distance (maximum)"),
    ("HD95", "HD95 (mm)", "mm", "95th-percentile Hausdorff distance"),
    ("HD99.9", "HD99.9 (mm)", "mm", "99.9th-percentile Hausdorff distance"),
    ("ASSD", "ASSD (mm)", "mm", "average symmetric surface distance"),
    ("NSD", "NSD", "", "normalised surface Dice at the tolerance"),
    ("tau_mm", "NSD tolerance (mm)", "mm", "tolerance of the NSD"),
    ("Accuracy", "Accuracy", "", "(TP+TN) / all voxels of the image"),
    ("MCC", "MCC", "", "Matthews correlation coefficient"),
    ("RVD", "RVD", "", "relative volume difference (|P|-|G|) / |G|"),
    ("VolumeRef_ml", "Reference volume (ml)", "ml", "volume of the reference segment"),
    ("VolumePred_ml", "Predicted volume (ml)", "ml", "volume of the predicted segment"),
)
SEGMENT_HEADER = "Segment"
VALUE_HEADER = "Label value"
STATUS_HEADER = "Status"


def _number(value) -> float:
    return math.nan if value is None else float(value)


def fill_metrics_table(table_node, rows: list[tuple[str, int, dict]]) -> None:
    """Replace the table's content: one row per (label name, label value, metrics dict)."""
    import vtk

    table = table_node.GetTable()
    table.Initialize()
    names = vtk.vtkStringArray()
    names.SetName(SEGMENT_HEADER)
    values = vtk.vtkIntArray()
    values.SetName(VALUE_HEADER)
    status = vtk.vtkStringArray()
    status.SetName(STATUS_HEADER)
    numbers = []
    for _, header, _, _ in METRIC_COLUMNS:
        column = vtk.vtkDoubleArray()
        column.SetName(header)
        numbers.append(column)
    for name, value, metrics in rows:
        names.InsertNextValue(name)
        values.InsertNextValue(int(value))
        status.InsertNextValue(str(metrics.get("status", "")))
        for (key, _, _, _), column in zip(METRIC_COLUMNS, numbers):
            column.InsertNextValue(_number(metrics.get(key)))
    for column in (names, values, *numbers, status):
        table.AddColumn(column)
    for _, header, unit, description in METRIC_COLUMNS:
        table_node.SetColumnUnitLabel(header, unit)
        table_node.SetColumnDescription(header, description)
    table_node.Modified()


def add_metrics_table(scene, rows: list[tuple[str, int, dict]], name: str):
    """New table node in ``scene`` filled by `fill_metrics_table`."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    fill_metrics_table(node, rows)
    return node


def table_columns(table_node) -> list[tuple[str, list]]:
    """(header, values) per column of a table node, numbers as floats."""
    table = table_node.GetTable()
    columns = []
    for index in range(table.GetNumberOfColumns()):
        column = table.GetColumn(index)
        cells = [column.GetValue(row) for row in range(table.GetNumberOfRows())]
        columns.append((column.GetName(), cells))
    return columns


def write_table_csv(table_node, path: str | Path, overwrite: bool = False) -> Path:
    """Write a table node as CSV (headers with units); refuses to replace a file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; choose another file name or allow overwriting explicitly")
    columns = table_columns(table_node)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow([header for header, _ in columns])
    writer.writerows(zip(*(cells for _, cells in columns)))
    return write_text_verified(path, handle.getvalue())
