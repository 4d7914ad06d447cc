"""The study report: per arm and label, Dice, HD95 and NSD as mean ± sd over all validation cases of all
folds (the papers' table), paired Wilcoxon signed-rank tests of each arm against the baseline arm
per label with Holm's correction over the labels, box plots per label and training curves per arm.

Validation predictions (``fold_k/validation/<case>``, written by nnU-Net's final validation) are
evaluated against the raw ``labelsTr`` with this project's metrics; cases are paired across arms by
case id (the folds' validation cases are the same for every arm: one ``splits_final.json``).
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified
from ImprovedNNUNetLib.evaluation import labels_from_dataset_json
from ImprovedNNUNetLib.evaluation.aggregate import Stat
from ImprovedNNUNetTrainingLib.analysis.compare import validation_metrics
from ImprovedNNUNetTrainingLib.analysis.study.costs import arm_compute, compute_lines
from ImprovedNNUNetTrainingLib.analysis.study.repeats import arm_values, merged_cases, spread_lines
from ImprovedNNUNetTrainingLib.analysis.study.report_html import html_page
from ImprovedNNUNetTrainingLib.analysis.study.spec import Study
from ImprovedNNUNetTrainingLib.analysis.study.trainings import trainings
from ImprovedNNUNetTrainingLib.engine.environment import folder_variable

METRICS = (("Dice", "Dice", 100.0, "%"), ("HD95", "HD95", 1.0, "mm"), ("NSD", "NSD", 100.0, "%"))
LESION_METRIC = ("lesion F1", "LesionF1", 100.0, "%")  # with lesion metrics (study report --instances)
ALPHA = 0.05


@dataclass
class Comparison:
    arm: str
    label: str
    metric: str
    n: int
    median_difference: float  # in the table's unit (Dice and NSD in %, HD95 in mm)
    p: float
    p_holm: float = math.nan
    mean_difference: float = math.nan
    ci_low: float = math.nan  # bootstrap 95% confidence interval of the mean paired difference
    ci_high: float = math.nan

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA


def case_metrics(study: Study, labels: dict, file_ending: str, tau_mm: float, jobs: int | None = None,
                 options=None) -> dict:
    """{arm name: [{case id: CaseMetrics} per repeat]} over the validation cases of every fold of each arm that has
    them, all evaluated together through the evaluation runner (``jobs`` worker processes)."""
    raw = folder_variable("nnUNet_raw") / study.dataset / "labelsTr"
    runs = list(trainings(study))
    evaluated = validation_metrics([t.folder / "validation" for t in runs], raw, labels, file_ending, tau_mm, jobs,
                                   options=options)
    results = {arm.name: [{} for _ in range(study.repeats)] for arm in study.arms}
    for training, metrics in zip(runs, evaluated):
        results[training.arm.name][training.repeat].update(metrics)
    return results


def mean_sd(numbers, scale: float, cases: int | None = None) -> str:
    """``mean ± sd``; ``(n=K)`` added when the cell rests on fewer cases than its row (HD95 leaves out one-sided
    empty cases); one case has no spread, so it shows its value and ``(n=1)`` only."""
    stat = statistics(numbers, scale)
    if stat.count == 0:
        return "-"
    text = f"{stat.mean:.1f}" if stat.count == 1 else f"{stat.mean:.1f} ± {stat.sd:.1f}"
    return text + (f" (n={stat.count})" if stat.count == 1 or (cases is not None and stat.count != cases) else "")


def statistics(numbers, scale: float) -> Stat:
    """Mean, population sd and count in the table's unit (the evaluation's :class:`Stat`; NaN for no numbers)."""
    return Stat.of(np.asarray(list(numbers), dtype=float) * scale)


def wilcoxon(differences: np.ndarray) -> float:
    from scipy.stats import wilcoxon as test

    if differences.size == 0:
        return math.nan
    if not np.any(differences):
        return 1.0
    return float(test(differences).pvalue)


BOOTSTRAP_RESAMPLES = 9999
MIN_WILCOXON_CASES = 6  # fewer paired cases cannot reach a two-sided p < 0.05 (smallest p = 2 / 2^n)


def paired_interval(differences: np.ndarray) -> tuple[float, float]:
    """95% bootstrap confidence interval (percentile method, 9999 resamples, fixed seed: the report is
    reproducible) of the mean paired difference, by ``scipy.stats.bootstrap``; NaN for fewer than 2 cases."""
    if differences.size < 2:
        return math.nan, math.nan
    if np.ptp(differences) == 0:
        return float(differences[0]), float(differences[0])
    import inspect

    from scipy.stats import bootstrap

    seed = {"rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state": np.random.default_rng(0)}
    result = bootstrap((differences,), np.mean, confidence_level=0.95, n_resamples=BOOTSTRAP_RESAMPLES,
                       method="percentile", **seed)  # scipy >= 1.15 calls the seed rng, older ones random_state
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def small_sample_lines(comparisons: list[Comparison]) -> list[str]:
    """A plain sentence when some tests rest on too few cases to detect any difference."""
    small = sorted({c.n for c in comparisons if 0 < c.n < MIN_WILCOXON_CASES})
    if not small:
        return []
    n = small[0]
    return ["", f"**Too few cases to detect a difference:** some comparisons rest on only {n} paired case(s); with fewer "
                f"than {MIN_WILCOXON_CASES} a two-sided Wilcoxon test cannot reach p < 0.05 (its smallest p is "
                f"2/2^{n} = {2 / 2 ** n:.3g}), whatever the arms do. Add folds or cases before reading the tests."]


def holm(comparisons: list[Comparison]) -> None:
    """Holm's step-down correction over the labels of one arm and metric (in place)."""
    ranked = sorted((c for c in comparisons if not math.isnan(c.p)), key=lambda c: c.p)
    m, running = len(ranked), 0.0
    for index, c in enumerate(ranked):
        running = max(running, min(1.0, (m - index) * c.p))
        c.p_holm = running


def build_report(study: Study, baseline: str | None = None, tau_mm: float = 1.0, jobs: int | None = None,
                 instances: bool = False) -> dict:
    """Everything the report shows, as plain data (``jobs``: worker processes evaluating the cases;
    ``instances``: also the lesion-wise F1, tested like the other metrics)."""
    from ImprovedNNUNetLib.evaluation.options import metric_options

    options = metric_options(None, ("overlap", "distance", "nsd"), instances_on=instances)[0]
    metrics = METRICS + ((LESION_METRIC,) if instances else ())
    info = folder_variable("nnUNet_raw") / study.dataset / "dataset.json"
    if not info.is_file():
        raise UserError(f"{info} not found; the report compares with the raw labelsTr (check nnUNet_raw)")
    labels = labels_from_dataset_json(info)
    file_ending = json.loads(info.read_text()).get("file_ending", ".nii.gz")
    per_repeat = case_metrics(study, labels, file_ending, tau_mm, jobs, options)
    per_arm = {arm: merged_cases(repeats) for arm, repeats in per_repeat.items()}
    partial = {"per_arm": per_arm, "repeats": {arm: [r for r in repeats if r] for arm, repeats in per_repeat.items()}}
    evaluated = [name for name, cases in per_arm.items() if cases]
    if not evaluated:
        raise UserError(f"no arm of study {study.name} has validation predictions yet; run the study to the end of "
                        "at least one training")
    base = baseline or next((a.name for a in study.arms if a.variant == "baseline" and not a.settings),
                            study.arms[0].name)
    if base not in per_arm:
        raise UserError(f"baseline arm {base!r} is not in the study ({', '.join(per_arm)})")
    comparisons = []
    for arm in study.arms:
        if arm.name == base or not per_arm[arm.name] or not per_arm[base]:
            continue
        for metric, key, scale, _ in metrics:
            group = []
            for name, value in labels.items():
                ours, theirs = arm_values(partial, arm.name, value, key), arm_values(partial, base, value, key)
                shared = sorted(set(ours) & set(theirs))
                differences = np.array([ours[c] - theirs[c] for c in shared]) * scale
                low, high = paired_interval(differences)
                group.append(Comparison(arm.name, name, metric, len(shared),
                                        float(np.median(differences)) if shared else math.nan, wilcoxon(differences),
                                        mean_difference=float(np.mean(differences)) if shared else math.nan,
                                        ci_low=low, ci_high=high))
            holm(group)
            comparisons.extend(group)
    return {"labels": labels, "per_arm": per_arm, "repeats": partial["repeats"], "baseline": base,
            "comparisons": comparisons, "metrics": metrics, "compute": arm_compute(study),
            "folds": {arm.name: sorted({str(t.fold) for t in trainings(study) if t.arm.name == arm.name
                                        and (t.folder / "validation").is_dir()}) for arm in study.arms}}


def table_rows(report: dict) -> list[dict]:
    """The report's table: one row per arm and metric, a ``mean ± sd`` text cell per label."""
    rows = []
    for arm, cases in report["per_arm"].items():
        for metric, key, scale, unit in report.get("metrics", METRICS):
            row = {"arm": arm, "metric": f"{metric} ({unit})", "cases": len(cases)}
            per_label = []
            for name, value in report["labels"].items():
                numbers = arm_values(report, arm, value, key)
                row[name] = mean_sd(numbers.values(), scale, len(cases))
                per_label.append(list(numbers.values()))
            means = [np.mean(v) for v in per_label if v]
            row["mean"] = mean_sd(means, scale) if means else "-"
            rows.append(row)
    return rows


TABLE_COLUMNS = ("arm", "metric", "unit", "label", "cases", "mean", "sd")


def table_records(report: dict) -> list[dict]:
    """table.csv: the same numbers as columns (one row per arm, metric and label, then ``mean of labels``):
    ``cases`` is how many cases that cell rests on."""
    records = []
    for arm, cases in report["per_arm"].items():
        for metric, key, scale, unit in report.get("metrics", METRICS):
            label_means = []
            for name, value in report["labels"].items():
                numbers = list(arm_values(report, arm, value, key).values())
                stat = statistics(numbers, scale)
                records.append({"arm": arm, "metric": metric, "unit": unit, "label": name, "cases": stat.count,
                                "mean": stat.mean, "sd": stat.sd})
                if numbers:
                    label_means.append(float(np.mean(numbers)))
            stat = statistics(label_means, scale)
            records.append({"arm": arm, "metric": metric, "unit": unit, "label": "mean of labels",
                            "cases": stat.count, "mean": stat.mean, "sd": stat.sd})
    return records


def write_report(study: Study, report: dict, folder: Path | None = None) -> Path:
    """report.md, table.csv, tests.csv, box_<label>.png and curves_<arm>.png in the study's report folder."""
    folder = folder or study.folder / "report"
    folder.mkdir(parents=True, exist_ok=True)
    rows = table_rows(report)
    names = list(report["labels"])
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=list(TABLE_COLUMNS))
    writer.writeheader()
    writer.writerows(table_records(report))
    write_text_verified(folder / "table.csv", handle.getvalue())
    units = {metric: unit for metric, _, _, unit in report.get("metrics", METRICS)}
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(["arm", "baseline", "label", "metric", "unit", "n_cases", "median_difference", "mean_difference",
                     "ci95_low", "ci95_high", "p_wilcoxon", "p_holm", "significant"])
    for c in report["comparisons"]:
        writer.writerow([c.arm, report["baseline"], c.label, c.metric, units[c.metric], c.n, c.median_difference,
                         c.mean_difference, c.ci_low, c.ci_high, c.p, c.p_holm, c.significant])
    write_text_verified(folder / "tests.csv", handle.getvalue())
    pictures = plot_boxes(report, folder) + plot_curves(study, folder)
    arms = ", ".join(arm_description(a) for a in study.arms)
    folds = "; ".join(f"{arm}: {', '.join(numbers) or 'none'}" for arm, numbers in report["folds"].items())
    repeats = (f" Every arm and fold was trained {study.repeats} times (seeds {', '.join(map(str, study.seeds))}); "
               "each case's value is its mean over the repeats." if study.repeats > 1 else "")
    lines = [f"# Study {study.name}: {study.dataset}, {study.configuration}, {study.plans}", "",
             f"Arms: {arms}; "
             f"folds with validation results: {folds}.{repeats}",
             "",
             "Mean ± sd over all validation cases of all folds (cases where a label is empty on both sides are left "
             "out; HD95 also leaves out one-sided empty cases). `cases` is the arm's number of validation cases; a "
             "cell resting on fewer shows its own `(n=K)`, and a cell of one case shows that case's value alone. "
             "Dice and NSD in %, HD95 in mm, here, in the tests and in the plots.", "",
             "| arm | metric | cases | " + " | ".join(names) + " | mean |",
             "|---|---|---|" + "---|" * (len(names) + 1)]
    lines += ["| " + " | ".join(str(row[k]) for k in ["arm", "metric", "cases", *names, "mean"]) + " |" for row in rows]
    lines += ["", f"Paired Wilcoxon signed-rank test of each arm against `{report['baseline']}`, per label over the "
              f"cases both have; p corrected with Holm's method over the {len(names)} labels; * marks p_Holm < {ALPHA}. "
              "Beside it the mean paired difference with its 95% bootstrap confidence interval (percentile method, "
              f"{BOOTSTRAP_RESAMPLES} resamples).",
              "", "| arm | metric | label | n | median difference | mean difference [95% CI] | p | p (Holm) |",
              "|---|---|---|---|---|---|---|---|"]
    for c in report["comparisons"]:
        mark = " *" if c.significant else ""
        lines.append(f"| {c.arm} | {c.metric} ({units[c.metric]}) | {c.label} | {c.n} | {c.median_difference:.3g} | "
                     f"{c.mean_difference:.3g} [{c.ci_low:.3g}, {c.ci_high:.3g}] | {c.p:.3g} | {c.p_holm:.3g}{mark} |")
    lines += small_sample_lines(report["comparisons"])
    lines += spread_lines(report)
    lines += compute_lines(report.get("compute", {}), report["baseline"])
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in pictures]
    write_text_verified(folder / "report.md", "\n".join(lines) + "\n")
    write_text_verified(folder / "report.html", html_page(lines, folder, f"Study {study.name}"))
    return folder / "report.md"


def arm_description(arm) -> str:
    """``name`` (trainer, settings, own plans and configuration, the checkpoint it was fine-tuned from)."""
    parts = [arm.variant, arm.settings or None, arm.plans, arm.configuration,
             f"fine-tuned from {arm.pretrained}" if arm.pretrained else None]
    return f"`{arm.name}` ({', '.join(str(part) for part in parts if part)})"


def pyplot():
    """matplotlib's pyplot drawing into files (no display needed)."""
    from ImprovedNNUNetLib.core.dependencies import require_command_line_package

    require_command_line_package("matplotlib", "the study report's plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_boxes(report: dict, folder: Path) -> list[Path]:
    """One figure per label: a box plot per metric (Dice and NSD in %, HD95 in mm), one box per arm."""
    plt = pyplot()
    written = []
    arms = list(report["per_arm"])
    for name, value in report["labels"].items():
        panels = [(metric, unit, [[v * scale for v in arm_values(report, arm, value, key).values()]
                                  for arm in report["per_arm"]])
                  for metric, key, scale, unit in METRICS]
        if not any(any(data) for _, _, data in panels):
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels) + 0.9 * len(arms), 3.2))
        for ax, (metric, unit, data) in zip(axes, panels):
            ax.boxplot([d if d else [math.nan] for d in data], tick_labels=arms)
            ax.set_title(f"{metric}: {name}")
            ax.set_ylabel(f"{metric} per validation case ({unit})")
        written.append(save_figure(fig, folder / f"box_{name.replace(' ', '_')}.png"))
        plt.close(fig)
    return written


def plot_curves(study: Study, folder: Path) -> list[Path]:
    plt = pyplot()
    written = []
    for arm in study.arms:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        drawn = False
        for training in (t for t in trainings(study) if t.arm.name == arm.name):
            ends = [e for e in training.events() if e["stage"] == "training" and e["epoch_time_s"] is not None]
            if ends:  # markers too: a run of one epoch is one point, which a line alone does not draw
                epochs = [e["epoch"] + 1 for e in ends]  # counted from 1, as the epoch lines of `train`
                ax.plot(epochs, [e["train_loss"] for e in ends], "o-", markersize=3,
                        label=f"fold {training.fold}{f' r{training.repeat}' if training.repeat else ''} train")
                ax.plot(epochs, [e["val_loss"] for e in ends], "s--", markersize=3,
                        label=f"fold {training.fold}{f' r{training.repeat}' if training.repeat else ''} validation")
                drawn = True
        if drawn:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.set_title(f"{arm.name}: loss per epoch")
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
            written.append(save_figure(fig, folder / f"curves_{arm.name}.png"))
        plt.close(fig)
    return written
