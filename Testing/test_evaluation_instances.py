"""Lesion-wise (instance) metrics: hand-made cases, and agreement with panoptica and the BraTS 2023 rules."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.components import components, structure_for
from ImprovedNNUNetLib.evaluation.options import InstanceOptions, metric_options

LESION, _ = metric_options("lesion")


def lesions(pred, ref, spacing=(1.0, 1.0, 1.0), **settings):
    options = LESION if not settings else LESION.__class__(LESION.groups, InstanceOptions(**settings), "lesion")
    return compute_metrics_arrays(pred, ref, spacing, [1], 1.0, options)[1].instances


def cube(volume, corner, size, value=1):
    volume[tuple(slice(c, c + s) for c, s in zip(corner, size))] = value


def test_components_are_scipys_labels_exactly():
    rng = np.random.default_rng(0)
    for trial in range(20):
        shape = tuple(int(n) for n in rng.integers(4, 40, size=3))
        mask = rng.random(shape) < rng.uniform(0.02, 0.4)
        for connectivity in (6, 18, 26):
            labelled, count = ndimage.label(mask, structure_for(connectivity, 3))
            found = components(mask, connectivity)
            assert len(found) == count
            for number, component in enumerate(found, start=1):
                assert np.array_equal(labelled[component.box] == number, component.mask)
                assert component.size == np.count_nonzero(labelled == number)


def test_two_lesions_one_missed():
    ref = np.zeros((20, 40, 40), np.uint8)
    pred = np.zeros_like(ref)
    cube(ref, (2, 2, 2), (6, 6, 6))  # 216 voxels, found
    cube(pred, (2, 2, 3), (6, 6, 6))
    cube(ref, (10, 25, 25), (3, 3, 3))  # 27 voxels, missed
    m = lesions(pred, ref, spacing=(2.0, 1.0, 1.0))
    assert (m.n_ref, m.n_pred, m.tp, m.fp, m.fn) == (2, 1, 1, 0, 1)
    assert m.sensitivity == 0.5 and m.precision == 1.0
    assert m.f1 == pytest.approx(1 / (1 + 0.5))
    iou = 180 / 252
    assert m.sq == pytest.approx(iou) and m.pq == pytest.approx(iou * m.f1)
    missed = [row for row in m.lesions if row.kind == "missed"]
    assert len(missed) == 1 and missed[0].volume_ref_ml == pytest.approx(27 * 2 / 1000)
    assert missed[0].dice == 0 and missed[0].hd95 == float("inf")
    assert missed[0].centre_index == pytest.approx((11.0, 26.0, 26.0))
    matched = next(row for row in m.lesions if row.kind == "matched")
    assert matched.dice == pytest.approx(2 * 180 / 432)
    # detection by size (ml): the 0.054 ml lesion is in the first bin and missed, the 0.432 ml one found
    bins = {(b["low_ml"], b["high_ml"]): (b["n_ref"], b["detected"]) for b in m.detection}
    assert bins[(0.0, 0.1)] == (1, 0) and bins[(0.1, 1.0)] == (1, 1)


def test_touching_lesions_follow_the_connectivity():
    ref = np.zeros((10, 10, 10), np.uint8)
    cube(ref, (1, 1, 1), (3, 3, 3))
    cube(ref, (4, 4, 4), (3, 3, 3))  # touches the first at one corner only
    assert lesions(ref, ref).n_ref == 1  # 26-connected by default: one lesion
    assert lesions(ref, ref, connectivity=6).n_ref == 2
    assert lesions(ref, ref, connectivity=18).n_ref == 2
    with pytest.raises(UserError, match="connectivity 4"):
        lesions(ref, ref, connectivity=4)


def test_a_lesion_split_in_two_matches_its_larger_half_only():
    ref = np.zeros((8, 8, 24), np.uint8)
    pred = np.zeros_like(ref)
    cube(ref, (2, 2, 2), (4, 4, 20))  # 320 voxels
    cube(pred, (2, 2, 2), (4, 4, 10))  # 160: IoU 0.5, matched (IoU >= 0.5)
    cube(pred, (2, 2, 13), (4, 4, 9))  # 144: false
    m = lesions(pred, ref)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert next(r for r in m.lesions if r.kind == "matched").iou == pytest.approx(0.5)
    strict = lesions(pred, ref, match_iou=0.51)
    assert (strict.tp, strict.fp, strict.fn) == (0, 2, 1)
    assert strict.sq == 0.0 and strict.pq == 0.0
    # BraTS-style: both halves touch the reference lesion's dilation, so they count for it: Dice of their union
    assert m.brats_dice == pytest.approx(2 * 304 / (320 + 304))


def test_empty_cases():
    empty = np.zeros((6, 6, 6), np.uint8)
    m = lesions(empty, empty)
    assert (m.n_ref, m.n_pred, m.tp) == (0, 0, 0)
    assert np.isnan(m.f1) and np.isnan(m.sq) and np.isnan(m.pq)
    assert m.brats_dice == 1.0 and m.lesions == []
    full = empty.copy()
    cube(full, (1, 1, 1), (4, 4, 4))
    only_pred = lesions(full, empty)
    assert (only_pred.fp, only_pred.fn, only_pred.f1, only_pred.brats_dice) == (1, 0, 0.0, 0.0)
    only_ref = lesions(empty, full)
    assert (only_ref.fp, only_ref.fn, only_ref.f1, only_ref.sensitivity) == (0, 1, 0.0, 0.0)


def test_two_dimensional_image():
    ref = np.zeros((1, 30, 30), np.uint8)
    pred = np.zeros_like(ref)
    cube(ref, (0, 2, 2), (1, 6, 6))
    cube(ref, (0, 8, 8), (1, 3, 3))  # touches the first diagonally: one lesion with 8-connectivity
    cube(pred, (0, 2, 2), (1, 6, 6))
    cube(pred, (0, 20, 20), (1, 4, 4))
    m = lesions(pred, ref, spacing=(5.0, 0.5, 0.5))
    assert (m.n_ref, m.n_pred) == (1, 2)
    four = lesions(pred, ref, spacing=(5.0, 0.5, 0.5), connectivity=4)
    assert (four.n_ref, four.tp, four.fp, four.fn) == (2, 1, 1, 1)
    row = next(r for r in four.lesions if r.kind == "false")
    assert row.centre_index == pytest.approx((0.0, 21.5, 21.5))  # back in the indices of the one-slice array
    assert row.volume_pred_ml == pytest.approx(16 * 0.25)  # an area in mm² for a 2-D image


def test_options_are_checked():
    for bad, message in ((dict(match_iou=0.0), "match-iou"), (dict(size_bins_ml=(1.0, 0.5)), "size-bins"),
                         (dict(brats_dilation=-1), "dilation")):
        with pytest.raises(UserError, match=message):
            InstanceOptions(**bad)


# ---- panoptica: the same counts, qualities and per-lesion overlaps on random multi-lesion cases ----

def random_case(seed: int, shape=(40, 64, 64), n=14):
    rng = np.random.default_rng(seed)
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros_like(ref)
    for _ in range(n):
        centre = rng.integers(6, np.array(shape) - 6)
        radius = rng.integers(1, 5, size=len(shape))
        cube(ref, centre - radius, 2 * radius + 1)
        if rng.random() < 0.75:  # found, somewhat shifted and resized
            shift = rng.integers(-1, 2, size=len(shape))
            cube(pred, centre - radius + shift, 2 * radius + 1 + rng.integers(-1, 2, size=len(shape)))
    for _ in range(n // 4):  # false lesions
        cube(pred, rng.integers(2, np.array(shape) - 4), (2,) * len(shape))
    return pred, ref


def panoptica_result(pred, ref, spacing, connectivity_2d=False):
    panoptica = pytest.importorskip("panoptica")  # installed by make test (requirements-nodeps.txt)
    from panoptica.metrics import Metric

    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(),
        instance_matcher=panoptica.NaiveThresholdMatching(),
        instance_metrics=[Metric.DSC, Metric.IOU], global_metrics=[Metric.DSC], verbose=False, log_times=False)
    return next(iter(evaluator.evaluate(pred, ref, voxelspacing=spacing, verbose=False).values()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agrees_with_panoptica(seed):
    pred, ref = random_case(seed)
    spacing = (2.0, 0.8, 0.7)
    ours = lesions(pred, ref, spacing=spacing)
    peer = panoptica_result(pred, ref, spacing)
    assert (ours.tp, ours.fp, ours.fn) == (peer.tp, peer.fp, peer.fn)
    assert ours.n_ref == peer.n_ref_instances and ours.n_pred == peer.n_pred_instances
    for key, theirs in (("f1", peer.rq), ("sq", peer.sq), ("sq_dice", peer.sq_dsc), ("pq", peer.pq)):
        assert getattr(ours, key) == pytest.approx(theirs, abs=1e-12), key
    assert sorted(r.dice for r in ours.lesions if r.kind == "matched") == pytest.approx(
        sorted(peer._list_metrics[panoptica_metric("DSC")].ALL), abs=1e-12)


def panoptica_metric(name):
    from panoptica.metrics import Metric

    return getattr(Metric, name)


def test_agrees_with_panoptica_in_2d():
    pred2, ref2 = random_case(5, shape=(90, 90), n=12)
    # panoptica labels 2-D images with scipy's default neighbourhood (4-connected)
    ours = lesions(pred2[None], ref2[None], spacing=(1.0, 0.5, 0.5), connectivity=4)
    peer = panoptica_result(pred2, ref2, (0.5, 0.5))
    assert (ours.tp, ours.fp, ours.fn) == (peer.tp, peer.fp, peer.fn)
    assert ours.pq == pytest.approx(peer.pq, abs=1e-12) and ours.sq_dice == pytest.approx(peer.sq_dsc, abs=1e-12)


# ---- the BraTS 2023 lesion-wise Dice, computed here literally over the whole volume ----

def brats_lesion_wise_dice(pred, ref, spacing, dilation, min_volume):
    """The BraTS 2023 challenges' rules (BraTS-2023-Metrics, eval.py ``get_LesionWiseScores`` and
    ``get_LesionWiseResults``), written for this test over whole volumes: 26-connected components, the reference
    dilated by the 18-neighbourhood, lesions joined where their dilations connect, predicted components touching
    a lesion's dilation count for it, lesions of at most ``min_volume`` mm³ left out, Dice 0 for a missed
    lesion, every untouched predicted component a false positive."""
    import cc3d

    structure = ndimage.generate_binary_structure(3, 2)
    ref_cc = cc3d.connected_components(ref, connectivity=26)
    pred_cc = cc3d.connected_components(pred, connectivity=26)
    joined = cc3d.connected_components(ndimage.binary_dilation(ref, structure, iterations=dilation),
                                       connectivity=26)
    lesion_map = np.where(ref_cc > 0, joined, 0)
    scores, touched = [], set()
    for lesion in range(1, int(lesion_map.max()) + 1):
        gt = lesion_map == lesion
        if not gt.any():
            continue
        around = ndimage.binary_dilation(gt, structure, iterations=dilation)
        hits = set(np.unique(pred_cc[around]).tolist()) - {0}
        touched |= hits
        if gt.sum() * np.prod(spacing) <= min_volume:
            continue
        found = np.isin(pred_cc, list(hits))
        scores.append(2 * np.count_nonzero(found & gt) / (found.sum() + gt.sum()))
    false = len(set(np.unique(pred_cc).tolist()) - {0} - touched)
    return sum(scores) / (len(scores) + false) if scores or false else 1.0


@pytest.mark.parametrize("seed,dilation,min_volume", [(7, 3, 50.0), (8, 1, 2.0), (9, 2, 20.0)])
def test_brats_lesion_wise_dice_follows_the_challenge_rules(seed, dilation, min_volume):
    pred, ref = random_case(seed, n=18)
    spacing = (1.0, 1.0, 1.0)
    ours = lesions(pred, ref, spacing=spacing, brats_dilation=dilation, brats_min_volume_mm3=min_volume)
    expected = brats_lesion_wise_dice(pred.astype(bool), ref.astype(bool), spacing, dilation, min_volume)
    assert ours.brats_dice == pytest.approx(expected, abs=1e-12)
