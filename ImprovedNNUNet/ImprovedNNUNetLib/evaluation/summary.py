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


def summarize(cases: list[EvaluatedCase]) -> dict:
    """The summary.json content (inf and NaN already turned into null)."""
    labels: dict[int, str | None] = {}
    taus: dict[int, float] = {}
    for case in cases:
        for value, m in case.metrics.labels.items():
            labels.setdefault(value, m.name)
            taus.setdefault(value, m.tau_mm)
    aggregates = {value: aggregate_label((c.metrics for c in cases), value) for value in sorted(labels)}
    means = {value: label_means(a) for value, a in aggregates.items()}
    foreground = {key: _or_none(mean_of_labels(aggregates.values(), key)) for key in NUMERIC_KEYS}
    distinct_taus = set(taus.values())
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
    }


def csv_rows(cases: list[EvaluatedCase]):
    """metrics.csv rows: one per case and label; inf and NaN written as ``inf`` / ``nan``."""
    for c in cases:
        for value, m in c.metrics.labels.items():
            yield {
                "case_id": c.case_id,
                "reference_file": c.reference_file,
                "prediction_file": c.prediction_file,
                "label": value,
                "name": m.name or "",
                "tau_mm": m.tau_mm,
                **m.to_dict(),
            }


def check_outputs_free(out_dir: str | Path, overwrite: bool = False) -> None:
    """UserError if ``summary.json`` or ``metrics.csv`` exists in ``out_dir`` and ``overwrite`` is off."""
    for name in ("summary.json", "metrics.csv"):
        path = Path(out_dir) / name
        if path.exists() and not overwrite:
            raise UserError(f"{path} exists; choose another output folder, or pass --overwrite to replace what an "
                            "earlier evaluate wrote there (other files are kept)")


def write_summary(cases: list[EvaluatedCase], out_dir: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``metrics.csv`` into ``out_dir``; refuses to replace them unless ``overwrite``."""
    out_dir = Path(out_dir)
    json_path, csv_path = out_dir / "summary.json", out_dir / "metrics.csv"
    check_outputs_free(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_verified(json_path, json.dumps(summarize(cases), indent=2, allow_nan=False) + "\n")
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(csv_rows(cases))
    write_text_verified(csv_path, handle.getvalue())
    return json_path, csv_path

