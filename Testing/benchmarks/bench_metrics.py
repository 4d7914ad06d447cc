"""Benchmark: our metrics against MONAI and DeepMind surface-distance on one large case.

A 5-label 512×512×300 uint8 case at 0.7×0.7×3 mm (organ-like ellipsoids and a tube;
the prediction has shifted, resized structures and one stray blob). HD95, HD99.9, NSD
(τ = 1 mm), Dice and IoU for all labels by each implementation on the same arrays, in
this run. Prints wall time (best of two runs; MONAI, far slower, runs once), peak memory
(resident set growth), our/peer time ratios and the largest value difference per metric
against the peer that defines it.

A folder case follows: FOLDER_CASES pairs of 256×256×128 label files (5 labels) evaluated by
``improved-nnunet evaluate``'s engine with 1 and with 2 worker processes, and by nnU-Net's
``compute_metrics_on_folder`` with 1 and 2 processes (it computes Dice and IoU only, no surface
metrics: its times are a floor, not a like-for-like comparison). Prints wall times and the
1 → 2 jobs speed-up (target >= 1.7x).

A lesion case follows: 100 box-shaped lesions of 0.01-1.6 ml on a 512×512×300 volume (about three in four
found, shifted and resized, plus ten false ones), lesion-wise metrics by ours and by panoptica (connected
components, IoU >= 0.5 matching, per-lesion Dice and IoU; then also ASSD and HD95 per lesion, where ours adds
NSD and the image-level metrics): wall time, peak memory, the ratio (target >= 5x) and the counts of both.

Run: ``.venv/bin/python Testing/benchmarks/bench_metrics.py [--only single|folder|lesions]``
"""
from __future__ import annotations

import threading
import time

import numpy as np
import psutil

SHAPE = (300, 512, 512)  # (z, y, x)
SPACING = (3.0, 0.7, 0.7)  # mm per array axis
TAU_MM = 1.0
TARGET_VS_MONAI = 10.0
TARGET_VS_DEEPMIND = 10.0
REPEATS = 2

# label: (centre (z, y, x), radii (z, y, x)) in voxels, reference ellipsoids.
ORGANS = {
    1: ((150, 220, 180), (40, 110, 120)),  # liver-sized
    2: ((140, 320, 360), (22, 60, 45)),  # spleen-sized
    3: ((160, 330, 140), (18, 38, 30)),  # kidney-sized
    4: ((160, 330, 390), (18, 38, 30)),
}
TUBE = 5  # aorta-like cylinder along z


def _ellipsoid(volume, label, centre, radii):
    box = tuple(slice(max(c - r - 1, 0), min(c + r + 2, n)) for c, r, n in zip(centre, radii, volume.shape))
    grids = np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij")
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0
    volume[box][inside] = label


def _tube(volume, label, centre_yx, radius, z_range):
    yy, xx = np.ogrid[: volume.shape[1], : volume.shape[2]]
    disc = (yy - centre_yx[0]) ** 2 + (xx - centre_yx[1]) ** 2 <= radius**2
    volume[z_range[0]:z_range[1], disc] = label


def make_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) label volumes."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    for label, (centre, radii) in ORGANS.items():
        _ellipsoid(ref, label, centre, radii)
        moved = tuple(int(c + rng.integers(-2, 3)) for c in centre)
        scaled = tuple(max(int(round(r * rng.uniform(0.95, 1.05))), 1) for r in radii)
        _ellipsoid(pred, label, moved, scaled)
    _tube(ref, TUBE, (250, 256), 14, (40, 260))
    _tube(pred, TUBE, (251, 257), 13, (44, 262))
    _ellipsoid(pred, 3, (60, 100, 420), (3, 8, 8))  # a stray false-positive blob far away
    return pred, ref


class PeakMemory:
    """Largest growth of this process's resident memory while the block runs (sampled)."""

    def __enter__(self):
        self._process = psutil.Process()
        self._start = self._process.memory_info().rss
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss - self._start)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss - self._start)


def by_ours(pred, ref, labels):
    from ImprovedNNUNetLib.evaluation import compute_metrics_arrays

    result = compute_metrics_arrays(pred, ref, SPACING, labels=labels, tau_mm=TAU_MM)
    return {
        v: {"HD95": m.hd95, "HD99.9": m.hd99_9, "NSD": m.nsd, "Dice": m.dice, "IoU": m.iou}
        for v, m in result.labels.items()
    }


def by_monai(pred, ref, labels):
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou

    out = {}
    for v in labels:
        p = torch.from_numpy(pred == v)[None, None]
        g = torch.from_numpy(ref == v)[None, None]
        out[v] = {
            "HD95": compute_hausdorff_distance(p, g, True, percentile=95, spacing=list(SPACING)).item(),
            "HD99.9": compute_hausdorff_distance(p, g, True, percentile=99.9, spacing=list(SPACING)).item(),
            "Dice": compute_dice(p, g, include_background=True).item(),
            "IoU": compute_iou(p, g, include_background=True).item(),
        }
    return out


def by_deepmind(pred, ref, labels):
    import surface_distance as sd

    out = {}
    for v in labels:
        p, g = pred == v, ref == v
        distances = sd.compute_surface_distances(g, p, list(SPACING))
        out[v] = {
            "HD95": sd.compute_robust_hausdorff(distances, 95),
            "HD99.9": sd.compute_robust_hausdorff(distances, 99.9),
            "NSD": sd.compute_surface_dice_at_tolerance(distances, TAU_MM),
            "Dice": sd.compute_dice_coefficient(g, p),
            "IoU": np.count_nonzero(p & g) / np.count_nonzero(p | g),
        }
    return out


def timed(fn, *args, repeats: int = 1):
    """Values, best wall time over ``repeats`` runs, and peak memory growth of the first run."""
    best, peak = float("inf"), None
    for _ in range(repeats):
        with PeakMemory() as memory:
            start = time.perf_counter()
            values = fn(*args)
            best = min(best, time.perf_counter() - start)
        peak = memory.peak if peak is None else peak
    return values, best, peak


def largest_difference(a, b, metrics):
    return {m: max(abs(a[v][m] - b[v][m]) for v in a) for m in metrics}


FOLDER_CASES = 40
FOLDER_SHAPE = (128, 256, 256)  # (z, y, x)
FOLDER_SPACING = (1.5, 0.8, 0.8)  # mm per array axis
TARGET_JOBS_SPEEDUP = 1.7


def folder_case(root) -> tuple:
    """Write FOLDER_CASES (prediction, reference) pairs as .nii.gz into root/pred and root/ref."""
    from scipy import ndimage

    from ImprovedNNUNetLib.core.imageio import Image, write_image

    scale = np.array(FOLDER_SHAPE) / np.array(SHAPE)
    for index in range(FOLDER_CASES):
        rng = np.random.default_rng(index)
        ref = np.zeros(FOLDER_SHAPE, np.uint8)
        pred = np.zeros(FOLDER_SHAPE, np.uint8)
        for label, (centre, radii) in ORGANS.items():
            centre = tuple(int(c * f) + int(rng.integers(-4, 5)) for c, f in zip(centre, scale))
            radii = tuple(max(int(r * f), 3) for r, f in zip(radii, scale))
            _ellipsoid(ref, label, centre, radii)
            _ellipsoid(pred, label, tuple(c + int(rng.integers(-2, 3)) for c in centre), radii)
        _tube(ref, TUBE, (125, 128), 7, (20, 110))
        _tube(pred, TUBE, (126, 128), 7, (22, 112))
        pred[ndimage.binary_dilation(pred == 1, iterations=1) & (pred == 0)] = 1
        spacing = tuple(reversed(FOLDER_SPACING))
        write_image(Image(ref, spacing), root / "ref" / f"case_{index:03d}.nii.gz")
        write_image(Image(pred, spacing), root / "pred" / f"case_{index:03d}.nii.gz")


def folder_main() -> int:
    import tempfile
    from pathlib import Path

    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from ImprovedNNUNetLib.evaluation.runner import evaluate

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        folder_case(root)
        print(f"\nfolder: {FOLDER_CASES} cases of {FOLDER_SHAPE[2]}×{FOLDER_SHAPE[1]}×{FOLDER_SHAPE[0]} uint8, "
              f"5 labels, .nii.gz")
        times = {}
        for jobs in (1, 2):
            started = time.perf_counter()
            evaluate(root / "pred", root / "ref", jobs=jobs)
            times[f"ours, --jobs {jobs}"] = time.perf_counter() - started
        for jobs in (1, 2):
            started = time.perf_counter()
            compute_metrics_on_folder(str(root / "ref"), str(root / "pred"), str(root / f"nnunet_{jobs}.json"),
                                      SimpleITKIO(), ".nii.gz", [1, 2, 3, 4, 5], num_processes=jobs)
            times[f"nnU-Net (Dice/IoU only), -np {jobs}"] = time.perf_counter() - started
    print(f"{'implementation':<36}{'wall s':>9}")
    for name, seconds in times.items():
        print(f"{name:<36}{seconds:>9.2f}")
    speedup = times["ours, --jobs 1"] / times["ours, --jobs 2"]
    print(f"ours 1 -> 2 jobs speed-up: {speedup:.2f}x (target >= {TARGET_JOBS_SPEEDUP:g}x)")
    print(f"ours (all metrics) / nnU-Net (Dice/IoU only), 2 processes each: "
          f"{times['ours, --jobs 2'] / times['nnU-Net (Dice/IoU only), -np 2']:.2f}x the time")
    return 0


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("single", "folder", "lesions"))
    args = parser.parse_args()
    if args.only in (None, "single"):
        single_main()
    if args.only in (None, "lesions"):
        lesions_main()
    if args.only in (None, "folder"):
        folder_main()
    return 0


LESIONS = 100
LESION_SPACING = (1.5, 0.8, 0.8)  # mm per array axis
TARGET_VS_PANOPTICA = 5.0


def lesion_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) with LESIONS reference lesions."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(SHAPE, np.uint8)
    pred = np.zeros(SHAPE, np.uint8)
    for _ in range(LESIONS):
        centre = rng.integers(12, np.array(SHAPE) - 12)
        radius = rng.integers(1, 9, size=3)
        ref[tuple(slice(c - r, c + r + 1) for c, r in zip(centre, radius))] = 1
        if rng.random() < 0.75:
            shift = rng.integers(-1, 2, size=3)
            grow = rng.integers(-1, 2, size=3)
            pred[tuple(slice(c - r + s, c + r + 1 + s + g) for c, r, s, g in zip(centre, radius, shift, grow))] = 1
    for _ in range(LESIONS // 10):
        corner = rng.integers(0, np.array(SHAPE) - 4)
        pred[tuple(slice(c, c + 3) for c in corner)] = 1
    return pred, ref


def lesions_main() -> int:
    import panoptica  # noqa: F401  imports are not part of any timing
    from panoptica import ConnectedComponentsInstanceApproximator, InputType, NaiveThresholdMatching, Panoptica_Evaluator
    from panoptica.metrics import Metric

    from ImprovedNNUNetLib.evaluation import compute_metrics_arrays
    from ImprovedNNUNetLib.evaluation.options import metric_options

    pred, ref = lesion_case()
    print(f"\nlesions: {LESIONS} reference lesions on {SHAPE[2]}×{SHAPE[1]}×{SHAPE[0]} uint8, spacing "
          f"{LESION_SPACING[2]}×{LESION_SPACING[1]}×{LESION_SPACING[0]} mm")

    def ours(groups):
        options, _ = metric_options(None, groups)
        return compute_metrics_arrays(pred, ref, LESION_SPACING, [1], 1.0, options)[1].instances

    def theirs(metrics):
        evaluator = Panoptica_Evaluator(expected_input=InputType.SEMANTIC,
                                        instance_approximator=ConnectedComponentsInstanceApproximator(),
                                        instance_matcher=NaiveThresholdMatching(), instance_metrics=metrics,
                                        global_metrics=[Metric.DSC], verbose=False, log_times=False)
        return next(iter(evaluator.evaluate(pred, ref, voxelspacing=LESION_SPACING, verbose=False).values()))

    runs = {
        "ours, lesion Dice/IoU": timed(ours, ("overlap", "instances"), repeats=REPEATS),
        "panoptica, DSC/IoU": timed(theirs, [Metric.DSC, Metric.IOU]),
        "ours, + HD95/ASSD/NSD": timed(ours, ("overlap", "distance", "nsd", "instances"), repeats=REPEATS),
        "panoptica, + ASSD/HD95": timed(theirs, [Metric.DSC, Metric.IOU, Metric.ASSD, Metric.HD95]),
    }
    print(f"{'implementation':<26}{'wall s':>9}{'peak MB':>10}")
    for name, (_, seconds, peak) in runs.items():
        print(f"{name:<26}{seconds:>9.2f}{peak / 2**20:>10.0f}")
    for mine, peer in (("ours, lesion Dice/IoU", "panoptica, DSC/IoU"),
                       ("ours, + HD95/ASSD/NSD", "panoptica, + ASSD/HD95")):
        print(f"speed-up vs panoptica ({peer.split(', ')[1]}): {runs[peer][1] / runs[mine][1]:5.1f}x "
              f"(target >= {TARGET_VS_PANOPTICA:g}x)")
    a, b = runs["ours, lesion Dice/IoU"][0], runs["panoptica, DSC/IoU"][0]
    print(f"counts ours tp/fp/fn {a.tp}/{a.fp}/{a.fn}, panoptica {b.tp}/{b.fp}/{b.fn}; "
          f"PQ ours {a.pq:.6f}, panoptica {b.pq:.6f}")
    return 0


def single_main() -> int:
    import monai.metrics  # noqa: F401  imports are not part of any timing
    import surface_distance  # noqa: F401
    import torch

    import ImprovedNNUNetLib.evaluation  # noqa: F401

    torch.set_num_threads(psutil.cpu_count(logical=False) or 1)
    print(f"case: {SHAPE[2]}×{SHAPE[1]}×{SHAPE[0]} uint8, spacing 0.7×0.7×3 mm, 5 labels, tau {TAU_MM} mm")
    pred, ref = make_case()
    labels = [1, 2, 3, 4, 5]
    # best of REPEATS runs for us and DeepMind; MONAI once (it is far slower than either)
    implementations = (("ours", by_ours, REPEATS), ("MONAI", by_monai, 1), ("DeepMind", by_deepmind, REPEATS))
    runs = {name: timed(fn, pred, ref, labels, repeats=n) for name, fn, n in implementations}
    print(f"{'implementation':<16}{'wall s':>9}{'peak MB':>10}")
    for name, (_, seconds, peak) in runs.items():
        print(f"{name:<16}{seconds:>9.2f}{peak / 2**20:>10.0f}")
    ours_values, ours_s, _ = runs["ours"]
    ratio_monai = runs["MONAI"][1] / ours_s
    ratio_deepmind = runs["DeepMind"][1] / ours_s
    print(f"speed-up vs MONAI:    {ratio_monai:6.1f}x (target >= {TARGET_VS_MONAI:g}x)")
    print(f"speed-up vs DeepMind: {ratio_deepmind:6.1f}x (target >= {TARGET_VS_DEEPMIND:g}x)")
    # Each metric against the peer whose definition the project follows (DeepMind's HDp is
    # area-weighted without interpolation, a different definition, so it is not compared).
    vs_monai = largest_difference(ours_values, runs["MONAI"][0], ("HD95", "HD99.9", "Dice", "IoU"))
    vs_deepmind = largest_difference(ours_values, runs["DeepMind"][0], ("NSD", "Dice", "IoU"))
    print("largest |ours - MONAI|:    " + ", ".join(f"{k} {v:.2e}" for k, v in vs_monai.items()))
    print("largest |ours - DeepMind|: " + ", ".join(f"{k} {v:.2e}" for k, v in vs_deepmind.items()))
    for v, values in ours_values.items():
        print(f"label {v}: " + ", ".join(f"{k} {x:.4f}" for k, x in values.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
