"""Training curves as Slicer nodes: a table with one row per epoch, and plot charts of it.

``TrainingCurves`` keeps a ``vtkMRMLTableNode`` (columns ``epoch``, ``train_loss``,
``val_loss``, ``pseudo_dice``) and two ``vtkMRMLPlotChartNode`` s — losses (train and
validation) and pseudo Dice — each drawn from the table by ``vtkMRMLPlotSeriesNode`` s.
Feed it the progress events of a run: the ``training`` event that ends an epoch adds a row;
an epoch reported again (a resumed run repeats from its checkpoint) replaces the earlier row.
"""
from __future__ import annotations

import math

import numpy as np

COLUMNS = ("epoch", "train_loss", "val_loss", "pseudo_dice")
CHARTS = {"loss": ("train_loss", "val_loss"), "pseudo Dice": ("pseudo_dice",)}
SERIES_COLORS = {"train_loss": (0.0, 0.45, 0.74), "val_loss": (0.85, 0.33, 0.10), "pseudo_dice": (0.47, 0.67, 0.19)}


def event_value(value) -> float:
    """A curve value of an event: a number, the mean of a per-label list, NaN when missing."""
    if value is None:
        return math.nan
    if isinstance(value, (list, tuple)):
        values = [v for v in value if v is not None]
        return float(np.mean(values)) if values else math.nan
    return float(value)


def is_epoch_end(event: dict) -> bool:
    """True for the ``training`` event that closes an epoch (it carries the epoch's duration)."""
    return event.get("stage") == "training" and event.get("epoch") is not None and event.get("epoch_time_s") is not None


class TrainingCurves:
    """Table and plot chart nodes of one training run (one fold), updated per epoch."""

    def __init__(self, scene, name: str):
        import slicer

        remove_curve_nodes(scene, name)  # a second Train of the same variant and fold replaces the first's
        self.scene = scene
        self.rows: dict[int, tuple[float, float, float]] = {}
        self.table = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{name} curves")
        self._write_table()
        self.charts = {}
        self.series = {}
        for chart_name, columns in CHARTS.items():
            chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} {chart_name}")
            chart.SetTitle(f"{name}: {chart_name}")
            chart.SetXAxisTitle("epoch")
            chart.SetYAxisTitle(chart_name)
            for column in columns:
                series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{name} {column}")
                series.SetAndObserveTableNodeID(self.table.GetID())
                series.SetXColumnName("epoch")
                series.SetYColumnName(column)
                series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
                series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
                series.SetColor(*SERIES_COLORS[column])
                chart.AddAndObservePlotSeriesNodeID(series.GetID())
                self.series[column] = series
            self.charts[chart_name] = chart

    def add_event(self, event: dict) -> bool:
        """Take one progress event; True when it completed an epoch (a row was added or replaced)."""
        taken = self._take(event)
        if taken:
            self._write_table()
        return taken

    def add_events(self, events) -> int:
        """Take many events at once (e.g. a progress.jsonl read back); returns the epoch events taken."""
        taken = sum(self._take(event) for event in events)
        self._write_table()
        return taken

    def values(self, column: str) -> np.ndarray:
        """One column of the table node, in epoch order."""
        import slicer.util

        return np.array(slicer.util.arrayFromTableColumn(self.table, column), dtype=float)

    def _take(self, event: dict) -> bool:
        if not is_epoch_end(event):
            return False
        self.rows[int(event["epoch"])] = tuple(event_value(event.get(column)) for column in COLUMNS[1:])
        return True

    def _write_table(self) -> None:
        import slicer.util

        epochs = sorted(self.rows)
        data = np.array([(e, *self.rows[e]) for e in epochs], dtype=float).reshape(len(epochs), len(COLUMNS))
        slicer.util.updateTableFromArray(self.table, [data[:, i].copy() for i in range(len(COLUMNS))], list(COLUMNS))

    def remove(self) -> None:
        """Remove the table, series and chart nodes from the scene."""
        for node in [*self.series.values(), *self.charts.values(), self.table]:
            self.scene.RemoveNode(node)


def remove_curve_nodes(scene, name: str) -> int:
    """Remove the table, chart and series nodes that ``TrainingCurves(scene, name)`` made earlier; returns
    how many nodes were removed."""
    names = {f"{name} curves", *(f"{name} {chart}" for chart in CHARTS),
             *(f"{name} {column}" for columns in CHARTS.values() for column in columns)}
    classes = ("vtkMRMLTableNode", "vtkMRMLPlotChartNode", "vtkMRMLPlotSeriesNode")
    doomed = []
    for class_name in classes:
        nodes = scene.GetNodesByClass(class_name)
        nodes.UnRegister(None)
        for index in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(index)
            if node.GetName() in names:
                doomed.append(node)
    for node in doomed:
        scene.RemoveNode(node)
    return len(doomed)
