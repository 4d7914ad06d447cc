"""The engine on inputs users bring: any memory layout, huge label values, and the count metrics
(accuracy, MCC, RVD, pixel accuracy, mean IoU) against hand-computed confusion counts."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.summary import EvaluatedCase, summarize

SPACING = (1.0, 0.8, 0.7)


def sphere(shape, centre, radius):
    grid = np.indices(shape).astype(float)
    scale = np.array(SPACING)[:, None, None, None]
    return (np.sqrt((((grid - np.array(centre)[:, None, None, None]) * scale) ** 2).sum(0)) <= radius)


def two_labels():
    shape = (30, 34, 38)
    ref = sphere(shape, (15, 17, 19), 8).astype(np.uint8) + 2 * sphere(shape, (8, 8, 8), 4)
    pred = sphere(shape, (16, 18, 18), 8).astype(np.uint8) + 2 * sphere(shape, (9, 8, 9), 4)
    return pred, ref


def same(a: dict, b: dict) -> bool:
    return all((isinstance(x, str) and x == b[k]) or (not isinstance(x, str) and
               (x == b[k] or (math.isnan(x) and math.isnan(b[k])))) for k, x in a.items())


def test_results_do_not_depend_on_memory_layout_or_dtype():
    pred, ref = two_labels()
    expected = compute_metrics_arrays(pred, ref, SPACING).to_dict()
    wide_pred = np.repeat(pred, 2, axis=2)  # a strided, non-contiguous view with the same values
    wide_ref = np.repeat(ref, 2, axis=2)
    variants = {
        "fortran": (np.asfortranarray(pred), np.asfortranarray(ref)),
        "non-contiguous": (wide_pred[:, :, ::2], wide_ref[:, :, ::2]),
        "int32": (pred.astype(np.int32), ref.astype(np.int32)),
        "float": (pred.astype(np.float32), ref.astype(np.float64)),
        "mixed": (np.asfortranarray(pred.astype(np.uint16)), ref),
    }
    for name, (p, r) in variants.items():
        got = compute_metrics_arrays(p, r, SPACING).to_dict()
        for label in expected:
            assert same(got[label], expected[label]), (name, label, got[label], expected[label])


def test_a_label_near_2_to_the_31_costs_what_its_voxels_cost():
    ref = np.zeros((10, 12, 14), np.int64)
    ref[2:6, 3:8, 4:9] = 2**31 - 1
    ref[6:9, 3:8, 4:9] = 7
    pred = ref.copy()
    pred[2, 3:8, 4:9] = 0
    tracemalloc.start()
    metrics = compute_metrics_arrays(pred, ref, SPACING)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB for a 10x12x14 image"
    assert set(metrics.labels) == {7, 2**31 - 1}
    assert metrics[2**31 - 1].dice == pytest.approx(2 * 75 / (75 + 100))
    assert metrics[7].dice == 1.0


def test_accuracy_mcc_rvd_match_hand_counts():
    ref = np.zeros((1000,), np.uint8)
    pred = np.zeros((1000,), np.uint8)
    ref[:100] = 1      # |G| = 100
    pred[60:180] = 1   # |P| = 120; TP = 40, FP = 80, FN = 60, TN = 820
    m = compute_metrics_arrays(pred.reshape(10, 10, 10), ref.reshape(10, 10, 10), (1, 1, 1))[1]
    tp, fp, fn, tn = 40, 80, 60, 820
    assert m.accuracy == pytest.approx((tp + tn) / 1000)
    assert m.mcc == pytest.approx((tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    assert m.rvd == pytest.approx((120 - 100) / 100)
    assert m.to_dict()["MCC"] == m.mcc and m.to_dict()["RVD"] == m.rvd and m.to_dict()["Accuracy"] == m.accuracy


def test_empty_sides_follow_the_contract():
    ref = np.zeros((5, 5, 5), np.uint8)
    pred = ref.copy()
    pred[1:3, 1:3, 1:3] = 1
    one_sided = compute_metrics_arrays(pred, ref, (1, 1, 1), labels=[1, 2])
    assert math.isnan(one_sided[1].rvd) and math.isnan(one_sided[1].mcc)
    assert one_sided[2].rvd == 0.0 and one_sided[2].mcc == 1.0 and one_sided[2].accuracy == 1.0


def test_summary_has_pixel_accuracy_and_mean_iou():
    pred, ref = two_labels()
    metrics = compute_metrics_arrays(pred, ref, SPACING)
    summary = summarize([EvaluatedCase("a", "r", "p", metrics)])
    assert summary["pixel_accuracy"] == pytest.approx(np.mean(pred == ref))
    assert summary["metric_per_case"][0]["pixel_accuracy"] == pytest.approx(np.mean(pred == ref))
    assert summary["mean_IoU"] == pytest.approx(np.mean([metrics[1].iou, metrics[2].iou]))
    for key in ("Accuracy", "MCC", "RVD"):
        assert summary["mean"]["1"][key] == pytest.approx(metrics[1].to_dict()[key])
