"""`compare`: validation outputs laid out as nnU-Net writes them, evaluated against the raw labels.

References are crops of slicerio's real chest CT segmentation; predictions are those labels
copied, with a structure removed, or shifted, so the expected numbers follow from the data.
"""
import csv
import math
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.training import DATASET_NAME, LABELS
from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image
from ImprovedNNUNetLib.evaluation import compute_metrics
from ImprovedNNUNetTrainingLib.analysis.compare import ALL_FOLDS, compare_runs, format_table

LEFT_LUNG = LABELS["left lung"]


def by_key(summaries):
    return {(s.variant, s.fold): {label.name: label for label in s.labels} for s in summaries}


def present(raw, case):
    return set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTr" / f"{case}.nii.gz")))))


def test_summaries_follow_from_the_predictions(validation_layout):
    raw, results = validation_layout
    table = by_key(compare_runs("987"))
    assert set(table) == {("baseline", "0"), ("baseline", "1"), ("baseline", ALL_FOLDS), ("loss", "0")}

    fold0 = table[("baseline", "0")]
    for name, value in LABELS.items():
        if value == 0:
            continue
        expected_cases = sum(value in present(raw, c) for c in ("chest_000", "chest_001"))
        assert fold0[name].cases == expected_cases  # labels absent from both sides are left out
        if expected_cases:
            assert (fold0[name].dice.mean, fold0[name].dice.sd, fold0[name].hd95.mean, fold0[name].nsd.mean) == (1, 0, 0, 1)

    removed = table[("baseline", "1")]["left lung"]
    assert removed.cases == 1 and removed.dice.mean == 0 and removed.nsd.mean == 0
    assert removed.hd95.count == 0 and removed.hd95_skipped == 1  # infinite distance skipped, counted

    pooled = table[("baseline", ALL_FOLDS)]["left lung"]
    left_lung_cases = [c for c in ("chest_000", "chest_001", "chest_002") if LEFT_LUNG in present(raw, c)]
    assert pooled.cases == len(left_lung_cases)
    dices = [0.0 if c == "chest_002" else 1.0 for c in left_lung_cases]
    assert pooled.dice.mean == pytest.approx(np.mean(dices)) and pooled.dice.sd == pytest.approx(np.std(dices))

    validation = results / "nnUNetTrainerLoss__nnUNetPlans__3d_fullres/fold_0/validation"
    direct = compute_metrics(read_image(validation / "chest_000.nii.gz"),
                             read_image(raw / "labelsTr/chest_000.nii.gz"), {n: v for n, v in LABELS.items() if v})
    for name, summary in table[("loss", "0")].items():
        metrics = direct[LABELS[name]]
        if summary.cases:
            assert summary.dice.mean == pytest.approx(metrics.dice)
            assert summary.nsd.mean == pytest.approx(metrics.nsd)
            assert summary.dice.mean < 1.0
            if math.isfinite(metrics.hd95):
                assert summary.hd95.mean == pytest.approx(metrics.hd95) and summary.hd95.mean > 0


def test_cli_writes_csv_prints_table_and_reruns_replace_only_its_own_csv(validation_layout, capsys):
    raw, results = validation_layout
    assert main(["compare", DATASET_NAME]) == 0
    printed = capsys.readouterr().out
    assert "Dice (%)" in printed and "HD95 (mm)" in printed and "NSD (%)" in printed
    assert "left lung" in printed and ALL_FOLDS in printed
    rows = list(csv.DictReader(open(results / "comparison.csv")))
    foreground = len(LABELS) - 1
    assert len(rows) == 4 * foreground
    assert {(r["variant"], r["fold"]) for r in rows} == {("baseline", "0"), ("baseline", "1"),
                                                         ("baseline", ALL_FOLDS), ("loss", "0")}
    row = next(r for r in rows if r["variant"] == "baseline" and r["fold"] == "1" and r["name"] == "left lung")
    assert float(row["Dice_mean"]) == 0.0 and row["HD95_skipped"] == "1"

    assert main(["compare", "987", "--tau", "2"]) == 0  # re-running replaces compare's own CSV
    capsys.readouterr()
    (results / "comparison.csv").write_text("my edited table")  # now the user's: kept without --overwrite
    assert main(["compare", "987"]) == 2
    assert "comparison.csv exists and was not written by compare" in capsys.readouterr().err
    assert (results / "comparison.csv").read_text() == "my edited table"
    mine = results / "mine.csv"
    mine.write_text("mine")
    assert main(["compare", "987", "--csv", str(mine)]) == 2
    assert mine.read_text() == "mine"
    assert main(["compare", "987", "--overwrite", "--tau", "2"]) == 0


def test_table_layout_is_one_row_per_run_fold_and_metric(validation_layout):
    summaries = compare_runs(DATASET_NAME)
    lines = format_table(summaries).splitlines()
    assert lines[0].split()[:4] == ["variant", "configuration", "fold", "metric"]
    assert len(lines) == 2 + 3 * len(summaries)
    assert any(line.startswith("baseline") and "Dice (%)" in line and "100.0±0.0" in line for line in lines)


def test_clear_errors_without_trained_runs(validation_layout):
    raw, results = validation_layout
    shutil.rmtree(results)
    with pytest.raises(UserError, match="no trained runs"):
        compare_runs("987")
    (results / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0").mkdir(parents=True)
    with pytest.raises(UserError, match="no fold has validation outputs"):
        compare_runs("987")


def test_lesion_metrics_in_the_comparison(validation_layout, capsys):
    """compare --instances: the lesion F1 per label (mean over cases) and the missed lesions, the numbers that
    evaluate's lesion metrics give for the same cases; a structure removed in fold 1 is a missed lesion."""
    raw, _ = validation_layout
    table = by_key(compare_runs("987", instances=True))
    removed = table[("baseline", "1")]["left lung"]
    assert removed.lesions_missed >= 1 and removed.lesion_f1.mean == 0.0
    exact = table[("baseline", "0")]["left lung"]
    assert exact.lesions_missed == 0 and exact.lesion_f1.mean == 1.0
    assert by_key(compare_runs("987"))[("baseline", "0")]["left lung"].lesion_f1 is None  # only when asked
    assert main(["compare", "987", "--instances", "--csv", str(raw.parent / "lesions.csv")]) == 0
    assert "lesion F1 (%)" in capsys.readouterr().out
    rows = list(csv.DictReader(open(raw.parent / "lesions.csv")))
    assert {r["LesionF1_mean"] for r in rows if r["name"] == "left lung" and r["fold"] == "1"} == {"0.0"}
