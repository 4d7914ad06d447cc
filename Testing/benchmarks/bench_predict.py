"""Benchmark: our in-memory predictor against bare ``nnUNetPredictor.predict_single_npy_array``.

Both segment the same volume (slicerio's whole CTChest4, 34×128×128) with the same model and
settings (fold 0, CPU or the given device, no mirroring unless ``--tta``) in this run. Each side
loads its model once in its own child process (so peak memory, the resident set, is per side) and
the timed predictions alternate between the sides so that machine load affects both alike. Prints
seconds per volume (median of the repeats), our/stock ratio (target <= 1.05), peak memory, and
whether the two label maps are identical.

The model: ``--model FOLDER``, or else a tiny baseline model trained here on crops of CTChest4
(the test fixtures' dataset and plans: 8×32×32 patch, narrow network, 2 epochs of 2 iterations).

Run: ``.venv/bin/python Testing/benchmarks/bench_predict.py [--model FOLDER] [--device cpu|cuda] [--tta]``
"""
from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
from pathlib import Path

TARGET_RATIO = 1.05
REPEATS = 5


def ct_volume():
    import slicerio

    from ImprovedNNUNetLib.core.imageio import read_image

    return read_image(Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd")


def train_tiny_model(root: Path) -> Path:
    """The test fixtures' tiny chest dataset, prepared and trained (baseline, fold 0) under ``root``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import slicerio

    from fixtures.training import SCHEDULE, shrink_plans, write_tiny_chest_dataset
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter
    from ImprovedNNUNetTrainingLib.engine.runner import TrainOptions, train

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(root / var)
        (root / var).mkdir()
    raw = write_tiny_chest_dataset(root / "nnUNet_raw", Path(slicerio.__file__).parent / "data")
    quiet = ProgressReporter(stream=io.StringIO())
    log = root / "train_tiny_model.log"
    print(f"training the tiny model (nnU-Net's output: {log})", flush=True)
    with open(log, "w") as stream, contextlib.redirect_stdout(stream):  # nnU-Net prints its whole plans
        preprocessed = prepare_dataset(str(raw), ["3d_fullres"], reporter=quiet)
        shrink_plans(preprocessed / "nnUNetPlans.json")
        os.environ["nnUNet_n_proc_DA"] = "0"
        result = train(TrainOptions(raw.name, "baseline", fold=0, final_validation=False, device="cpu", **SCHEDULE),
                       quiet)
    return result.fold_folder.parent


def peak_resident_mb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve_side(side: str, model_folder: str, device: str, tta: bool, connection) -> None:
    """Child process: load the model and warm up, then time one prediction per request; finally report
    the peak resident set and the last label map."""
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
    connection.send("ready")
    while connection.recv() == "run":
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        labels = predict()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        connection.send(time.perf_counter() - started)
    connection.send((peak_resident_mb(), labels))


def measure(model_folder: Path, device: str, tta: bool) -> dict:
    """Both sides in their own process, timed alternately so that machine load hits them alike."""
    context = multiprocessing.get_context("spawn")
    sides = {}
    for side in ("ours", "stock"):
        parent, child = context.Pipe()
        process = context.Process(target=serve_side, args=(side, str(model_folder), device, tta, child))
        process.start()
        sides[side] = {"process": process, "pipe": parent, "times": []}
    for side in sides.values():
        assert side["pipe"].recv() == "ready"
    for _ in range(REPEATS):
        for side in sides.values():
            side["pipe"].send("run")
            side["times"].append(side["pipe"].recv())
    for side in sides.values():
        side["pipe"].send("stop")
        side["peak_mb"], side["labels"] = side["pipe"].recv()
        side["process"].join()
    return sides


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
        sides = measure(model, args.device, args.tta)
    for name, side in sides.items():
        print(f"{name:5} runs: {', '.join(f'{t:.2f}' for t in side['times'])} s")
    ours, stock = (statistics.median(sides[side]["times"]) for side in ("ours", "stock"))
    print(f"ours  (LoadedModel.predict)                     : {ours:7.3f} s/volume  "
          f"peak RSS {sides['ours']['peak_mb']:7.0f} MB")
    print(f"stock (nnUNetPredictor.predict_single_npy_array): {stock:7.3f} s/volume  "
          f"peak RSS {sides['stock']['peak_mb']:7.0f} MB")
    print(f"ratio ours/stock: {ours / stock:.3f} (target <= {TARGET_RATIO}); label maps identical: "
          f"{bool((sides['ours']['labels'] == sides['stock']['labels']).all())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
