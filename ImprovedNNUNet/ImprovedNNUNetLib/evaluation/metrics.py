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
from ImprovedNNUNetLib.evaluation import distances, overlap, surfaces
from ImprovedNNUNetLib.evaluation.crops import label_boxes, padded_mask, union_box
from ImprovedNNUNetLib.evaluation.empty import status_of, surface_metrics_when_empty
from ImprovedNNUNetLib.evaluation.geometry import align_to_reference
from ImprovedNNUNetLib.evaluation.labels import label_pair, resolve_labels, resolve_tau
from ImprovedNNUNetLib.evaluation.results import STATUS_OK, CaseMetrics, LabelMetrics


def compute_metrics(pred: Image, ref: Image, labels=None, tau_mm: float | Mapping = 1.0) -> CaseMetrics:
    """Metrics of every label of ``pred`` against ``ref``, distances in mm from the image spacing.

    ``labels``: None (every non-zero value present in either image), an iterable of
    label values, or ``{name: value}``. ``tau_mm``: NSD tolerance, one float or a dict
    keyed by label value or name. A prediction on another grid is resampled to the
    reference grid (nearest neighbour; ``resampled`` and ``notes`` of the result say
    so); grids that do not overlap raise ``UserError``.
    """
    aligned, note = align_to_reference(pred, ref)
    result = compute_metrics_arrays(aligned.array, ref.array, tuple(ref.spacing)[::-1], labels, tau_mm)
    if note:
        result.resampled = True
        result.notes.append(note)
    return result


def compute_metrics_arrays(
    pred: np.ndarray, ref: np.ndarray, spacing, labels=None, tau_mm: float | Mapping = 1.0
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
    per_label = {
        value: _label_metrics(
            pred, ref, value, name, union_box(pred_boxes.get(value), ref_boxes.get(value)), spacing, taus[value]
        )
        for value, name in names.items()
    }
    return CaseMetrics(per_label, notes=notes, pixel_accuracy=float(np.count_nonzero(pred == ref)) / pred.size
                       if pred.size else float("nan"))


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


def _label_metrics(pred, ref, value, name, box, spacing, tau) -> LabelMetrics:
    if box is None:
        counts = overlap.Counts(0, 0, 0, pred.size)
        p = g = None
    else:
        p = padded_mask(pred, box, value)
        g = padded_mask(ref, box, value)
        counts = overlap.Counts.of(p, g, pred.size)
    status = status_of(counts)
    surface = _surface_metrics(p, g, spacing, tau) if status == STATUS_OK else surface_metrics_when_empty(status)
    return LabelMetrics(
        label=value,
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
    )


def _surface_metrics(p: np.ndarray, g: np.ndarray, spacing, tau: float) -> dict:
    edge_p, edge_g = surfaces.boundary_surface(p), surfaces.boundary_surface(g)
    d_pg = distances.directed_distances(edge_p.points, edge_g.points, edge_g.mask, spacing)
    d_gp = distances.directed_distances(edge_g.points, edge_p.points, edge_p.mask, spacing)
    surf_p, surf_g = surfaces.surfel_surface(p, spacing), surfaces.surfel_surface(g, spacing)
    s_pg = distances.directed_distances(surf_p.points, surf_g.points, surf_g.mask, spacing, within_mm=tau)
    s_gp = distances.directed_distances(surf_g.points, surf_p.points, surf_p.mask, spacing, within_mm=tau)
    return {
        "hd": distances.hausdorff(d_pg, d_gp, 100.0),
        "hd95": distances.hausdorff(d_pg, d_gp, 95.0),
        "hd99_9": distances.hausdorff(d_pg, d_gp, 99.9),
        "assd": distances.assd(d_pg, d_gp),
        "nsd": distances.surface_dice(s_pg, surf_p.areas, s_gp, surf_g.areas, tau),
    }
