"""Comparing trained runs of a dataset on nnU-Net's validation outputs.

Every ``<nnUNet_results>/<dataset>/<trainer>__<plans>__<configuration>/fold_<n>/validation``
folder is evaluated against the raw ``labelsTr`` through the evaluation runner (the integrity pre-check of
every file, cases in worker processes): Dice, HD95 and NSD per label, as mean ± standard deviation over the
fold's validation cases (and over all folds of a run together), aggregated by the evaluation's one rule
(:mod:`ImprovedNNUNetLib.evaluation.aggregate`): labels empty in both prediction and reference are left out;
distances of one-sided empty labels (infinite) are skipped and counted.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.manifest import Outputs
from ImprovedNNUNetLib.core.safe_write import readable_whole, write_text_verified
from ImprovedNNUNetLib.evaluation import labels_from_dataset_json
from ImprovedNNUNetLib.evaluation.aggregate import Stat, aggregate_label
from ImprovedNNUNetLib.evaluation.cases import CasePair
from ImprovedNNUNetLib.evaluation.results import CaseMetrics
from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_values, folder_variable

RUN_FOLDER = re.compile(r"^(?P<trainer>.+?)__(?P<plans>.+?)__(?P<configuration>.+)$")
FOLD_FOLDER = re.compile(r"^fold_(?P<fold>\d+|all)$")
ALL_FOLDS = "all folds"
CSV_COLUMNS = ("variant", "trainer", "plans", "configuration", "fold", "label", "name", "cases",
               "Dice_mean", "Dice_sd", "HD95_mean", "HD95_sd", "HD95_skipped", "NSD_mean", "NSD_sd",
               "LesionF1_mean", "LesionF1_sd", "lesions_missed")


@dataclass
class TrainedFold:
    """One trained fold with validation predictions."""

    variant: str
    trainer: str
    plans: str
    configuration: str
    fold: str
    folder: Path

    @property
    def validation(self) -> Path:
        return self.folder / "validation"


@dataclass
class LabelSummary:
    """Mean ± population standard deviation of one label over the evaluated cases."""

    label: int
    name: str
    cases: int
    dice: Stat
    hd95: Stat
    nsd: Stat
    hd95_skipped: int
    lesion_f1: Stat | None = None  # with lesion metrics: the per-case lesion F1 over the cases with lesions
    lesions_missed: int | None = None  # and the reference lesions missed over all cases


@dataclass
class RunSummary:
    """One row group of the comparison: a fold, or all folds of a run pooled (``fold == ALL_FOLDS``)."""

    variant: str
    trainer: str
    plans: str
    configuration: str
    fold: str
    labels: list[LabelSummary] = field(default_factory=list)

    def csv_rows(self) -> list[dict]:
        rows = []
        for s in self.labels:
            rows.append({
                "variant": self.variant, "trainer": self.trainer, "plans": self.plans,
                "configuration": self.configuration, "fold": self.fold, "label": s.label, "name": s.name,
                "cases": s.cases, "Dice_mean": s.dice.mean, "Dice_sd": s.dice.sd, "HD95_mean": s.hd95.mean,
                "HD95_sd": s.hd95.sd, "HD95_skipped": s.hd95_skipped, "NSD_mean": s.nsd.mean, "NSD_sd": s.nsd.sd,
                "LesionF1_mean": s.lesion_f1.mean if s.lesion_f1 else "", "LesionF1_sd": s.lesion_f1.sd if s.lesion_f1
                else "", "lesions_missed": "" if s.lesions_missed is None else s.lesions_missed,
            })
        return rows


def variant_of(fold_folder: Path, trainer: str) -> str:
    """The run's variant name: from its variant_settings.json, else the registry, else the trainer name."""
    settings = fold_folder / "variant_settings.json"
    if settings.is_file():
        try:
            recorded = json.loads(settings.read_text())["variant"]
            if recorded:  # None for a trainer that is not one of the variants (train --trainer)
                return str(recorded)
        except (ValueError, KeyError, TypeError):
            pass
    from ImprovedNNUNetTrainingLib.engine.registry import trainer_class_by_name, variant_name

    cls = trainer_class_by_name(trainer)
    return (variant_name(cls) if cls is not None else None) or trainer


def find_trained_folds(results_dataset: Path) -> list[TrainedFold]:
    """Every fold folder under a dataset's results folder that holds validation predictions, and those of
    every study arm (``studies/<study>/arms/<arm>/<dataset>/``, shown as variant ``<study>/<arm>``)."""
    found = _trained_folds_in(results_dataset)
    studies = results_dataset / "studies"
    for arm in sorted(studies.glob(f"*/arms/*/{results_dataset.name}")):
        study, arm_name = arm.parents[2].name, arm.parent.name
        found += [TrainedFold(f"{study}/{arm_name}", f.trainer, f.plans, f.configuration, f.fold, f.folder)
                  for f in _trained_folds_in(arm)]
    for repeat in sorted(studies.glob(f"*/arms/*/repeat_*/{results_dataset.name}")):  # a study's repeats 1, 2, ...
        study, arm_name = repeat.parents[3].name, repeat.parents[1].name
        found += [TrainedFold(f"{study}/{arm_name}/{repeat.parent.name}", f.trainer, f.plans, f.configuration, f.fold,
                              f.folder) for f in _trained_folds_in(repeat)]
    return found


def _trained_folds_in(results_dataset: Path) -> list[TrainedFold]:
    found = []
    for run in sorted(p for p in results_dataset.iterdir() if p.is_dir()):
        match = RUN_FOLDER.match(run.name)
        if not match:
            continue
        for fold in sorted(p for p in run.iterdir() if p.is_dir()):
            fold_match = FOLD_FOLDER.match(fold.name)
            if fold_match and (fold / "validation").is_dir():
                found.append(TrainedFold(variant_of(fold, match["trainer"]), match["trainer"], match["plans"],
                                         match["configuration"], fold_match["fold"], fold))
    return found


def validation_pairs(validation: Path, labels_folder: Path, file_ending: str) -> list[CasePair]:
    """Every prediction of a fold's ``validation`` folder paired with its raw reference (checked: present, and
    the prediction whole, with the way to write it again)."""
    pairs = []
    for prediction in sorted(validation.glob(f"*{file_ending}")):
        reference = labels_folder / prediction.name
        if not reference.is_file():
            raise UserError(f"{prediction.name}: no reference {reference}; the raw dataset does not match the "
                            "trained run (check nnUNet_raw)")
        if not readable_whole(prediction):  # nnU-Net wrote it: validating again writes it anew
            raise UserError(f"{prediction} is incomplete (the final validation was interrupted or the disk filled); "
                            f"write the fold's validation again: improved-nnunet train DATASET --variant VARIANT "
                            f"--fold {validation.parent.name.removeprefix('fold_')} --val")
        pairs.append(CasePair(prediction.name[: -len(file_ending)], prediction, reference))
    return pairs


def validation_metrics(validations: list[Path], labels_folder: Path, labels: dict[str, int], file_ending: str,
                       tau_mm: float, jobs: int | None = None, required: bool = False,
                       options=None) -> list[dict[str, CaseMetrics]]:
    """{case id: metrics} of every prediction in each fold's ``validation`` folder against its raw reference,
    all folds evaluated together through the evaluation runner (``jobs`` worker processes; default: the cores
    available). ``required``: a folder without predictions is an error (else it gives no cases)."""
    from ImprovedNNUNetLib.evaluation.runner import evaluate_pairs

    per_folder = [validation_pairs(folder, labels_folder, file_ending) for folder in validations]
    for folder, pairs in zip(validations, per_folder):
        if required and not pairs:
            raise UserError(f"{folder} holds no {file_ending} predictions; run the fold's validation "
                            "(train it to the end or with --val) first")
    evaluated = iter(evaluate_pairs([pair for pairs in per_folder for pair in pairs], labels, tau_mm, jobs,
                                    options=options))
    return [{pair.case_id: next(evaluated).metrics for pair in pairs} for pairs in per_folder]


def summarise_labels(cases: list[CaseMetrics], labels: dict[str, int]) -> list[LabelSummary]:
    summaries = []
    for name, value in labels.items():
        aggregate = aggregate_label(cases, value, ("Dice", "HD95", "NSD", "LesionF1"))
        stats = aggregate.stats
        summary = LabelSummary(value, name, aggregate.n_counted, stats["Dice"], stats["HD95"], stats["NSD"],
                               aggregate.skipped("HD95"))
        lesions = [c.labels[value].instances for c in cases
                   if value in c.labels and c.labels[value].instances is not None]
        if lesions:  # the lesion F1 aggregated by the one rule (cases without lesions on either side left out)
            summary.lesion_f1 = stats["LesionF1"]
            summary.lesions_missed = sum(i.fn for i in lesions)
        summaries.append(summary)
    return summaries


def compare_runs(dataset: str, tau_mm: float = 1.0, folders=None, jobs: int | None = None,
                 instances: bool = False) -> list[RunSummary]:
    """Summaries of every trained fold of ``dataset`` (id or name), plus all folds pooled per run
    where a run has more than one fold; ``jobs`` worker processes evaluate the cases (default: the cores
    available); ``instances`` adds the lesion-wise F1 and missed lesions (the evaluation's lesion metrics)."""
    from ImprovedNNUNetLib.evaluation.options import metric_options

    options = metric_options(None, ("overlap", "distance", "nsd"), instances_on=instances)[0]
    name = dataset_name(dataset, folders)
    results = folder_variable("nnUNet_results", folders) / name
    raw = folder_variable("nnUNet_raw", folders) / name
    if not results.is_dir():
        raise UserError(f"{results}: no trained runs of {name}; train a variant first (improved-nnunet train)")
    info_path = raw / "dataset.json"
    if not info_path.is_file():
        raise UserError(f"{info_path}: not found; the raw dataset is needed for the references (check nnUNet_raw)")
    labels = labels_from_dataset_json(info_path)
    file_ending = json.loads(info_path.read_text()).get("file_ending", ".nii.gz")
    folds = find_trained_folds(results)
    if not folds:
        raise UserError(f"{results}: no fold has validation outputs yet; finish training a fold first")
    evaluated = validation_metrics([f.validation for f in folds], raw / "labelsTr", labels, file_ending, tau_mm, jobs,
                                   required=True, options=options)
    summaries: list[RunSummary] = []
    pooled: dict[tuple, list[list[CaseMetrics]]] = {}
    for fold, metrics in zip(folds, evaluated):
        cases = list(metrics.values())
        key = (fold.variant, fold.trainer, fold.plans, fold.configuration)
        pooled.setdefault(key, []).append(cases)
        summaries.append(RunSummary(*key, fold.fold, summarise_labels(cases, labels)))
    for key, per_fold in pooled.items():
        if len(per_fold) > 1:
            everything = [case for cases in per_fold for case in cases]
            summaries.append(RunSummary(*key, ALL_FOLDS, summarise_labels(everything, labels)))
    return sorted(summaries, key=lambda s: (s.variant, s.configuration, s.trainer, s.fold == ALL_FOLDS, s.fold))


def check_csv_free(path: str | Path, overwrite: bool = False) -> None:
    """A CSV an earlier compare wrote (and nobody changed since) is simply replaced; any other file
    there only with ``overwrite``. Checked before anything is evaluated."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise UserError(f"--csv {path} is a folder; give a file name for the table")
    if path.exists() and not overwrite and not Outputs(path.parent, "compare").owns(path):
        raise UserError(f"{path} exists and was not written by compare (or was edited since); choose another "
                        "--csv path or pass --overwrite to replace it")


def write_csv(summaries: list[RunSummary], path: str | Path, overwrite: bool = False) -> Path:
    """One CSV row per run, fold and label (see :func:`check_csv_free` for when a file is replaced)."""
    path = Path(path)
    check_csv_free(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for summary in summaries:
        writer.writerows(summary.csv_rows())
    write_text_verified(path, handle.getvalue())
    outputs = Outputs(path.parent, "compare")
    outputs.record(path)
    outputs.save()
    return path


def format_table(summaries: list[RunSummary]) -> str:
    """The papers' layout: a row per run, fold and metric, a column per label and their mean.

    Dice and NSD in %, HD95 in mm, each as mean±sd over the cases.
    """
    if not summaries:
        return "no trained runs"
    names = [s.name for s in summaries[0].labels]
    header = ["variant", "configuration", "fold", "metric", *names, "mean"]
    rows = []
    for summary in summaries:
        metrics = [("Dice (%)", "dice", 100.0, 1), ("HD95 (mm)", "hd95", 1.0, 2), ("NSD (%)", "nsd", 100.0, 1)]
        if any(label.lesion_f1 is not None for label in summary.labels):
            metrics.append(("lesion F1 (%)", "lesion_f1", 100.0, 1))
        for metric, attribute, scale, digits in metrics:
            stats = [getattr(label, attribute) or Stat.of([]) for label in summary.labels]
            over_labels = Stat.of(s.mean for s in stats if s.count)
            mean = f"{over_labels.mean * scale:.{digits}f}" if over_labels.count else "-"
            rows.append([summary.variant, summary.configuration, summary.fold, metric,
                         *(s.text(scale, digits) for s in stats), mean])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def summaries_to_json(summaries: list[RunSummary]) -> list[dict]:
    """The summaries as JSON-ready dictionaries (``compare --json``); NaN stays NaN (Python's json reads it)."""
    from dataclasses import asdict

    return [asdict(summary) for summary in summaries]


def summaries_from_json(items: list[dict]) -> list[RunSummary]:
    """`summaries_to_json` read back."""
    runs = []
    for item in items:
        labels = [LabelSummary(label=int(s["label"]), name=str(s["name"]), cases=int(s["cases"]),
                               dice=Stat(**s["dice"]), hd95=Stat(**s["hd95"]), nsd=Stat(**s["nsd"]),
                               hd95_skipped=int(s["hd95_skipped"]),
                               lesion_f1=Stat(**s["lesion_f1"]) if s.get("lesion_f1") else None,
                               lesions_missed=s.get("lesions_missed")) for s in item["labels"]]
        runs.append(RunSummary(item["variant"], item["trainer"], item["plans"], item["configuration"],
                               str(item["fold"]), labels))
    return runs


def start_comparison(dataset: str, tau_mm: float = 1.0, folders=None):
    """`improved-nnunet compare DATASET --tau T --json` as a child process (a GUI polls it; the evaluation
    never runs on a thread of the GUI process). Its CSV goes where the command writes it by default."""
    from ImprovedNNUNetLib.core.process import ChildProcess, child_environment, cli_command

    return ChildProcess.start(cli_command("compare", str(dataset), "--tau", repr(float(tau_mm)), "--json"),
                              env=child_environment(folder_values(folders)))


def comparison_result(process) -> list[RunSummary]:
    """The summaries a finished `start_comparison` process printed; `UserError` naming why it failed."""
    events = [event for event in process.events if event.get("stage") == "done" and "summaries" in event]
    if process.returncode == 0 and events:
        return summaries_from_json(events[-1]["summaries"])
    if process.cancelled:
        raise UserError("the comparison was cancelled; press Compare again")
    reason = process.last_error_line or f"exit status {process.returncode}"
    raise UserError(f"comparing the runs failed: {reason}")
