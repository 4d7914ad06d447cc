"""Evaluating a segmentation node against a reference node with the evaluation engine.

The prediction's segments define the labels (name and value, see `labelmaps`); the
reference is matched to them by name, then value (see `reference`). Metrics and error
maps are computed on the reference grid; a prediction on another grid is resampled by
the engine, which says so in the notes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation import CaseMetrics, compute_metrics, error_maps
from ImprovedNNUNetLib.evaluation.options import InstanceOptions, metric_options
from ImprovedNNUNetLib.panels.scene.error_segmentation import add_error_segmentation
from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
from ImprovedNNUNetLib.panels.scene.lesion_table import lesion_rows
from ImprovedNNUNetLib.panels.scene.metrics_table import add_metrics_table, fill_metrics_table
from ImprovedNNUNetLib.panels.scene.reference import ReferenceLabels, reference_labels


@dataclass
class MatchedNodes:
    """A prediction node and a reference node as label images with their common labels."""

    prediction: Image
    reference: ReferenceLabels
    labels: dict[str, int]  # labels of the prediction that the reference has, name -> value
    notes: list[str] = field(default_factory=list)


@dataclass
class SceneEvaluation(MatchedNodes):
    """Metrics of a prediction node against a reference node, and how labels were matched."""

    metrics: CaseMetrics | None = None

    def as_dict(self) -> dict[str, dict]:
        """``{label name: {metric key: value, ..., "tau_mm": τ}}``; distances in mm, volumes in ml."""
        return {name: metrics for name, _, metrics in self.rows()}

    def lesion_rows(self) -> list[dict]:
        """One row per lesion (matched, missed, false) with its centre in RAS mm; empty without lesion metrics."""
        return lesion_rows(self.metrics, {value: name for name, value in self.labels.items()})

    def rows(self) -> list[tuple[str, int, dict]]:
        """(label name, label value, metrics dict) per evaluated label, in value order."""
        names = {value: name for name, value in self.labels.items()}
        return [
            (names[value], value, {**self.metrics[value].to_dict(), "tau_mm": self.metrics[value].tau_mm})
            for value in sorted(self.metrics.labels)
        ]


def prediction_labels(prediction_node) -> tuple[Image, dict[str, int]]:
    """A segmentation node's label image (own reference geometry) and its labels (name -> value)."""
    if prediction_node is None or not prediction_node.IsA("vtkMRMLSegmentationNode"):
        raise UserError("no segmentation selected to evaluate; select the output segmentation of a model")
    infos = segment_infos(prediction_node)
    if not infos:
        raise UserError(f"segmentation '{prediction_node.GetName()}' has no segments; segment a volume first")
    return export_label_image(prediction_node, infos), {info.name: info.value for info in infos}


def match_nodes(prediction_node, reference_node) -> MatchedNodes:
    """Both nodes as label images in the prediction's values; notes say what did not match."""
    prediction, labels = prediction_labels(prediction_node)
    reference = reference_labels(reference_node, labels)
    evaluated = {m.label_name: m.value for m in reference.matches}
    notes = [line for line in reference.report().splitlines() if line]
    return MatchedNodes(prediction, reference, evaluated, notes)


def tolerances(labels: dict[str, int], tau_mm: float, tau_per_label: Mapping[str, float] | None):
    """The engine's ``tau_mm`` argument: one number, or per label value with ``tau_mm`` as default."""
    if not tau_per_label:
        return float(tau_mm)
    unknown = [name for name in tau_per_label if name not in labels]
    if unknown:
        raise UserError(f"NSD tolerance given for {', '.join(unknown)}, which is not an evaluated label; "
                        f"use one of {', '.join(labels)}")
    return {value: float(tau_per_label.get(name, tau_mm)) for name, value in labels.items()}


def evaluate_nodes(prediction_node, reference_node, tau_mm: float = 1.0,
                   tau_per_label: Mapping[str, float] | None = None, lesions: bool = False) -> SceneEvaluation:
    """Metrics of every prediction label that the reference has (the evaluation metrics, mm, ml).

    ``tau_mm``: NSD tolerance in mm; ``tau_per_label``: ``{label name: τ}`` for labels
    that need another one; ``lesions``: also the lesion-wise metrics (see ``SceneEvaluation.lesion_rows``).
    """
    matched = match_nodes(prediction_node, reference_node)
    taus = tolerances(matched.labels, tau_mm, tau_per_label)
    options = metric_options(None, None, instances_on=lesions)[0]
    metrics = compute_metrics(matched.prediction, matched.reference.image, matched.labels, taus, options)
    return SceneEvaluation(matched.prediction, matched.reference, matched.labels,
                           matched.notes + list(metrics.notes), metrics)


def metrics_table(evaluation: SceneEvaluation, scene, name: str, table_node=None):
    """The evaluation as a table node (one row per label); fills ``table_node`` when given."""
    if table_node is None:
        return add_metrics_table(scene, evaluation.rows(), name)
    fill_metrics_table(table_node, evaluation.rows())
    return table_node


def show_errors(prediction_node, reference_node, lesions: bool = False):
    """Segmentation "<prediction> errors": FP and FN segments per common label, on the reference grid; with
    ``lesions`` whole missed and false lesions are segments of their own, in their own colours."""
    matched = match_nodes(prediction_node, reference_node)
    maps = error_maps(matched.prediction, matched.reference.image, matched.labels,
                      lesions=InstanceOptions() if lesions else None)
    images = maps.images()
    names = {value: name for name, value in matched.labels.items()}
    return add_error_segmentation(prediction_node, images["FP"], images["FN"], names,
                                  images.get("missed"), images.get("false"))
