"""Segmentation evaluation: per-label metrics, mis-segmentation maps and summaries.

Public API:

* :func:`compute_metrics` (two :class:`~ImprovedNNUNetLib.core.imageio.Image`) and
  :func:`compute_metrics_arrays` (two arrays + spacing) → :class:`CaseMetrics`
  of :class:`LabelMetrics`;
* :func:`error_maps` / :func:`error_maps_arrays` → :class:`ErrorMaps`
  (per-label false positives / false negatives, optional MSF region);
* :func:`summarize` and :func:`write_summary` → ``summary.json`` and ``metrics.csv``;
* :func:`match_cases` pairs prediction and reference files by case id;
* :func:`metric_options` chooses metric groups and lesion settings (profiles ``organ``, ``lesion``,
  ``tubular``): lesion-wise results are ``LabelMetrics.instances``.
"""
from ImprovedNNUNetLib.evaluation.errormaps import ErrorMaps, error_maps, error_maps_arrays
from ImprovedNNUNetLib.evaluation.labelfiles import segment_names
from ImprovedNNUNetLib.evaluation.labels import labels_from_dataset_json
from ImprovedNNUNetLib.evaluation.metrics import compute_metrics, compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.options import InstanceOptions, MetricOptions, metric_options
from ImprovedNNUNetLib.evaluation.results import METRIC_KEYS, CaseMetrics, LabelMetrics

__all__ = [
    "compute_metrics",
    "compute_metrics_arrays",
    "CaseMetrics",
    "LabelMetrics",
    "METRIC_KEYS",
    "ErrorMaps",
    "error_maps",
    "error_maps_arrays",
    "labels_from_dataset_json",
    "segment_names",
    "metric_options",
    "MetricOptions",
    "InstanceOptions",
]
