"""Benchmark: per-iteration wall time of every training variant against `baseline`.

Same data and configuration for all: crops of slicerio's chest CT (the test dataset), planned
by nnU-Net (3d_fullres, its own patch size and network), on this machine's device. Each variant
gets its own trainer and runs ``train_step`` on the same pre-generated augmented batches
(data loading happens in worker processes during real training and is timed separately). The
variants take turns on each batch in a shuffled order, so that load from other processes hits
all alike; the fastest of the timed iterations (best of N, the least disturbed by other load)
is compared with baseline's. `msf` variants are timed in stage 2 (with the MSF term). Where `sdm`
makes its signed-distance targets follows the device: on the CPU the sdm pipeline's last transform
adds them in the data-loading workers (its batches here carry them, and the time that transform takes
per batch is printed as a share of baseline's data loading per batch: the workers set the pace of a
fast GPU, so that share, not the step, is what it costs there); on a GPU the loss makes them on the
device inside the timed step (the time they take there is printed too).
CPU time of this process is printed next to wall time: on a machine shared
with other jobs it shows the work per iteration without their interference. `msf_deep` has a
deeper, wider network by design, so its ratio measures that network, not overhead.

Targets: every ratio ≤ 1.10; SDM targets ≤ 15 % of baseline's data loading per batch.
Run: ``.venv/bin/python Testing/benchmarks/bench_variants.py [--iterations N]``
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

TARGET_RATIO = 1.10
TARGET_SDM_SHARE = 0.15  # sdm's added data-loading work per batch, as a share of baseline's
WARMUP = 1


def prepare(root: Path) -> Path:
    """The test dataset in fresh nnU-Net folders under ``root``; returns its preprocessed folder."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import slicerio

    from fixtures.training import write_tiny_chest_dataset
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(root / var)
    raw = write_tiny_chest_dataset(root / "nnUNet_raw", Path(slicerio.__file__).parent / "data")
    return prepare_dataset(str(raw), ["3d_fullres"], reporter=ProgressReporter(stream=io.StringIO()))


def started_trainer(variant: str, preprocessed: Path, device):
    from ImprovedNNUNetTrainingLib.engine.registry import get_variant

    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    trainer = get_variant(variant)(plans=plans, configuration="3d_fullres", fold=0,
                                   dataset_json=dataset_json, device=device)
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    return trainer


def time_step(trainer, batch) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one training iteration."""
    import torch

    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train_step(batch)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6, help="timed iterations per variant (default 6)")
    args = parser.parse_args()
    os.environ["nnUNet_n_proc_DA"] = "0"  # batches are made up front, in this process

    import numpy as np
    import torch

    from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS
    from ImprovedNNUNetTrainingLib.trainers.sdm import DistanceTargetTransform, device_targets

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp, redirect_stdout(io.StringIO()):
        preprocessed = prepare(Path(tmp))
        baseline = started_trainer("baseline", preprocessed, device)
        loading = []
        batches = []
        for _ in range(WARMUP + args.iterations):
            start = time.perf_counter()
            batches.append(next(baseline.dataloader_train))
            loading.append(time.perf_counter() - start)
        # The sdm pipeline's last step (DistanceTargetTransform, in the data-loading workers) adds the
        # distance targets to each batch; time it on the same batches, the way a worker runs it.
        spacing, labels = baseline.configuration_manager.spacing, baseline.label_manager.foreground_labels
        sdm_times, sdm_batches = [], []
        transform = DistanceTargetTransform(labels, spacing)
        on_device = []
        for batch in batches:
            start = time.perf_counter()
            targets = [transform(segmentation=[sample])["segmentation"][-1] for sample in batch["target"][0]]
            sdm_times.append(time.perf_counter() - start)
            if device.type == "cpu":
                sdm_batches.append({**batch, "target": [*batch["target"], torch.stack(targets)]})
            else:  # the trainer leaves the transform out; the loss makes the targets on the device
                sdm_batches.append(batch)
                full = batch["target"][0].to(device)
                torch.cuda.synchronize()
                start = time.perf_counter()
                device_targets(full, labels, spacing)
                torch.cuda.synchronize()
                on_device.append(time.perf_counter() - start)
        trainers = {v: baseline if v == "baseline" else started_trainer(v, preprocessed, device) for v in VARIANTS}
        for trainer in trainers.values():
            if hasattr(trainer.loss, "active"):
                trainer.loss.active = True  # MSF stage 2, the costlier one
        times = {variant: [] for variant in trainers}
        order = list(trainers)
        for index, batch in enumerate(batches):
            random.shuffle(order)
            for variant in order:
                times[variant].append(time_step(trainers[variant], sdm_batches[index] if variant == "sdm" else batch))
        best = {variant: min(wall for wall, _ in t[WARMUP:]) for variant, t in times.items()}
        best_cpu = {variant: min(cpu for _, cpu in t[WARMUP:]) for variant, t in times.items()}
        patch, batch_size = baseline.configuration_manager.patch_size, baseline.batch_size

    print(f"device {device}, patch {list(patch)}, batch {batch_size}, best of {args.iterations} timed iterations, "
          f"data loading (baseline augmentation) {np.median(loading):.3f} s/batch")
    print(f"{'variant':10s} {'wall s/it':>10s} {'vs baseline':>12s} {'CPU s/it':>10s} {'vs baseline':>12s}")
    worst = 0.0
    for variant, seconds in best.items():
        ratio = seconds / best["baseline"]
        cpu_ratio = best_cpu[variant] / best_cpu["baseline"]
        worst = max(worst, ratio)
        flag = "" if ratio <= TARGET_RATIO else f"  (wall above target {TARGET_RATIO:.2f})"
        print(f"{variant:10s} {seconds:10.3f} {ratio:11.2f}× {best_cpu[variant]:10.3f} {cpu_ratio:11.2f}×{flag}")
    sdm_ms = float(np.median(sdm_times[WARMUP:])) * 1000
    loading_ms = float(np.median(loading)) * 1000
    # The targets are made in the data-loading workers: what they cost is data-loading work, set against
    # baseline's data loading per batch (on a fast GPU the workers, not the step, then set the pace).
    where = "in the data-loading workers" if device.type == "cpu" else "if made in the workers (CPU training)"
    print(f"SDM targets {where}: {sdm_ms:.1f} ms per batch = {sdm_ms / loading_ms:.0%} of "
          f"baseline's data loading ({loading_ms:.0f} ms per batch; target ≤ {TARGET_SDM_SHARE:.0%}"
          f"{'' if sdm_ms / loading_ms <= TARGET_SDM_SHARE else ', above it'})")
    if on_device:
        device_ms = float(np.median(on_device[WARMUP:])) * 1000
        print(f"SDM targets on {device} (inside sdm's step; the workers do nothing extra): {device_ms:.1f} ms per "
              f"batch = {device_ms / (best['baseline'] * 1000):.0%} of baseline's step, "
              f"0% of baseline's data loading")
    print(f"worst ratio {worst:.2f}× (target ≤ {TARGET_RATIO:.2f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
