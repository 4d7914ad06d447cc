"""2-D images (PNG, TIFF, one-slice volumes) are evaluated in 2-D and agree with the 2-D peers:
MONAI's HD/HD95/ASSD and DeepMind's contour-length NSD, on seeded random shapes with anisotropic
pixels, plus an analytic case."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
from ImprovedNNUNetLib.evaluation.metrics import PLANAR_NOTE
from ImprovedNNUNetLib.evaluation.runner import evaluate

PIXEL = (0.8, 0.6)  # mm per array axis (y, x)


def shapes(seed: int, n_labels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = np.zeros((96, 110), np.uint8)
    for label in range(1, n_labels + 1):
        noise = ndimage.gaussian_filter(rng.standard_normal(ref.shape), 4)
        ref[noise > np.quantile(noise, 0.85)] = label
    pred = np.roll(ref, int(rng.integers(1, 4)), axis=int(rng.integers(0, 2)))
    pred[ndimage.binary_dilation(pred == 1) & (pred == 0)] = 1
    return pred, ref


def one_hot(mask):
    import torch

    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_2d_metrics_match_monai_and_deepmind(seed):
    import surface_distance
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    pred, ref = shapes(seed)
    ours = compute_metrics_arrays(pred[None], ref[None], (1.0, *PIXEL), tau_mm=1.0)
    assert ours.notes == [PLANAR_NOTE]
    for label, m in ours.labels.items():
        p, g = pred == label, ref == label
        for value, percentile in ((m.hd, None), (m.hd95, 95), (m.hd99_9, 99.9)):
            theirs = compute_hausdorff_distance(one_hot(p), one_hot(g), percentile=percentile, spacing=list(PIXEL))
            assert value == pytest.approx(float(theirs), rel=1e-5, abs=1e-5)
        theirs = compute_average_surface_distance(one_hot(p), one_hot(g), symmetric=True, spacing=list(PIXEL))
        assert m.assd == pytest.approx(float(theirs), rel=1e-5)
        distances = surface_distance.compute_surface_distances(g, p, PIXEL)
        assert m.nsd == pytest.approx(surface_distance.compute_surface_dice_at_tolerance(distances, 1.0), abs=1e-12)
        assert m.volume_ref_ml == pytest.approx(g.sum() * PIXEL[0] * PIXEL[1])  # an area in mm²


def test_analytic_shifted_rectangle():
    ref = np.zeros((40, 50), np.uint8)
    ref[10:30, 10:40] = 1
    pred = np.roll(ref, 2, axis=1)  # 2 pixels of 0.5 mm along x
    m = compute_metrics_arrays(pred[None], ref[None], (1.0, 0.5, 0.5))[1]
    assert m.dice == pytest.approx(2 * 20 * 28 / (600 + 600))
    assert m.hd == pytest.approx(1.0)
    assert m.volume_ref_ml == pytest.approx(600 * 0.25)
    # every contour point is within 1 mm of the other contour; within 0.4 mm only the two long sides
    # (2 × 15 mm of each 50 mm contour) are, less their ends
    assert m.nsd == pytest.approx(1.0)
    assert 0.5 < compute_metrics_arrays(pred[None], ref[None], (1.0, 0.5, 0.5), tau_mm=0.4)[1].nsd < 0.6


@pytest.mark.parametrize("suffix", [".png", ".tif", ".nii.gz"])
def test_2d_files_are_read_and_evaluated_in_2d(tmp_path, suffix, capsys):
    pred, ref = shapes(7)
    for name, array in (("pred", pred), ("ref", ref)):
        image = sitk.GetImageFromArray(array)
        if suffix != ".png":
            image.SetSpacing(PIXEL[::-1])
        sitk.WriteImage(image, str(tmp_path / f"{name}{suffix}"))
    [case] = evaluate(tmp_path / f"pred{suffix}", tmp_path / f"ref{suffix}")
    stored = sitk.ReadImage(str(tmp_path / f"ref{suffix}")).GetSpacing()  # TIFF keeps float32 spacing
    expected = compute_metrics_arrays(pred[None], ref[None], (1.0, *stored[::-1]))
    assert stored == pytest.approx(PIXEL[::-1] if suffix != ".png" else (1.0, 1.0))
    assert repr(case.metrics.to_dict()) == repr(expected.to_dict())
    assert PLANAR_NOTE in case.metrics.notes
    assert main(["evaluate", str(tmp_path / f"pred{suffix}"), str(tmp_path / f"ref{suffix}")]) == 0
    assert "evaluated in 2-D" in capsys.readouterr().out


def test_a_colour_png_is_refused_with_the_fix(tmp_path):
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.core.imageio import read_image

    rgb = sitk.GetImageFromArray(np.zeros((8, 9, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "colour.png"))
    with pytest.raises(UserError, match="3 components per pixel .*save one grey-value or label channel"):
        read_image(tmp_path / "colour.png")
