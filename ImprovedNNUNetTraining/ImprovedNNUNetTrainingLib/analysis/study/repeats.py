"""Repeats in the study report: is the arm effect larger than the spread between two runs of the same thing?

nnU-Net's trainings are not deterministic (its augmentation workers and cuDNN; nnU-Net PR #2871), and users
report 2–3 Dice points between repeats of one configuration. A study with ``--repeats N`` trains every arm
and fold N times with recorded seeds. The report then

* compares arms on **case means over repeats** (each case's value averaged over the repeats that have it):
  the paired tests, intervals and the table use these, so the test is of the arm effect, not of one draw;
* shows per arm the mean Dice of each repeat (mean over labels and cases), their standard deviation and range
  (the seed spread), and beside it each arm's difference to the baseline, with a plain sentence saying
  whether that difference is larger than the spread between repeats of one arm.
"""
from __future__ import annotations

import math

import numpy as np

from ImprovedNNUNetLib.evaluation.aggregate import label_values


def merged_cases(repeats: list[dict]) -> dict:
    """{case: CaseMetrics} of every case any repeat has (for counting cases; values come from ``arm_values``)."""
    merged = {}
    for cases in repeats:
        merged.update(cases)
    return merged


def arm_values(report: dict, arm: str, label, key: str) -> dict[str, float]:
    """{case: value} of one metric of one label for an arm: with several repeats, each case's mean over the
    repeats that have a finite value for it; else the single run's values."""
    repeats = report.get("repeats", {}).get(arm) or []
    if len(repeats) < 2:
        return label_values(report["per_arm"][arm], label, key)
    collected: dict[str, list[float]] = {}
    for cases in repeats:
        for case, value in label_values(cases, label, key).items():
            collected.setdefault(case, []).append(value)
    return {case: float(np.mean(values)) for case, values in collected.items()}


def repeat_means(report: dict, arm: str, key: str = "Dice") -> list[float]:
    """Per repeat of ``arm``: the mean over cases of the case's mean over labels (NaN-free repeats only)."""
    means = []
    for cases in report.get("repeats", {}).get(arm) or []:
        per_case: dict[str, list[float]] = {}
        for value in report["labels"].values():
            for case, number in label_values(cases, value, key).items():
                per_case.setdefault(case, []).append(number)
        if per_case:
            means.append(float(np.mean([np.mean(v) for v in per_case.values()])))
    return means


def case_mean_of_labels(report: dict, arm: str, key: str = "Dice") -> dict[str, float]:
    per_case: dict[str, list[float]] = {}
    for value in report["labels"].values():
        for case, number in arm_values(report, arm, value, key).items():
            per_case.setdefault(case, []).append(number)
    return {case: float(np.mean(v)) for case, v in per_case.items()}


def spread_rows(report: dict, scale: float = 100.0) -> list[dict]:
    """Per arm: repeats, each repeat's mean Dice, their sd (population) and range, and the mean paired difference
    to the baseline on case means over repeats (Dice in %)."""
    base = case_mean_of_labels(report, report["baseline"])
    rows = []
    for arm in report["per_arm"]:
        means = [m * scale for m in repeat_means(report, arm)]
        ours = case_mean_of_labels(report, arm)
        shared = sorted(set(ours) & set(base))
        difference = (float(np.mean([ours[c] - base[c] for c in shared])) * scale
                      if shared and arm != report["baseline"] else math.nan)
        rows.append({"arm": arm, "repeats": len(means), "means": means,
                     "sd": float(np.std(means)) if len(means) > 1 else math.nan,
                     "range": float(np.ptp(means)) if len(means) > 1 else math.nan, "difference": difference})
    return rows


def spread_lines(report: dict) -> list[str]:
    """The report's repeats section (markdown), empty for a study without repeats."""
    if not any(len(r) > 1 for r in report.get("repeats", {}).values()):
        return []
    rows = spread_rows(report)
    base = report["baseline"]
    lines = ["", "Arm effect vs seed spread: each arm's mean Dice (mean over labels and cases, %) per repeat, the "
                 "spread between its repeats, and its mean paired difference to the baseline on case means over "
                 "repeats (the values the tests above use).", "",
             "| arm | repeats | Dice per repeat (%) | sd between repeats | range | difference to baseline |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        per_repeat = ", ".join(f"{m:.2f}" for m in r["means"]) or "-"
        difference = "-" if math.isnan(r["difference"]) else f"{r['difference']:+.2f}"
        lines.append(f"| {r['arm']} | {r['repeats']} | {per_repeat} | {r['sd']:.2f} | {r['range']:.2f} | "
                     f"{difference} |")
    noise = max((r["range"] for r in rows if not math.isnan(r["range"])), default=math.nan)
    lines.append("")
    for r in rows:
        if r["arm"] == base or math.isnan(r["difference"]) or math.isnan(noise):
            continue
        verdict = ("larger than" if abs(r["difference"]) > noise else "within")
        lines.append(f"- `{r['arm']}` differs from `{base}` by {r['difference']:+.2f} Dice points; repeats of one arm "
                     f"differ by up to {noise:.2f} points, so the difference is **{verdict}** the spread between runs "
                     "of the same thing.")
    return lines
