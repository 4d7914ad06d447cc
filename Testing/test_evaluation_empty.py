"""The empty-structure policy in the Python API, summary.json and metrics.csv."""
import csv
import json
import math

import numpy as np
import pytest

from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.summary import EvaluatedCase, summarize, write_summary

SPACING = (2.0, 1.0, 1.0)


def _volume(*labelled_boxes):
    a = np.zeros((8, 16, 16), np.uint8)
    for label, z in labelled_boxes:
        a[z:z + 3, 4:10, 4:10] = label
    return a


@pytest.fixture(scope="module")
def empty_cases():
    """Label 1 fine in both; 2 only in the reference; 3 only in the prediction; 4 in neither."""
    pred = _volume((1, 1), (3, 5))
    ref = _volume((1, 2), (2, 5))
    return compute_metrics_arrays(pred, ref, SPACING, labels=[1, 2, 3, 4])


def test_both_empty(empty_cases):
    m = empty_cases[4]
    assert m.status == "both empty"
    assert (m.dice, m.iou, m.nsd) == (1.0, 1.0, 1.0)
    assert (m.hd, m.hd95, m.hd99_9, m.assd) == (0.0, 0.0, 0.0, 0.0)
    assert math.isnan(m.sensitivity)
    assert m.specificity == 1.0
    assert m.volume_ref_ml == m.volume_pred_ml == 0.0


def test_prediction_empty(empty_cases):
    m = empty_cases[2]
    assert m.status == "prediction empty"
    assert (m.dice, m.iou, m.nsd, m.sensitivity) == (0.0, 0.0, 0.0, 0.0)
    assert all(math.isinf(v) and v > 0 for v in (m.hd, m.hd95, m.hd99_9, m.assd))
    assert m.volume_pred_ml == 0.0 and m.volume_ref_ml == pytest.approx(3 * 36 * 2.0 / 1000)


def test_reference_empty(empty_cases):
    m = empty_cases[3]
    assert m.status == "reference empty"
    assert (m.dice, m.iou, m.nsd) == (0.0, 0.0, 0.0)
    assert all(math.isinf(v) for v in (m.hd, m.hd95, m.hd99_9, m.assd))
    assert math.isnan(m.sensitivity)
    assert m.specificity == pytest.approx(1 - 108 / (8 * 16 * 16))  # TN over the whole image


def test_default_labels_are_the_union_of_both_sides():
    result = compute_metrics_arrays(_volume((1, 1), (3, 5)), _volume((2, 5)), SPACING)
    assert sorted(result.labels) == [1, 2, 3]


def test_json_uses_null_and_status_and_csv_uses_inf(empty_cases, tmp_path):
    case = EvaluatedCase("c1", "ref.nii.gz", "pred.nii.gz", empty_cases)
    json_path, csv_path = write_summary([case], tmp_path)
    summary = json.loads(json_path.read_text())
    per_label = summary["metric_per_case"][0]["metrics"]
    assert per_label["2"]["HD95"] is None and per_label["2"]["status"] == "prediction empty"
    assert per_label["3"]["ASSD"] is None and per_label["3"]["status"] == "reference empty"
    assert per_label["4"]["HD"] == 0.0 and per_label["4"]["Sensitivity"] is None
    rows = {row["label"]: row for row in csv.DictReader(csv_path.open())}
    assert rows["2"]["HD95"] == "inf" and rows["3"]["Sensitivity"] == "nan"
    assert rows["1"]["status"] == "ok" and float(rows["1"]["Dice"]) == pytest.approx(empty_cases[1].dice)


def test_means_skip_both_empty_and_infinite_distances(empty_cases):
    other = compute_metrics_arrays(_volume((2, 4), (4, 1)), _volume((2, 4), (4, 1)), SPACING, labels=[1, 2, 3, 4])
    cases = [EvaluatedCase("a", "r", "p", empty_cases), EvaluatedCase("b", "r", "p", other)]
    means = summarize(cases)["mean"]
    # label 2: prediction empty in case a, perfect in case b
    assert means["2"]["Dice"] == pytest.approx(0.5)
    assert means["2"]["HD95"] == 0.0  # only case b counts
    assert (means["2"]["n_cases"], means["2"]["n_both_empty"], means["2"]["n_one_side_empty"]) == (2, 0, 1)
    # label 4: both empty in case a (left out), perfect in case b
    assert means["4"]["Dice"] == 1.0 and means["4"]["n_both_empty"] == 1
    # label 1: missing in case b on both sides, so only case a counts
    assert means["1"]["Dice"] == pytest.approx(empty_cases[1].dice)
    assert means["1"]["n_both_empty"] == 1


def test_foreground_mean_is_mean_of_label_means(empty_cases):
    summary = summarize([EvaluatedCase("a", "r", "p", empty_cases)])
    dice = [summary["mean"][k]["Dice"] for k in ("1", "2", "3")]  # label 4 is both empty: no mean
    assert summary["mean"]["4"]["Dice"] is None
    assert summary["foreground_mean"]["Dice"] == pytest.approx(np.mean(dice))
    assert summary["foreground_mean"]["HD"] == pytest.approx(empty_cases[1].hd)
    assert summary["tau_mm"] == 1.0


def test_label_absent_from_a_case_counts_as_both_empty():
    a = compute_metrics_arrays(_volume((1, 1), (2, 5)), _volume((1, 1), (2, 5)), SPACING)
    b = compute_metrics_arrays(_volume((1, 2)), _volume((1, 1)), SPACING)  # no label 2 anywhere
    means = summarize([EvaluatedCase("a", "r", "p", a), EvaluatedCase("b", "r", "p", b)])["mean"]
    assert (means["2"]["n_cases"], means["2"]["n_both_empty"], means["2"]["Dice"]) == (2, 1, 1.0)
    assert (means["1"]["n_cases"], means["1"]["n_both_empty"]) == (2, 0)
