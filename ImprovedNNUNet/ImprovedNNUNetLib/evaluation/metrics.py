"""All metrics for all labels of one case in one call.

Each label is measured inside the bounding box of its prediction and reference
voxels (plus one background layer), so the cost follows the size of the structures,
not of the image; surface distances are searched among surface points only.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation import distances, overlap
from ImprovedNNUNetLib.evaluation.cldice import cldice
from ImprovedNNUNetLib.evaluation.crops import label_boxes, padded_mask, structure_box, union_box
from ImprovedNNUNetLib.evaluation.empty import status_of, surface_metrics_when_empty
from ImprovedNNUNetLib.evaluation.geometry import align_to_reference
from ImprovedNNUNetLib.evaluation.instances import instance_metrics
from ImprovedNNUNetLib.evaluation.labels import label_pair, resolve_labels, resolve_tau
from ImprovedNNUNetLib.evaluation.options import MetricOptions
from ImprovedNNUNetLib.evaluation.results import STATUS_OK, CaseMetrics, LabelMetrics


def compute_metrics(pred: Image, ref: Image, labels=None, tau_mm: float | Mapping = 1.0,
                    options: MetricOptions | None = None) -> CaseMetrics:
    """Metrics of every label of ``pred`` against ``ref``, distances in mm from the image spacing.

    ``labels``: None (every non-zero value present in either image), an iterable of
    label values, or ``{name: value}``. ``tau_mm``: NSD tolerance, one float or a dict
    keyed by label value or name. A prediction on another grid is resampled to the
    reference grid (nearest neighbour; ``resampled`` and ``notes`` of the result say
    so); grids that do not overlap raise ``UserError``. ``options`` chooses the metric groups (default: overlap,
    distances, NSD) and the lesion settings; lesion centres get their physical (x, y, z) mm position.
    """
    aligned, note = align_to_reference(pred, ref)
    result = compute_metrics_arrays(aligned.array, ref.array, tuple(ref.spacing)[::-1], labels, tau_mm, options)
    for m in result.labels.values():
        for lesion in (m.instances.lesions if m.instances is not None else ()):
            lesion.centre_mm = physical_point(ref, lesion.centre_index)
    if note:
        result.resampled = True
        result.notes.append(note)
    return result


def physical_point(image: Image, index_zyx) -> tuple[float, float, float]:
    """Physical (x, y, z) mm of a continuous (z, y, x) array index of ``image``."""
    direction = np.asarray(image.direction, dtype=float).reshape(3, 3)
    xyz = np.asarray(index_zyx, dtype=float)[::-1] * np.asarray(image.spacing, dtype=float)
    return tuple(float(v) for v in direction @ xyz + np.asarray(image.origin, dtype=float))


def compute_metrics_arrays(
    pred: np.ndarray, ref: np.ndarray, spacing, labels=None, tau_mm: float | Mapping = 1.0,
    options: MetricOptions | None = None,
) -> CaseMetrics:
    """As :func:`compute_metrics` for two label arrays on the same grid.

    ``spacing`` gives the voxel size in mm along each array axis, in array axis order
    (for (z, y, x) arrays that is (sz, sy, sx)).
    """
    pred, ref = label_pair(pred, ref)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise UserError(f"spacing must be 3 positive numbers (mm per array axis), got {spacing}")
    notes = []
    flat = planar_axis(pred.shape)
    if flat is not None:  # a one-slice image is a 2-D image: boundaries, distances and NSD in its plane
        pred, ref = np.squeeze(pred, flat), np.squeeze(ref, flat)
        spacing = tuple(s for axis, s in enumerate(spacing) if axis != flat)
        notes.append(PLANAR_NOTE)
    pred_boxes, ref_boxes = label_boxes(pred), label_boxes(ref)
    if labels is None:
        check_label_image(pred_boxes.keys(), ref_boxes.keys())
    names = resolve_labels(labels, pred_boxes.keys() | ref_boxes.keys())
    taus = resolve_tau(tau_mm, names)
    options = options or MetricOptions()
    per_label = {
        key: _label_metrics(pred, ref, key, name, structure_box(pred_boxes, ref_boxes, key), spacing, taus[key],
                            options)
        for key, name in names.items()
    }
    if flat is not None:  # lesion centres back in the indices of the one-slice 3-D array
        for m in per_label.values():
            for lesion in (m.instances.lesions if m.instances is not None else ()):
                lesion.centre_index = (*lesion.centre_index[:flat], 0.0, *lesion.centre_index[flat:])
    return CaseMetrics(per_label, notes=notes, pixel_accuracy=pixel_accuracy(pred, ref, pred_boxes, ref_boxes))


def pixel_accuracy(pred, ref, pred_boxes, ref_boxes) -> float:
    """Fraction of voxels with the same value in both images; outside the box of all labels both are 0."""
    if not pred.size:
        return float("nan")
    box = None
    for boxes in (pred_boxes, ref_boxes):
        for b in boxes.values():
            box = union_box(box, b)
    if box is None:
        return 1.0
    inside = int(np.prod([s.stop - s.start for s in box]))
    return float(np.count_nonzero(pred[box] == ref[box]) + pred.size - inside) / pred.size


PLANAR_NOTE = ("one-slice image, evaluated in 2-D: 4-connected boundaries, distances in the plane, NSD from "
               "contour lengths, VolumeRef_ml/VolumePred_ml hold areas in mm²")


def planar_axis(shape) -> int | None:
    """The axis of a one-slice (2-D) image: the only axis of length 1 while the others are longer."""
    flat = [axis for axis, n in enumerate(shape) if n == 1]
    return flat[0] if len(flat) == 1 else None


MAX_LABELS_NOT_IN_REFERENCE = 255


def check_label_image(pred_values, ref_values) -> None:
    """UserError when the prediction holds so many values the reference lacks that it must be an
    intensity image (a CT or MR given in place of a segmentation)."""
    extra = sorted(set(pred_values) - set(ref_values))
    if len(extra) > MAX_LABELS_NOT_IN_REFERENCE:
        raise UserError(
            f"the prediction holds {len(extra) + len(set(pred_values) & set(ref_values))} distinct values "
            f"({len(extra)} of them not in the reference, e.g. {', '.join(map(str, extra[:3]))}, ...): it looks like an "
            "intensity image, not a segmentation; pass the predicted label image (or list the labels with --labels)")


def _label_metrics(pred, ref, key, name, box, spacing, tau, options: MetricOptions) -> LabelMetrics:
    if box is None:
        counts = overlap.Counts(0, 0, 0, pred.size)
        p = g = None
    else:
        p = padded_mask(pred, box, key)
        g = padded_mask(ref, box, key)
        counts = overlap.Counts.of(p, g, pred.size)
    status = status_of(counts)
    if status == STATUS_OK:
        surface = distances.surface_metrics(p, g, spacing, tau, boundary=options.has("distance"),
                                            nsd=options.has("nsd"))
    else:
        surface = surface_metrics_when_empty(status)
        for group, keys in (("distance", ("hd", "hd95", "hd99_9", "assd")), ("nsd", ("nsd",))):
            if not options.has(group):
                surface.update(dict.fromkeys(keys, float("nan")))
    extra = {}
    if options.has("cldice"):
        extra["cldice"] = cldice(p, g) if p is not None else 1.0
    if options.has("instances"):
        inner = tuple(slice(1, -1) for _ in range(pred.ndim))
        empty = np.zeros((1,) * pred.ndim, bool)
        extra["instances"] = instance_metrics(
            p[inner] if p is not None else empty, g[inner] if g is not None else empty, spacing, tau,
            options.instances, options.groups, offset=box)
    return LabelMetrics(
        label=key,
        name=name,
        dice=overlap.dice(counts),
        iou=overlap.iou(counts),
        sensitivity=overlap.sensitivity(counts),
        specificity=overlap.specificity(counts),
        accuracy=overlap.accuracy(counts),
        mcc=overlap.mcc(counts),
        rvd=overlap.rvd(counts),
        volume_ref_ml=overlap.volume_ml(counts.ref, spacing),
        volume_pred_ml=overlap.volume_ml(counts.pred, spacing),
        status=status,
        tau_mm=tau,
        **surface,
        **extra,
    )
