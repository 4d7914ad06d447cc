"""Lesion-wise (instance) metrics of one label or region: which lesions were found, missed or invented.

Definitions (agreeing with panoptica's semantic → connected components → ``NaiveThresholdMatching`` →
evaluator pipeline, Kofler et al.):

* lesions are the connected components of the label in each image (:mod:`.components`);
* a predicted and a reference lesion are a match (TP) when their IoU is at least ``match_iou``; pairs are
  taken by decreasing IoU, each lesion matched once; unmatched reference lesions are missed (FN), unmatched
  predicted lesions are false (FP);
* sensitivity = TP / reference lesions, precision = TP / predicted lesions, F1 = RQ = TP / (TP + (FP + FN)/2);
  SQ = mean IoU of the matches, SQ_Dice their mean Dice, PQ = SQ × RQ; with no match but some lesion SQ = 0,
  with no lesion at all every ratio is NaN;
* per lesion: Dice, IoU, HD95, ASSD and NSD of the matched pair (this project's definitions, see
  :mod:`.distances`), the volumes and the centre of mass; a missed or false lesion has Dice 0 and infinite
  distances;
* BraTS-style lesion-wise Dice (the BraTS 2023 challenges' definition): reference lesions are dilated for
  matching and lesions whose dilations touch are one lesion; every predicted lesion touching a reference
  lesion's dilation counts for it; reference lesions of at most ``brats_min_volume_mm3`` are left out;
  score = Σ Dice of the reference lesions / (their number + the predicted lesions that touch none); 1 when
  both are empty.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ImprovedNNUNetLib.evaluation import distances, overlap
from ImprovedNNUNetLib.evaluation.components import Component, components
from ImprovedNNUNetLib.evaluation.options import InstanceOptions

MATCHED, MISSED, FALSE = "matched", "missed", "false"
NAN, INF = float("nan"), float("inf")


@dataclass
class Lesion:
    """One row of lesions.csv: a matched pair, a missed reference lesion or a false predicted lesion."""

    kind: str
    ref_id: int | None  # numbers of the lesions among the reference's / prediction's lesions of the label (1..n)
    pred_id: int | None
    volume_ref_ml: float
    volume_pred_ml: float
    dice: float
    iou: float
    hd95: float
    assd: float
    nsd: float
    centre_index: tuple[float, ...]  # array indices (of the evaluated array), centre of mass
    centre_mm: tuple[float, ...] | None = None  # physical (x, y, z) mm, filled in where the geometry is known


@dataclass
class InstanceMetrics:
    """Lesion-wise results of one label of one case."""

    n_ref: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    sensitivity: float
    precision: float
    f1: float
    sq: float
    sq_dice: float
    pq: float
    brats_dice: float
    brats_n_ref: int  # reference lesions counted by the BraTS-style score (after joining and the size rule)
    brats_fp: int
    detection: list[dict] = field(default_factory=list)  # per size bin: low_ml, high_ml, n_ref, detected
    lesions: list[Lesion] = field(default_factory=list)

    SUMMARY_KEYS = ("n_ref", "n_pred", "tp", "fp", "fn", "sensitivity", "precision", "f1", "sq", "sq_dice", "pq",
                    "brats_dice")

    def to_dict(self) -> dict:
        out = {key: getattr(self, key) for key in self.SUMMARY_KEYS}
        out["detection_by_size"] = [dict(d) for d in self.detection]
        return out


def _ratio(num: float, den: float) -> float:
    return num / den if den else NAN


def overlaps(ref: list[Component], pred: list[Component]) -> dict[tuple[int, int], int]:
    """{(reference index, predicted index): shared voxels} for every pair that shares a voxel."""
    out: dict[tuple[int, int], int] = {}
    if not ref or not pred:
        return out
    starts = np.array([[s.start for s in c.box] for c in pred])
    stops = np.array([[s.stop for s in c.box] for c in pred])
    for i, g in enumerate(ref):
        low = np.array([s.start for s in g.box])
        high = np.array([s.stop for s in g.box])
        hits = np.flatnonzero(np.all((starts < high) & (stops > low), axis=1))
        for j in hits:
            p = pred[j]
            sub = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(g.box, p.box))
            gm = g.mask[tuple(slice(s.start - a.start, s.stop - a.start) for s, a in zip(sub, g.box))]
            pm = p.mask[tuple(slice(s.start - a.start, s.stop - a.start) for s, a in zip(sub, p.box))]
            shared = int(np.count_nonzero(gm & pm))
            if shared:
                out[(i, int(j))] = shared
    return out


def match(ref: list[Component], pred: list[Component], shared: dict, threshold: float) -> list[tuple[int, int, float]]:
    """One-to-one matches (reference index, predicted index, IoU): greedily by decreasing IoU, IoU ≥ threshold."""
    candidates = []
    for (i, j), both in shared.items():
        iou = both / (ref[i].size + pred[j].size - both)
        if iou >= threshold:
            candidates.append((-iou, i, j))
    candidates.sort()
    used_ref, used_pred, out = set(), set(), []
    for negative, i, j in candidates:
        if i not in used_ref and j not in used_pred:
            used_ref.add(i)
            used_pred.add(j)
            out.append((i, j, -negative))
    return out


def _pair_masks(g: Component, p: Component):
    """The two lesions as padded masks over the union of their boxes."""
    box = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(g.box, p.box))
    return np.pad(g.within(box), 1), np.pad(p.within(box), 1)


def _volume(voxels: int, spacing) -> float:
    return overlap.volume_ml(voxels, spacing)


def lesion_rows(ref, pred, matches, shared, spacing, tau, groups) -> list[Lesion]:
    rows = []
    matched_ref = {i: (j, iou) for i, j, iou in matches}
    matched_pred = {j for _, j, _ in matches}
    for i, g in enumerate(ref):
        if i in matched_ref:
            j, iou = matched_ref[i]
            p = pred[j]
            gm, pm = _pair_masks(g, p)
            both = shared[(i, j)]
            surface = distances.surface_metrics(pm, gm, spacing, tau, boundary="distance" in groups,
                                                nsd="nsd" in groups)
            rows.append(Lesion(MATCHED, i + 1, j + 1, _volume(g.size, spacing), _volume(p.size, spacing),
                               2 * both / (g.size + p.size), iou, surface["hd95"], surface["assd"], surface["nsd"],
                               g.centre()))
        else:
            rows.append(Lesion(MISSED, i + 1, None, _volume(g.size, spacing), 0.0, 0.0, 0.0, INF, INF, 0.0,
                               g.centre()))
    for j, p in enumerate(pred):
        if j not in matched_pred:
            rows.append(Lesion(FALSE, None, j + 1, 0.0, _volume(p.size, spacing), 0.0, 0.0, INF, INF, 0.0,
                               p.centre()))
    return rows


def detection_by_size(rows: list[Lesion], edges) -> list[dict]:
    """Reference lesions per size bin and how many of them were matched."""
    bounds = [0.0, *edges, INF]
    out = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        inside = [r for r in rows if r.kind != FALSE and low <= r.volume_ref_ml < high]
        found = sum(r.kind == MATCHED for r in inside)
        out.append({"low_ml": low, "high_ml": high if math.isfinite(high) else None, "n_ref": len(inside),
                    "detected": found, "rate": _ratio(found, len(inside))})
    return out


def _dilated(c: Component, iterations: int, shape, structure):
    """The lesion dilated ``iterations`` times, as (box, mask) clipped to the image."""
    box = tuple(slice(max(s.start - iterations, 0), min(s.stop + iterations, n)) for s, n in zip(c.box, shape))
    m = c.within(box)
    if iterations:
        m = ndimage.binary_dilation(m, structure, iterations=iterations)
    return Component(box, m, int(np.count_nonzero(m)), c.first)


def brats_lesion_dice(ref, pred, shared, shape, spacing, options: InstanceOptions,
                      connectivity) -> tuple[float, int, int]:
    """The BraTS 2023 lesion-wise Dice (module docstring), the reference lesions it counts and its false
    positives."""
    structure = ndimage.generate_binary_structure(len(shape), 2)
    grown = [_dilated(g, options.brats_dilation, shape, structure) for g in ref]
    touching = overlaps(grown, pred)  # (reference lesion, predicted lesion) whose dilation they touch
    # reference lesions whose dilations connect are one lesion: components of the union of the dilations
    union = np.zeros(shape, bool)
    for d in grown:
        union[d.box] |= d.mask
    joined = components(union, connectivity)
    members: dict[int, list[int]] = {}  # joined lesion -> the reference lesions inside it (each lies in one)
    for i, k in overlaps(ref, joined):
        members.setdefault(k, []).append(i)
    voxel_mm3 = float(np.prod(spacing))
    scores, counted_pred = [], set()
    for inside in members.values():
        hits = {j for (i, j) in touching if i in inside}
        counted_pred |= hits
        ref_voxels = sum(ref[i].size for i in inside)
        if ref_voxels * voxel_mm3 <= options.brats_min_volume_mm3:
            continue
        pred_voxels = sum(pred[j].size for j in hits)
        both = sum(v for (i, j), v in shared.items() if i in inside and j in hits)
        scores.append(2 * both / (ref_voxels + pred_voxels))
    false = len(pred) - len(counted_pred)
    denominator = len(scores) + false
    return (sum(scores) / denominator if denominator else 1.0), len(scores), false


def instance_metrics(pred_mask: np.ndarray, ref_mask: np.ndarray, spacing, tau: float, options: InstanceOptions,
                     groups=("distance", "nsd"), offset=None) -> InstanceMetrics:
    """Lesion-wise metrics of one label from its two boolean masks (``offset``: the box of the image they were
    cut from, so that lesion boxes and centres are in the image's indices)."""
    shape = ref_mask.shape
    ref = components(ref_mask, options.connectivity)
    pred = components(pred_mask, options.connectivity)
    shared = overlaps(ref, pred)
    matches = match(ref, pred, shared, options.match_iou)
    rows = lesion_rows(ref, pred, matches, shared, spacing, tau, groups)
    if offset is not None:
        for row in rows:
            row.centre_index = tuple(c + s.start for c, s in zip(row.centre_index, offset))
    tp = len(matches)
    fp, fn = len(pred) - tp, len(ref) - tp
    any_lesion = bool(ref or pred)
    ious = [iou for _, _, iou in matches]
    dices = [r.dice for r in rows if r.kind == MATCHED]
    sq = float(np.mean(ious)) if ious else (0.0 if any_lesion else NAN)
    sq_dice = float(np.mean(dices)) if dices else (0.0 if any_lesion else NAN)
    f1 = _ratio(tp, tp + 0.5 * (fp + fn))
    brats, brats_n, brats_fp = brats_lesion_dice(ref, pred, shared, shape, spacing, options,
                                                   options.connectivity)
    return InstanceMetrics(
        n_ref=len(ref), n_pred=len(pred), tp=tp, fp=fp, fn=fn, sensitivity=_ratio(tp, len(ref)),
        precision=_ratio(tp, len(pred)), f1=f1, sq=sq, sq_dice=sq_dice, pq=sq * f1 if any_lesion else NAN,
        brats_dice=brats, brats_n_ref=brats_n, brats_fp=brats_fp,
        detection=detection_by_size(rows, options.size_bins_ml), lesions=rows)
