"""The run comparison as a Slicer table node: the CSV's rows and columns."""
from __future__ import annotations

from ImprovedNNUNetTrainingLib.analysis.compare import CSV_COLUMNS, RunSummary

TEXT_COLUMNS = ("variant", "trainer", "plans", "configuration", "fold", "name")


def fill_comparison_table(table_node, summaries: list[RunSummary]) -> None:
    """Replace the table's content with one row per run, fold and label (numbers as numbers)."""
    import vtk

    rows = [row for summary in summaries for row in summary.csv_rows()]
    table = vtk.vtkTable()
    for column in CSV_COLUMNS:
        array = vtk.vtkStringArray() if column in TEXT_COLUMNS else vtk.vtkDoubleArray()
        array.SetName(column)
        for row in rows:
            # lesion columns are empty ("") unless the comparison had lesion metrics: NaN in the table
            array.InsertNextValue(str(row[column]) if column in TEXT_COLUMNS else
                                  float(row[column]) if row[column] != "" else float("nan"))
        table.AddColumn(array)
    table_node.SetAndObserveTable(table)
