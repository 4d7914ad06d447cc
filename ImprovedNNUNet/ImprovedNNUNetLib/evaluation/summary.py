"""summary.json (shaped like nnU-Net's) and metrics.csv from evaluated cases.

Means per label follow :mod:`.aggregate`: cases where the label is empty on both sides are left out
(counted as ``n_both_empty``); means of distance metrics also leave out one-sided empty cases,
whose distances are infinite (counted as ``n_one_side_empty``). ``foreground_mean`` is
the mean over labels of those per-label means; ``mean_IoU`` is its IoU (mean IoU over classes) and
``pixel_accuracy`` the mean over cases of the fraction of voxels whose values agree.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified
from ImprovedNNUNetLib.evaluation.aggregate import NUMERIC_KEYS, LabelAggregate, Stat, aggregate_label, mean_of_labels
from ImprovedNNUNetLib.evaluation.labels import format_key, key_order
from ImprovedNNUNetLib.evaluation.options import MetricOptions
from ImprovedNNUNetLib.evaluation.results import METRIC_KEYS, CaseMetrics, json_number

CSV_COLUMNS = ("case_id", "reference_file", "prediction_file", "label", "name", "tau_mm", *METRIC_KEYS)


@dataclass
class EvaluatedCase:
    """One evaluated case: its files and metrics."""

    case_id: str
    reference_file: str
    prediction_file: str
    metrics: CaseMetrics


def _or_none(stat: Stat) -> float | None:
    return stat.mean if stat.count else None


def label_means(aggregate: LabelAggregate) -> dict:
    """summary.json's ``mean`` entry of one label: each metric's mean (None where no case counts) and the
    counts of left-out cases (the rule of :mod:`.aggregate`)."""
    means = {key: _or_none(stat) for key, stat in aggregate.stats.items()}
    means["n_cases"] = aggregate.n_cases
    means["n_both_empty"] = aggregate.n_both_empty
    means["n_one_side_empty"] = aggregate.n_one_side_empty
    return means


def summarize(cases: list[EvaluatedCase], options: MetricOptions | None = None) -> dict:
    """The summary.json content (inf and NaN already turned into null)."""
    labels: dict = {}
    taus: dict = {}
    for case in cases:
        for value, m in case.metrics.labels.items():
            labels.setdefault(value, m.name)
            taus.setdefault(value, m.tau_mm)
    aggregates = {value: aggregate_label((c.metrics for c in cases), value) for value in sorted(labels, key=key_order)}
    means = {value: label_means(a) for value, a in aggregates.items()}
    foreground = {key: _or_none(mean_of_labels(aggregates.values(), key)) for key in NUMERIC_KEYS}
    distinct_taus = set(taus.values())
    any_instances = any(m.instances is not None for c in cases for m in c.metrics.labels.values())
    extra = {"instances_mean": json_safe(pooled_instances(cases, labels))} if any_instances else {}
    return {
        "metric_per_case": [
            {
                "case_id": c.case_id,
                "reference_file": c.reference_file,
                "prediction_file": c.prediction_file,
                "resampled": c.metrics.resampled,
                "notes": list(c.metrics.notes),
                "pixel_accuracy": json_number(c.metrics.pixel_accuracy),
                "metrics": {
                    str(v): {k: json_number(x) for k, x in m.to_dict().items()} for v, m in c.metrics.labels.items()
                },
                **({"instances": {str(v): json_safe(m.instances.to_dict()) for v, m in c.metrics.labels.items()
                                  if m.instances is not None}} if any_instances else {}),
                **({"calibration": json_safe(c.metrics.calibration)} if c.metrics.calibration else {}),
            }
            for c in cases
        ],
        "mean": {str(v): m for v, m in means.items()},
        "foreground_mean": foreground,
        "mean_IoU": foreground["IoU"],
        "pixel_accuracy": _or_none(Stat.of(v for v in (c.metrics.pixel_accuracy for c in cases) if math.isfinite(v))),
        "tau_mm": distinct_taus.pop() if len(distinct_taus) == 1 else {str(v): t for v, t in taus.items()},
        "labels": {str(v): name for v, name in labels.items()},
        "mean_policy": (
            "means leave out cases where a label is empty in both prediction and reference (n_both_empty); "
            "HD, HD95, HD99.9 and ASSD means also leave out one-sided empty cases (n_one_side_empty), "
            "whose distances are infinite"
        ),
        **extra,
        "definitions": definitions(options or MetricOptions()),
    }


def json_safe(value):
    """Floats that are not finite as null, through dicts and lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return json_number(value)


def pooled_instances(cases: list[EvaluatedCase], labels: dict) -> dict:
    """Per label, lesions pooled over all cases: counts, sensitivity, precision, F1 and detection by size, and
    the mean over cases of the per-case PQ and BraTS-style lesion-wise Dice."""
    out = {}
    for key in sorted(labels, key=key_order):
        found = [c.metrics.labels[key].instances for c in cases
                 if key in c.metrics.labels and c.metrics.labels[key].instances is not None]
        if not found:
            continue
        tp, fp, fn = (sum(getattr(i, k) for i in found) for k in ("tp", "fp", "fn"))
        bins = [dict(b) for b in found[0].detection]
        for b in bins:
            b["n_ref"] = b["detected"] = 0
        for i in found:
            for total, b in zip(bins, i.detection):
                total["n_ref"] += b["n_ref"]
                total["detected"] += b["detected"]
        for b in bins:
            b["rate"] = b["detected"] / b["n_ref"] if b["n_ref"] else None
        out[format_key(key)] = {
            "n_cases": len(found), "n_ref": tp + fn, "n_pred": tp + fp, "tp": tp, "fp": fp, "fn": fn,
            "sensitivity": tp / (tp + fn) if tp + fn else None, "precision": tp / (tp + fp) if tp + fp else None,
            "f1": tp / (tp + 0.5 * (fp + fn)) if tp + fp + fn else None,
            "pq_mean": _or_none(Stat.of(v for v in (i.pq for i in found) if math.isfinite(v))),
            "brats_dice_mean": _or_none(Stat.of(i.brats_dice for i in found)),
            "detection_by_size": bins,
        }
    return out


def definitions(options: MetricOptions) -> dict:
    """Every choice behind the numbers, stated in summary.json."""
    i = options.instances
    return {
        "profile": options.profile,
        "metric_groups": list(options.groups),
        "surface_points": "HD, HD95, HD99.9, ASSD: centres of boundary voxels (voxels with a 6-connected, 2-D: "
                          "4-connected, neighbour outside); NSD: surfels with marching-cubes areas (Nikolov et al.)",
        "percentile_rule": "HDp = max of the two directed p-th percentiles, linear interpolation (MONAI's rule)",
        "assd": "mean over the pooled distances of both directions",
        "empty_policy": "both empty: Dice = IoU = NSD = clDice = 1, distances 0; one side empty: Dice = IoU = NSD "
                        "= clDice = 0, distances infinite (null in JSON)",
        "regions": "a key (1, 2, 3) is a region: the union of those label values on both sides (nnU-Net's rule)",
        **({"instances": {
            "connectivity": i.connectivity or "full (26 in 3-D, 8 in 2-D)",
            "matching": f"one-to-one, greedy by decreasing IoU, IoU >= {i.match_iou}",
            "size_bins_ml": list(i.size_bins_ml),
            "brats_lesion_dice": f"reference lesions dilated {i.brats_dilation}x (18-neighbourhood) for matching, "
                                 f"those of <= {i.brats_min_volume_mm3} mm3 left out",
        }} if options.has("instances") else {}),
        **({"cldice": "2·Tprec·Tsens/(Tprec+Tsens) of each mask against the other's skeleton (scikit-image "
                      "skeletonize: Zhang's method in 2-D, Lee's in 3-D), as the reference code of Shit et al."}
           if options.has("cldice") else {}),
        **({"calibration": "per label one-vs-rest over all voxels: ECE with 15 equal-width bins (L1), Brier, "
                           "NLL (log floor -100)"} if options.has("calibration") else {}),
    }


LESION_COLUMNS = ("case_id", "label", "name", "lesion", "kind", "ref_id", "pred_id", "volume_ref_ml",
                  "volume_pred_ml", "Dice", "IoU", "HD95", "ASSD", "NSD", "centre_x_mm", "centre_y_mm",
                  "centre_z_mm", "centre_i", "centre_j", "centre_k")


def lesion_rows(cases: list[EvaluatedCase]):
    """lesions.csv rows: one per lesion (matched pair, missed or false), centres in physical mm and in voxel
    indices (i, j, k = x, y, z)."""
    for c in cases:
        for key, m in c.metrics.labels.items():
            if m.instances is None:
                continue
            for number, lesion in enumerate(m.instances.lesions, start=1):
                centre = lesion.centre_mm or (float("nan"),) * 3
                k, j, i = lesion.centre_index
                yield {"case_id": c.case_id, "label": format_key(key), "name": m.name or "", "lesion": number,
                       "kind": lesion.kind, "ref_id": lesion.ref_id or "", "pred_id": lesion.pred_id or "",
                       "volume_ref_ml": lesion.volume_ref_ml, "volume_pred_ml": lesion.volume_pred_ml,
                       "Dice": lesion.dice, "IoU": lesion.iou, "HD95": lesion.hd95, "ASSD": lesion.assd,
                       "NSD": lesion.nsd, "centre_x_mm": centre[0], "centre_y_mm": centre[1],
                       "centre_z_mm": centre[2], "centre_i": round(i, 2), "centre_j": round(j, 2),
                       "centre_k": round(k, 2)}


def csv_rows(cases: list[EvaluatedCase]):
    """metrics.csv rows: one per case and label; inf and NaN written as ``inf`` / ``nan``."""
    for c in cases:
        for value, m in c.metrics.labels.items():
            yield {
                "case_id": c.case_id,
                "reference_file": c.reference_file,
                "prediction_file": c.prediction_file,
                "label": format_key(value),
                "name": m.name or "",
                "tau_mm": m.tau_mm,
                **m.to_dict(),
            }


RESULT_FILES = ("summary.json", "metrics.csv", "lesions.csv")  # what evaluate writes into its output folder


def check_outputs_free(out_dir: str | Path, overwrite: bool = False) -> None:
    """UserError if one of :data:`RESULT_FILES` exists in ``out_dir`` and ``overwrite`` is off."""
    for name in RESULT_FILES:
        path = Path(out_dir) / name
        if path.exists() and not overwrite:
            raise UserError(f"{path} exists; choose another output folder, or pass --overwrite to replace what an "
                            "earlier evaluate wrote there (other files are kept)")


def _csv_text(columns, rows) -> str:
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return handle.getvalue()


def write_summary(cases: list[EvaluatedCase], out_dir: str | Path, overwrite: bool = False,
                  options: MetricOptions | None = None) -> tuple[Path, ...]:
    """Write ``summary.json`` and ``metrics.csv`` (and with lesion metrics ``lesions.csv``) into ``out_dir``;
    refuses to replace them unless ``overwrite``."""
    out_dir = Path(out_dir)
    json_path, csv_path = out_dir / "summary.json", out_dir / "metrics.csv"
    check_outputs_free(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_verified(json_path, json.dumps(summarize(cases, options), indent=2, allow_nan=False) + "\n")
    write_text_verified(csv_path, _csv_text(CSV_COLUMNS, csv_rows(cases)))
    if not any(m.instances is not None for c in cases for m in c.metrics.labels.values()):
        return json_path, csv_path
    lesions_path = out_dir / "lesions.csv"
    write_text_verified(lesions_path, _csv_text(LESION_COLUMNS, lesion_rows(cases)))
    return json_path, csv_path, lesions_path

