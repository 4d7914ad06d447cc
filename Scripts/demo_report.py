"""The demo's Markdown report: comparison table, per-case Dice, overlay pictures, timings.

Every number comes from what the run produced: the evaluation summaries (``summary.json``
as written by `improved-nnunet evaluate`) and the measured step durations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

TABLE_METRICS = (("Dice", "Dice", 3), ("HD95", "HD95 (mm)", 2), ("NSD", "NSD", 3))


@dataclass
class VariantRun:
    """What one trained variant produced on the held-out cases."""

    variant: str
    summary: dict  # summary.json of the evaluation
    overlays: dict[str, Path] = field(default_factory=dict)  # case -> PNG


@dataclass
class DemoFacts:
    """The settings of the run, for the report's text."""

    dataset: str
    train_cases: list[str]
    test_cases: list[str]
    configuration: str
    epochs: int
    iterations: int
    label_names: dict[int, str]
    tau_mm: float
    extra_lines: list[str] = field(default_factory=list)


def format_number(value, digits: int) -> str:
    """A metric value for the table: inf as "inf", NaN as "n/a", None (a summary mean without any
    finite value, e.g. HD95 when every case had the label empty on one side) as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def format_seconds(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.1f} s"


def _label_means(summary: dict, label: int) -> dict:
    try:
        return summary["mean"][str(label)]
    except KeyError:
        raise UserError(f"evaluation summary has no mean for label {label}; re-run the evaluation step") from None


def comparison_table(runs: list[VariantRun], label_names: dict[int, str]) -> list[str]:
    """Markdown rows: one per label, columns metric × variant (means over the held-out cases)."""
    header = ["Label"] + [f"{title} {run.variant}" for _, title, _ in TABLE_METRICS for run in runs]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, name in sorted(label_names.items()):
        cells = [f"{name} ({label})"]
        for key, _, digits in TABLE_METRICS:
            cells += [format_number(_label_means(run.summary, label).get(key), digits) for run in runs]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def per_case_table(runs: list[VariantRun], label_names: dict[int, str]) -> list[str]:
    """Markdown rows of the Dice of every held-out case and label, per variant."""
    header = ["Case", "Label"] + [f"Dice {run.variant}" for run in runs]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    per_run = [{c["case_id"]: c["metrics"] for c in run.summary["metric_per_case"]} for run in runs]
    for case in sorted(per_run[0]):
        for label, name in sorted(label_names.items()):
            cells = [case, name] + [format_number(p[case][str(label)]["Dice"], 3) for p in per_run]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def report_text(facts: DemoFacts, runs: list[VariantRun], timings: dict[str, float], folder: Path) -> str:
    """The whole report as Markdown; picture links are relative to ``folder`` (where it is written)."""
    variants = ", ".join(f"`{run.variant}`" for run in runs)
    lines = [
        "# ImprovedNNUNet demo: brain tissue on the MNI ICBM152 template",
        "",
        f"Trained variants: {variants}. Data: axial slabs of the MNI ICBM152 2009a T1 template "
        f"({facts.dataset}); training slabs: {', '.join(facts.train_cases)}; held-out slabs, whose voxels "
        f"were never used for training: {', '.join(facts.test_cases)}.",
        "",
        f"**These are CPU demo schedules (epochs × iterations per epoch: {facts.epochs} × {facts.iterations}, "
        f"configuration `{facts.configuration}`), not the papers' 1000 epochs × 250 iterations**; "
        "the numbers show that the pipeline works end to end, not which variant is better.",
        "",
        "## Comparison on the held-out slabs (mean over cases)",
        "",
        f"Dice and NSD (τ = {facts.tau_mm:g} mm) are better near 1, HD95 better near 0 mm.",
        "",
        *comparison_table(runs, facts.label_names),
        "",
        "## Dice per held-out case",
        "",
        *per_case_table(runs, facts.label_names),
        "",
        "## Mis-segmentations",
        "",
        "Each picture shows one axial slice of a held-out slab (the slice with the most errors of all variants, "
        "the same for every variant; its number and height are in the title), oriented as Slicer shows it: "
        "anterior up, the patient's right on the left. Panels: the reference labels; the prediction, with each "
        "label's Dice over the whole held-out case (not just this slice); then per label its errors in this slice "
        "only, semi-transparent over the T1: yellow false positives (predicted, not in the reference), cyan false "
        "negatives (in the reference, missed). A pixel given the wrong tissue is a false positive of one label and "
        "a false negative of the other, so the counts of the two labels mirror each other.",
        "",
    ]
    for run in runs:
        for case, png in sorted(run.overlays.items()):
            lines += [f"![{run.variant}, {case}]({Path(png).relative_to(folder).as_posix()})", ""]
    lines += ["## Timings", "", "| Step | Duration |", "|---|---|"]
    lines += [f"| {step} | {format_seconds(seconds)} |" for step, seconds in timings.items()]
    lines += ["", *facts.extra_lines, "",
              "MNI ICBM152 2009a: Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, "
              "Montreal Neurological Institute, McGill University.", ""]
    return "\n".join(lines)


def write_report(facts: DemoFacts, runs: list[VariantRun], timings: dict[str, float], folder: Path) -> Path:
    """Write ``folder/report.md`` (refuses to replace an existing one)."""
    path = Path(folder) / "report.md"
    if path.exists():
        raise UserError(f"{path} exists; remove it or write the demo into another folder")
    path.write_text(report_text(facts, runs, timings, Path(folder)), encoding="utf-8")
    return path


def chest_section(summary: dict) -> list[str]:
    """The chest-CT evaluation step of `make demo` (its summary.json) as a report section."""
    lines = ["## Chest CT: evaluating a segmentation (first demo step)", "",
             "slicerio's real chest CT segmentation (7 named segments) is the reference; the prediction is a copy "
             "changed on purpose so that every kind of error appears once: both lungs grown by one voxel in each "
             "slice, the tissue shrunk by one voxel, the thoracic spine moved by one voxel, and the lumbar spine "
             "removed. The metrics are in `evaluation/summary.json` and `evaluation/metrics.csv`, the FP/FN maps "
             "in `evaluation/maps/`.", "",
             "| label | Dice | HD95 (mm) | NSD | status |", "|---|---|---|---|---|"]
    case = summary["metric_per_case"][0]["metrics"]
    for value, name in summary["labels"].items():
        m = case[value]
        hd95 = "-" if m["HD95"] is None else f"{m['HD95']:.2f}"
        lines.append(f"| {name} | {m['Dice']:.3f} | {hd95} | {m['NSD']:.3f} | {m['status']} |")
    lines += ["", "The lumbar spine has Dice 0, no HD95 (`-`) and status `prediction empty`: it was removed from the "
              "prediction, so there is no predicted surface to measure a distance from; distance means leave such "
              "cases out and count them (the `empty` column of the command line's table), and Dice and NSD count "
              "them as 0.", "",
              "Ribs and the cervical spine lose Dice too, although they were not changed: the grown lungs and the "
              "moved thoracic spine are written over their neighbours, so rib voxels next to the lungs (and the few "
              "cervical voxels next to the lung apices and the thoracic spine) now carry those labels. They are "
              "false negatives of the ribs and cervical spine and, at the same time, false positives of the lungs "
              "and thoracic spine: one wrong voxel counts against two structures, as it would in a real "
              "prediction.", ""]
    return lines
