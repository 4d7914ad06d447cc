"""Benchmark: our in-memory predictor against bare ``nnUNetPredictor.predict_single_npy_array``.

Both segment the same volume (slicerio's whole CTChest4, 34×128×128) with the same model and
settings (fold 0, CPU or the given device, no mirroring unless ``--tta``) in this run. Each side runs
in its own child process, alternating, so peak memory (resident set) is measured per side. Prints
seconds per volume (median of the repeats), our/stock ratio (target <= 1.05), peak memory, and
whether the two label maps are identical.

The model: ``--model FOLDER``, or else a tiny baseline model trained here on crops of CTChest4
(the test fixtures' dataset and plans: 8×32×32 patch, narrow network, 2 epochs of 2 iterations).

Run: ``.venv/bin/python Testing/benchmarks/bench_predict.py [--model FOLDER] [--device cpu|cuda] [--tta]``
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
from pathlib import Path

TARGET_RATIO = 1.05
REPEATS = 3


def ct_volume():
    import slicerio

    from ImprovedNNUNetLib.imageio import read_image

    return read_image(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")


def train_tiny_model(root: Path) -> Path:
    """The test fixtures' tiny chest dataset, prepared and trained (baseline, fold 0) under ``root``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import slicerio
    from fixtures.training import SCHEDULE, shrink_plans, write_tiny_chest_dataset

    from ImprovedNNUNetTrainingLib.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.progress import ProgressReporter
    from ImprovedNNUNetTrainingLib.runner import TrainOptions, train

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(root / var)
        (root / var).mkdir()
    raw = write_tiny_chest_dataset(root / "nnUNet_raw", Path(slicerio.__file__).parent / "data")
    quiet = ProgressReporter(stream=io.StringIO())
    preprocessed = prepare_dataset(str(raw), ["3d_fullres"], reporter=quiet)
    shrink_plans(preprocessed / "nnUNetPlans.json")
    os.environ["nnUNet_n_proc_DA"] = "0"
    result = train(TrainOptions(raw.name, "baseline", fold=0, final_validation=False, device="cpu", **SCHEDULE),
                   quiet)
    return result.fold_folder.parent


def run_side(side: str, model_folder: str, device: str, tta: bool, queue) -> None:
    """Child process: load the model, warm up, time ``REPEATS`` predictions; report times, peak RSS, labels."""
    import resource
    import time

    import numpy as np
    import torch

    volume = ct_volume()
    if side == "ours":
        from ImprovedNNUNetLib.inference import load_model

        model = load_model(model_folder, folds=0, device=device)

        def predict():
            return model.predict([volume], tta=tta, step=0.5).segmentation.array
    else:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=tta, device=torch.device(device),
                                    allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(model_folder, use_folds=(0,))
        array, properties = volume.array[None].astype(np.float32), {"spacing": list(volume.spacing[::-1])}

        def predict():
            return predictor.predict_single_npy_array(array, dict(properties))
    labels = predict()  # warm-up
    times = []
    for _ in range(REPEATS):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        labels = predict()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((times, peak_mb, labels))


def measure(side: str, model_folder: Path, device: str, tta: bool):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=run_side, args=(side, str(model_folder), device, tta, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: train a tiny one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tta", action="store_true", help="test-time mirroring on both sides")
    args = parser.parse_args()
    cores = str(os.cpu_count() or 1)
    os.environ.setdefault("nnUNet_def_n_proc", cores)
    os.environ.setdefault("nnUNet_n_proc_DA", cores)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as scratch:
        model = args.model or train_tiny_model(Path(scratch))
        volume = ct_volume()
        print(f"model {model}\nvolume CTChest4 {volume.array.shape} (z, y, x), device {args.device}, "
              f"mirroring {'on' if args.tta else 'off'}, {REPEATS} timed runs per side after a warm-up")
        ours_times, ours_peak, ours_labels = measure("ours", model, args.device, args.tta)
        stock_times, stock_peak, stock_labels = measure("stock", model, args.device, args.tta)
    ours, stock = statistics.median(ours_times), statistics.median(stock_times)
    ratio = ours / stock
    print(f"ours  (load_model + LoadedModel.predict)       : {ours:7.3f} s/volume  peak RSS {ours_peak:7.0f} MB")
    print(f"stock (nnUNetPredictor.predict_single_npy_array): {stock:7.3f} s/volume  peak RSS {stock_peak:7.0f} MB")
    print(f"ratio ours/stock: {ratio:.3f} (target <= {TARGET_RATIO}); "
          f"label maps identical: {bool((ours_labels == stock_labels).all())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
