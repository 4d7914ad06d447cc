"""Benchmark: `compare` against nnU-Net's own validation metrics on the same files.

Two runs (baseline folds 0 and 1, loss fold 0) with 8 validation cases each, every case the
full slicerio chest CT segmentation (128×128×34, 7 labels, 3.05×3.05×10 mm) as reference and,
as prediction, that segmentation shifted by 1-3 voxels, some with a structure removed.
``compare_runs`` (Dice, HD95 and NSD per label, summaries) is timed against nnU-Net's
``compute_metrics`` on every case (Dice and IoU only, files read the same way), both in
this process and sequential (``jobs=1``); then ours with its default worker processes. Prints wall
times (best of two), the ratio ours/nnU-Net, and the largest Dice difference between the two on the same case and label.

Run: ``.venv/bin/python Testing/benchmarks/bench_compare.py``
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = 8
RUNS = {("nnUNetTrainer__nnUNetPlans__3d_fullres", 0): 1, ("nnUNetTrainer__nnUNetPlans__3d_fullres", 1): 2,
        ("nnUNetTrainerLoss__nnUNetPlans__3d_fullres", 0): 3}  # run, fold -> shift in voxels
REPEATS = 2


def build_layout(root: Path) -> tuple[str, Path, list[tuple[Path, Path]]]:
    """Raw dataset and validation folders; returns (dataset name, raw folder, (reference, prediction) pairs)."""
    import SimpleITK as sitk
    import slicerio

    data = Path(slicerio.__file__).parent / "data"
    ct = sitk.ReadImage(str(data / "CTChest4.nrrd"))
    segmentation = slicerio.read_segmentation(str(data / "Segmentation.seg.nrrd"))
    labels = np.ascontiguousarray(np.transpose(segmentation["voxels"], (2, 1, 0))).astype(np.uint8)
    names = {s["name"]: int(s["labelValue"]) for s in segmentation["segments"]}
    name = "Dataset990_BenchChest"
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / variable).mkdir()
        os.environ[variable] = str(root / variable)
    raw = root / "nnUNet_raw" / name

    def write(array, path):
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(ct)
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(path), useCompression=True)

    for case in range(CASES):
        write(labels, raw / "labelsTr" / f"case_{case:03d}.nii.gz")
    (raw / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, **names},
                                                  "numTraining": CASES, "file_ending": ".nii.gz"}))
    pairs = []
    for (run, fold), shift in RUNS.items():
        for case in range(CASES):
            prediction = np.roll(labels, shift, axis=2 - case % 3)
            if case % 4 == 3:
                prediction[prediction == 1 + case % 7] = 0
            path = root / "nnUNet_results" / name / run / f"fold_{fold}" / "validation" / f"case_{case:03d}.nii.gz"
            write(prediction, path)
            pairs.append((raw / "labelsTr" / f"case_{case:03d}.nii.gz", path))
    return name, raw, pairs


def best_of(function, repeats=REPEATS):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from ImprovedNNUNetLib.core.imageio import read_image
    from ImprovedNNUNetLib.evaluation import compute_metrics as our_metrics
    from ImprovedNNUNetTrainingLib.analysis.compare import compare_runs

    with tempfile.TemporaryDirectory() as tmp:
        name, raw, pairs = build_layout(Path(tmp))
        labels = list(range(1, 8))
        ours_s, summaries = best_of(lambda: compare_runs(name, jobs=1))
        parallel_s, _ = best_of(lambda: compare_runs(name))
        peer_s, peer = best_of(lambda: [compute_metrics(str(r), str(p), SimpleITKIO(), labels) for r, p in pairs])
        largest = 0.0
        for (reference, prediction), theirs in zip(pairs, peer):
            mine = our_metrics(read_image(prediction), read_image(reference), labels)
            for label in labels:
                a, b = mine[label].dice, theirs["metrics"][label]["Dice"]
                if not (np.isnan(a) or np.isnan(b)):
                    largest = max(largest, abs(a - b))
    rows = sum(len(s.labels) for s in summaries)
    print(f"compare: {len(pairs)} validation cases of 128x128x34, 7 labels, {len(summaries)} summary groups ({rows} rows)")
    print(f"  ours   compare_runs (Dice, HD95, NSD, summaries): {ours_s:.2f} s")
    print(f"  nnU-Net compute_metrics per case (Dice, IoU):     {peer_s:.2f} s")
    print(f"  ratio ours / nnU-Net: {ours_s / peer_s:.2f}")
    print(f"  ours   compare_runs, {os.cpu_count()} cores' worker processes (the default): {parallel_s:.2f} s, "
          f"ratio to nnU-Net sequential {parallel_s / peer_s:.2f}")
    print(f"  largest Dice difference on the same case and label: {largest:.2e}")


if __name__ == "__main__":
    main()
