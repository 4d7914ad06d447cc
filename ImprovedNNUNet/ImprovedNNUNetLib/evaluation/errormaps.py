"""Mis-segmentation maps: where the prediction is wrong, per label and error type.

For label n: false positives FP_n = P_n ∖ G_n, false negatives FN_n = G_n ∖ P_n, on the
reference grid. Every voxel has one predicted and one reference label, so all FP maps
fit in one label image (the wrongly predicted label) and all FN maps in another (the
missed reference label). The MSF region (mis-segmentation focus, as in the MSF loss) is
the union over labels of dilate(P_n XOR G_n), dilated by a ball of ``radius`` voxels (the
voxels whose index offset has Euclidean length ≤ radius), as the MSF trainer does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation.crops import foreground_box, present_labels
from ImprovedNNUNetLib.evaluation.geometry import align_to_reference
from ImprovedNNUNetLib.evaluation.labels import isin_labels, label_pair, resolve_labels
from ImprovedNNUNetLib.evaluation.options import InstanceOptions

DEFAULT_MSF_RADIUS = 2


@dataclass
class ErrorMaps:
    """FP and FN maps of the evaluated labels; arrays are (z, y, x) on the reference grid.

    ``fp_labels``: at each false-positive voxel the predicted label, else 0.
    ``fn_labels``: at each false-negative voxel the reference label, else 0.
    ``msf_region``: boolean MSF region, or None when not asked for.
    ``reference``: geometry of the maps (None when made from bare arrays).
    """

    fp_labels: np.ndarray
    fn_labels: np.ndarray
    labels: dict[int, str | None]
    msf_region: np.ndarray | None = None
    reference: Image | None = None
    resample_note: str | None = None
    # with lesions: the label at voxels of missed reference lesions / of false predicted lesions (whole lesions
    # without a match, see ``instances``); fp_labels and fn_labels then hold the other (boundary) errors only
    missed_labels: np.ndarray | None = None
    false_labels: np.ndarray | None = None

    def fp(self, label: int) -> np.ndarray:
        """Boolean false-positive mask of one label (prediction minus reference)."""
        return self.fp_labels == self._known(label)

    def fn(self, label: int) -> np.ndarray:
        """Boolean false-negative mask of one label (reference minus prediction)."""
        return self.fn_labels == self._known(label)

    def images(self) -> dict[str, Image]:
        """``{"FP": Image, "FN": Image[, "MSF": Image]}`` in the reference geometry."""
        if self.reference is None:
            raise UserError("these error maps were made from arrays without geometry; use error_maps() with Images")
        out = {"FP": self.reference.with_array(self.fp_labels), "FN": self.reference.with_array(self.fn_labels)}
        if self.missed_labels is not None:
            out["missed"] = self.reference.with_array(self.missed_labels)
            out["false"] = self.reference.with_array(self.false_labels)
        if self.msf_region is not None:
            out["MSF"] = self.reference.with_array(self.msf_region.view(np.uint8))
        return out

    def _known(self, label: int) -> int:
        if label not in self.labels:
            raise UserError(f"label {label} was not evaluated; use one of {sorted(self.labels)}")
        return label


def error_maps(pred: Image, ref: Image, labels=None, msf_radius: int | None = None,
               lesions: InstanceOptions | None = None) -> ErrorMaps:
    """FP/FN maps of ``pred`` against ``ref`` on the reference grid.

    ``labels`` as in :func:`compute_metrics`; ``msf_radius`` (voxels, e.g. 2) adds the
    MSF region; ``lesions`` (lesion settings) sets whole missed and false lesions apart from the
    boundary errors. A prediction on another grid is resampled (nearest neighbour) first.
    """
    aligned, note = align_to_reference(pred, ref)
    maps = error_maps_arrays(aligned.array, ref.array, labels, msf_radius, lesions)
    maps.reference = ref
    maps.resample_note = note
    return maps


def error_maps_arrays(pred: np.ndarray, ref: np.ndarray, labels=None, msf_radius: int | None = None,
                      lesions: InstanceOptions | None = None) -> ErrorMaps:
    """As :func:`error_maps` for two label arrays on the same grid."""
    pred, ref = label_pair(pred, ref)
    names = resolve_labels(labels, present_labels(pred, ref) if labels is None else ())
    names = {k: n for k, n in names.items() if not isinstance(k, tuple)}  # regions overlap: maps are per label
    evaluated = np.array(sorted(names), dtype=np.int64)
    wrong = pred != ref
    dtype = np.promote_types(pred.dtype, ref.dtype)
    # only the wrong voxels are looked at (few, on a full CT): their labels, kept where evaluated
    where = np.flatnonzero(wrong)
    fp_labels, fn_labels = np.zeros(pred.shape, dtype), np.zeros(ref.shape, dtype)
    for labels_out, source in ((fp_labels, pred), (fn_labels, ref)):
        found = source.ravel()[where]
        keep = isin_labels(found, evaluated)
        labels_out.ravel()[where[keep]] = found[keep]
    msf = None if msf_radius is None else msf_region(fp_labels != 0, fn_labels != 0, msf_radius)
    maps = ErrorMaps(fp_labels, fn_labels, names, msf)
    if lesions is not None:
        maps.missed_labels, maps.false_labels = lesion_error_maps(pred, ref, names, lesions)
        maps.fn_labels[maps.missed_labels != 0] = 0
        maps.fp_labels[maps.false_labels != 0] = 0
    return maps


def lesion_error_maps(pred: np.ndarray, ref: np.ndarray, labels, options: InstanceOptions):
    """(missed, false): label images of the reference lesions without a match and the predicted lesions
    without a match (the matching of :mod:`.instances`)."""
    from ImprovedNNUNetLib.evaluation.components import components
    from ImprovedNNUNetLib.evaluation.crops import label_boxes, structure_box
    from ImprovedNNUNetLib.evaluation.instances import match, overlaps

    dtype = np.promote_types(pred.dtype, ref.dtype)
    missed, false = np.zeros(ref.shape, dtype), np.zeros(pred.shape, dtype)
    pred_boxes, ref_boxes = label_boxes(pred), label_boxes(ref)
    for value in labels:
        box = structure_box(pred_boxes, ref_boxes, value)
        if box is None:
            continue
        g = components(ref[box] == value, options.connectivity)
        p = components(pred[box] == value, options.connectivity)
        matches = match(g, p, overlaps(g, p), options.match_iou)
        found_ref, found_pred = {i for i, _, _ in matches}, {j for _, j, _ in matches}
        for out, parts, found in ((missed, g, found_ref), (false, p, found_pred)):
            for index, part in enumerate(parts):
                if index not in found:
                    target = out[box][part.box]
                    target[part.mask] = value
    return missed, false


def ball(radius: int) -> np.ndarray:
    """Boolean ball structuring element: index offsets of Euclidean length ≤ ``radius``."""
    offsets = np.indices((2 * radius + 1,) * 3) - radius
    return (offsets**2).sum(axis=0) <= radius**2


def msf_region(fp: np.ndarray, fn: np.ndarray, radius: int = DEFAULT_MSF_RADIUS) -> np.ndarray:
    """Union of FP and FN voxels dilated by a ball of ``radius`` voxels.

    The dilation runs on the bounding box of the errors grown by ``radius`` only.
    """
    if int(radius) != radius or radius < 0:
        raise UserError(f"MSF dilation radius {radius} is invalid; give a whole number of voxels ≥ 0")
    radius = int(radius)
    errors = fp | fn
    box = foreground_box(errors)
    if box is None or radius == 0:
        return errors
    grown = tuple(slice(max(b.start - radius, 0), min(b.stop + radius, n)) for b, n in zip(box, errors.shape))
    region = np.zeros_like(errors)
    region[grown] = ndimage.binary_dilation(errors[grown], structure=ball(radius))
    return region
