"""Benchmark: training time per iteration of nnU-Net's residual-encoder M preset (nnUNetResEncUNetMPlans)
against the default plans (nnUNetPlans), same data, same variant, same process, on the CPU (or CUDA).

The tiny chest dataset (six 12×40×40 crops of slicerio's CTChest4) is planned by both planners with
their real network sizes (no test shrinking); each trainer runs warm-up steps and then timed
``train_step`` calls on one fixed batch (data loading excluded), alternating the two plans so drift
hits both alike. Prints the medians, the parameter counts and the ResEnc/default ratio per iteration and
per training sample (the planners size the batch differently).

Run: ``.venv/bin/python Testing/benchmarks/bench_plans.py [--variant baseline] [--device cpu|cuda]
[--steps 10]``
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("nnUNet_n_proc_DA", "0")

PLANS = {"default": ("ExperimentPlanner", "nnUNetPlans"), "ResEnc M": ("nnUNetPlannerResEncM",
                                                                      "nnUNetResEncUNetMPlans")}


def prepare(root: Path) -> str:
    import slicerio

    from fixtures.training import DATASET_NAME, write_tiny_chest_dataset

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / var).mkdir()
        os.environ[var] = str(root / var)
    raw = write_tiny_chest_dataset(root / "nnUNet_raw", Path(slicerio.__file__).parent / "data")
    from contextlib import redirect_stdout

    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    for planner, _ in PLANS.values():
        with redirect_stdout(io.StringIO()):
            prepare_dataset(str(raw), ["3d_fullres"], planner=planner, reporter=ProgressReporter(stream=io.StringIO()))
    return DATASET_NAME


def started_trainer(dataset: str, variant: str, plans: str, device: str):
    from contextlib import redirect_stdout

    import torch

    from ImprovedNNUNetTrainingLib.engine.run_checks import TrainOptions, check_run
    from ImprovedNNUNetTrainingLib.engine.runner import build_trainer

    plan = check_run(TrainOptions(dataset, variant, plans=plans, epochs=1, iters_per_epoch=1, device=device,
                                 overwrite=True))
    with redirect_stdout(io.StringIO()):
        trainer = build_trainer(plan, torch.device(device))
        trainer.on_train_start()
        trainer.on_epoch_start()
        trainer.on_train_epoch_start()
    return trainer, next(trainer.dataloader_train)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    import torch

    from ImprovedNNUNetTrainingLib.engine.environment import cores_present

    if args.device == "cpu":
        torch.set_num_threads(cores_present())
    with tempfile.TemporaryDirectory() as tmp:
        dataset = prepare(Path(tmp))
        runs = {name: started_trainer(dataset, args.variant, plans, args.device) for name, (_, plans) in PLANS.items()}
        times = {name: [] for name in runs}
        for name, (trainer, batch) in runs.items():
            for _ in range(2):  # warm-up
                trainer.train_step(batch)
        for _ in range(args.steps):
            for name, (trainer, batch) in runs.items():
                started = time.perf_counter()
                trainer.train_step(batch)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - started)
        print(f"{args.variant} on {dataset}, 3d_fullres, {args.device}, {args.steps} timed steps per plans "
              f"(one fixed batch; data loading excluded)")
        for name, (trainer, batch) in runs.items():
            patch = list(trainer.configuration_manager.patch_size)
            parameters = sum(p.numel() for p in trainer.network.parameters()) / 1e6
            print(f"  {name:<9} {PLANS[name][1]:<24} patch {patch} batch {trainer.configuration_manager.batch_size}: "
                  f"{statistics.median(times[name]) * 1000:7.1f} ms/iteration, {parameters:.1f} M parameters")
            for loader in (trainer.dataloader_train, trainer.dataloader_val):
                if hasattr(loader, "_finish"):
                    loader._finish()
        ratio = statistics.median(times["ResEnc M"]) / statistics.median(times["default"])
        batches = {name: runs[name][0].configuration_manager.batch_size for name in runs}
        print(f"ResEnc M / default time per iteration: {ratio:.2f}x; per training sample (the presets choose "
              f"different batch sizes): {ratio * batches['default'] / batches['ResEnc M']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
