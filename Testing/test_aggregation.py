"""One per-label aggregation: evaluate's summary.json, compare's table and the study report count and leave out
the same cases, and compare and the report evaluate through the evaluation runner."""
import gzip
import math

import numpy as np
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.aggregate import aggregate_label, label_values, mean_of_labels
from ImprovedNNUNetLib.evaluation.summary import EvaluatedCase, summarize
from ImprovedNNUNetTrainingLib.analysis.compare import compare_runs, summarise_labels
from ImprovedNNUNetTrainingLib.analysis.study.report import table_records

SPACING = (2.0, 1.0, 1.0)
NAMES = {"one": 1, "two": 2, "three": 3}


def volume(*boxes):
    a = np.zeros((8, 16, 16), np.uint8)
    for label, z, x in boxes:
        a[z:z + 3, 4:10, x:x + 6] = label
    return a


@pytest.fixture(scope="module")
def cases():
    """Four cases: label 1 everywhere (shifted once); label 2 missed in case b (prediction empty) and absent from
    case c and d; label 3 on neither side in a and b, predicted only in c (reference empty)."""
    pairs = {
        "a": (volume((1, 1, 4), (2, 5, 4)), volume((1, 1, 4), (2, 5, 4))),
        "b": (volume((1, 1, 5)), volume((1, 1, 4), (2, 5, 4))),
        "c": (volume((1, 1, 4), (3, 5, 4)), volume((1, 1, 4))),
        "d": (volume((1, 2, 4)), volume((1, 1, 4))),
    }
    return {case: compute_metrics_arrays(pred, ref, SPACING, labels=NAMES) for case, (pred, ref) in pairs.items()}


def test_the_rule_counts_what_it_leaves_out(cases):
    two = aggregate_label(cases.values(), 2)
    assert (two.n_cases, two.n_both_empty, two.n_one_side_empty, two.n_counted) == (4, 2, 1, 2)
    assert two.stats["Dice"].count == 2 and two.stats["Dice"].mean == pytest.approx(0.5)  # 1 and 0 (missed)
    assert two.stats["HD95"].count == 1 and two.skipped("HD95") == 1  # the miss's distance is infinite
    assert two.stats["Sensitivity"].count == 2 and two.skipped("Dice") == 0
    three = aggregate_label(cases.values(), 3)
    assert (three.n_both_empty, three.n_one_side_empty) == (3, 1)
    assert three.skipped("Sensitivity") == 1  # undefined (NaN) without reference voxels: skipped, counted
    assert label_values(cases, 2, "HD95") == {"a": 0.0}
    assert set(label_values(cases, 1, "Dice")) == {"a", "b", "c", "d"}
    over = mean_of_labels([aggregate_label(cases.values(), v) for v in NAMES.values()], "Dice")
    assert over.count == 3


def test_summary_compare_and_report_agree(cases):
    summary = summarize([EvaluatedCase(c, "", "", m) for c, m in cases.items()])
    compared = {s.name: s for s in summarise_labels(list(cases.values()), NAMES)}
    report = {"per_arm": {"arm": cases}, "labels": NAMES}
    records = {(r["metric"], r["label"]): r for r in table_records(report)}
    for name, value in NAMES.items():
        means = summary["mean"][str(value)]
        assert compared[name].cases == means["n_cases"] - means["n_both_empty"]
        for key, attribute, scale in (("Dice", "dice", 100.0), ("HD95", "hd95", 1.0), ("NSD", "nsd", 100.0)):
            stat = getattr(compared[name], attribute)
            record = records[(key, name)]
            assert record["cases"] == stat.count
            if means[key] is None:
                assert stat.count == 0 and math.isnan(record["mean"])
            else:
                assert stat.mean == pytest.approx(means[key]) and record["mean"] == pytest.approx(means[key] * scale)
                assert record["sd"] == pytest.approx(stat.sd * scale)
        assert compared[name].hd95_skipped == compared[name].cases - compared[name].hd95.count
    dice_of_labels = records[("Dice", "mean of labels")]["mean"]
    assert dice_of_labels == pytest.approx(summary["foreground_mean"]["Dice"] * 100)


def test_compare_gives_the_same_table_with_one_or_two_worker_processes(validation_layout):
    one, two = compare_runs("987", jobs=1), compare_runs("987", jobs=2)
    assert [(s.variant, s.fold) for s in one] == [(s.variant, s.fold) for s in two]
    for a, b in zip(one, two):
        for x, y in zip(a.labels, b.labels):
            assert (x.cases, x.hd95_skipped, x.dice.count) == (y.cases, y.hd95_skipped, y.dice.count)
            assert x.dice.mean == pytest.approx(y.dice.mean, nan_ok=True)


def test_compare_checks_every_reference_before_evaluating(validation_layout, monkeypatch):
    """The runner's integrity pre-check covers the raw references too: a truncated labelsTr file is named before
    any case is evaluated (compare's own loop read and measured the cases before it, one by one)."""
    import ImprovedNNUNetLib.evaluation as evaluation
    import ImprovedNNUNetLib.evaluation.runner as runner

    measured = []
    for module in (runner, evaluation):
        original = module.compute_metrics
        monkeypatch.setattr(module, "compute_metrics", lambda *a, _f=original, **k: measured.append(1) or _f(*a, **k))
    raw, _ = validation_layout
    reference = raw / "labelsTr" / "chest_002.nii.gz"
    data = gzip.decompress(reference.read_bytes())
    reference.write_bytes(gzip.compress(data[: len(data) // 2]))
    with pytest.raises(UserError, match="chest_002.nii.gz") as error:
        compare_runs("987", jobs=1)
    assert "incomplete" in str(error.value) or "truncated" in str(error.value)
    assert measured == []
