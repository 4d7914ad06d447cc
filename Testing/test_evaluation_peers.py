"""Our metrics agree with the reference implementations named in the specification.

HD/HD95/HD99.9/ASSD against MONAI, NSD against DeepMind's surface-distance, Dice/IoU
against nnU-Net's compute_metrics, on seeded random multi-label blobs with anisotropic
spacing (some blobs touch the image edge). Only non-empty labels are compared:
surface-distance 0.1 crashes on empty masks under NumPy 2.
"""
import numpy as np
import pytest

from ImprovedNNUNetLib.evaluation import compute_metrics_arrays


def _one_hot(mask):
    import torch

    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


@pytest.fixture(scope="module")
def ours(blob_case):
    pred, ref, spacing = blob_case
    return compute_metrics_arrays(pred, ref, spacing, tau_mm={1: 1.0, 2: 2.0, 3: 0.7})


def test_all_labels_are_non_empty_and_imperfect(ours):
    assert sorted(ours.labels) == [1, 2, 3]
    for m in ours.labels.values():
        assert m.status == "ok"
        assert 0.3 < m.dice < 1.0


def test_hausdorff_and_assd_match_monai(blob_case, ours):
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    pred, ref, spacing = blob_case
    for label, m in ours.labels.items():
        yp, yg = _one_hot(pred == label), _one_hot(ref == label)
        # MONAI interpolates percentiles in float32; that rounding is the only difference.
        for ours_value, percentile in ((m.hd, None), (m.hd95, 95), (m.hd99_9, 99.9)):
            theirs = compute_hausdorff_distance(yp, yg, percentile=percentile, spacing=list(spacing)).item()
            assert ours_value == pytest.approx(theirs, rel=5e-5), (label, percentile)
        theirs = compute_average_surface_distance(yp, yg, symmetric=True, spacing=list(spacing)).item()
        assert m.assd == pytest.approx(theirs, rel=1e-6), label


def test_hausdorff_percentiles_match_monai_distances_in_double_precision(blob_case, ours):
    """MONAI's own directed surface distances, reduced as MONAI does but in float64."""
    import torch
    from monai.metrics.utils import get_edge_surface_distance

    pred, ref, spacing = blob_case
    for label, m in ours.labels.items():
        p, g = torch.from_numpy(pred == label), torch.from_numpy(ref == label)
        _, directed, _ = get_edge_surface_distance(p, g, spacing=list(spacing), symmetric=True)
        directed = [d.double() for d in directed]
        for ours_value, q in ((m.hd, 1.0), (m.hd95, 0.95), (m.hd99_9, 0.999)):
            theirs = max(torch.quantile(d, q).item() for d in directed)
            assert ours_value == pytest.approx(theirs, rel=1e-6), (label, q)


def test_nsd_matches_deepmind(blob_case, ours):
    import surface_distance

    pred, ref, spacing = blob_case
    for label, m in ours.labels.items():
        distances = surface_distance.compute_surface_distances(ref == label, pred == label, list(spacing))
        theirs = surface_distance.compute_surface_dice_at_tolerance(distances, m.tau_mm)
        assert m.nsd == pytest.approx(theirs, rel=1e-12), label
        assert 0.0 < m.nsd < 1.0


def test_dice_and_iou_match_nnunet(blob_case, ours, tmp_path):
    import SimpleITK as sitk
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    pred, ref, spacing = blob_case
    files = {}
    for name, array in (("pred", pred), ("ref", ref)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing[::-1])
        files[name] = str(tmp_path / f"{name}.nii.gz")
        sitk.WriteImage(image, files[name])
    theirs = compute_metrics(files["ref"], files["pred"], SimpleITKIO(), [1, 2, 3])["metrics"]
    for label, m in ours.labels.items():
        assert m.dice == pytest.approx(theirs[label]["Dice"], rel=1e-12)
        assert m.iou == pytest.approx(theirs[label]["IoU"], rel=1e-12)
        tp, fp, fn, tn = (theirs[label][k] for k in ("TP", "FP", "FN", "TN"))
        assert m.sensitivity == pytest.approx(tp / (tp + fn), rel=1e-12)
        assert m.specificity == pytest.approx(tn / (tn + fp), rel=1e-12)
        voxel_ml = np.prod(spacing) / 1000
        assert m.volume_ref_ml == pytest.approx((tp + fn) * voxel_ml)
        assert m.volume_pred_ml == pytest.approx((tp + fp) * voxel_ml)
