"""Benchmark: training throughput of every variant and whole-process predict against nnU-Net, on a GPU.

Makes a synthetic CT-like dataset (air, a body, two organs with their own intensities and noise;
``--size full``: 8 cases of 160×192×192 at 1 mm, nnU-Net's default 3d_fullres plans then give a
128³ patch and batch 2; ``--size small``: 5 cases of 40×56×56 for a CPU run), plans and
preprocesses it with nnU-Net, and reports per variant, under nnU-Net's own torch.compile decision
(on with CUDA unless ``nnUNet_compile`` says otherwise):

- workers: batches per second that nnU-Net's data-loading workers deliver (``--workers``, default one
  per core, the project's default), measured after the prefilled queue is drained;
- step: the GPU step (``train_step`` on one batch, median), the first step (compiling) apart;
- loop: seconds per iteration of the real loop (next batch + step);
- peak: peak allocated device memory (CUDA only).

Order: the `sdm` targets, predict, then the variants (until ``--deadline``). The `sdm` targets: what
they cost when made in the data-loading workers (CPU, ``edt``) as a share of baseline's data-loading CPU time
per batch, and on the training device. Predict: one volume
(full: 240×384×384, about 75 tiles of 128³) with test-time mirroring through ``improved-nnunet predict``
and through ``nnUNetv2_predict_from_modelfolder``, each a whole process, with the same model (baseline
after a few steps), the ratio and the voxel agreement of the two label maps; and the stage breakdown of
the project's predict (start-up, read, model load, preprocess, tiles, conversion, write; the tiles
once more with the mirrors of a tile batched the other way round than the default).

Every result is printed and, with ``--json FILE``, appended as one JSON line as soon as it is known;
``--deadline`` (seconds) skips what would start after it.
Run: ``.venv/bin/python Testing/benchmarks/bench_gpu.py --size small`` (CPU) or
``--size full --device cuda``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZES = {  # cases, case shape (z, y, x), predict volume shape
    "full": (8, (160, 192, 192), (240, 384, 384)),
    "small": (5, (40, 56, 56), (60, 96, 96)),
}
START = time.perf_counter()


class Report:
    def __init__(self, path: str | None, deadline: float):
        self.path, self.deadline = path, deadline

    def __call__(self, kind: str, **values) -> None:
        values = {key: round(v, 4) if isinstance(v, float) else v for key, v in values.items()}
        print(f"[{time.perf_counter() - START:6.0f} s] {kind}: " + ", ".join(f"{k} {v}" for k, v in values.items()),
              flush=True)
        if self.path:
            with open(self.path, "a") as stream:
                stream.write(json.dumps({"kind": kind, **values}) + "\n")

    def time_left(self) -> bool:
        return time.perf_counter() - START < self.deadline


def synthetic_case(shape, seed: int):
    """(image, labels): a CT-like volume in HU and its two-organ label map."""
    import numpy as np

    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    image = np.full(shape, -1000.0)
    body = (y / 0.85) ** 2 + (x / 0.95) ** 2 < 1
    image[body] = 20.0
    labels = np.zeros(shape, dtype=np.uint8)
    cy, cx, cz = rng.uniform(-0.25, 0.25, 3)
    organ = ((z - cz) / 0.6) ** 2 + ((y - cy) / 0.45) ** 2 + ((x - cx) / 0.5) ** 2 < 1
    labels[organ & body] = 1
    image[labels == 1] = 70.0
    for _ in range(3):
        centre = rng.uniform(-0.5, 0.5, 3)
        radius = rng.uniform(0.08, 0.16)
        lesion = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 < radius ** 2
        labels[lesion & body] = 2
    image[labels == 2] = 130.0
    image += rng.normal(0, 15, shape)
    return image.astype(np.float32), labels


def write_image(array, path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(image, str(path))


def make_dataset(root: Path, size: str) -> Path:
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    cases, shape, _ = SIZES[size]
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(root / var)
        (root / var).mkdir(parents=True, exist_ok=True)
    raw = root / "nnUNet_raw" / "Dataset990_SyntheticCT"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    for index in range(cases):
        image, labels = synthetic_case(shape, index)
        write_image(image, raw / "imagesTr" / f"case{index:03d}_0000.nii.gz")
        write_image(labels, raw / "labelsTr" / f"case{index:03d}.nii.gz")
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1, "lesion": 2},
        "numTraining": cases, "file_ending": ".nii.gz"}))
    with contextlib.redirect_stdout(io.StringIO()):
        return prepare_dataset(str(raw), ["3d_fullres"], reporter=ProgressReporter(stream=io.StringIO()))


def started_trainer(variant: str, preprocessed: Path, device):
    from ImprovedNNUNetTrainingLib.engine.registry import get_variant

    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False  # nnU-Net 2.8 reads (and removes) this flag from the plans
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    trainer = get_variant(variant)(plans=plans, configuration="3d_fullres", fold=0,
                                   dataset_json=dataset_json, device=device)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.on_train_start()
        trainer.on_train_epoch_start()
    if hasattr(trainer.loss, "active"):
        trainer.loss.active = True  # MSF stage 2, the costlier one
    return trainer


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_variant(variant: str, preprocessed: Path, device, iterations: int, workers: int, report: Report):
    """Workers' delivery, step, loop and peak memory of one variant; returns the trainer (still started)."""
    import torch

    trainer = started_trainer(variant, preprocessed, device)
    compiled = type(trainer.network).__name__ == "OptimizedModule"
    loader = trainer.dataloader_train
    synchronize(device)
    start = time.perf_counter()
    batch = next(loader)
    trainer.train_step(batch)
    synchronize(device)
    first = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps = []
    for _ in range(iterations):
        synchronize(device)
        start = time.perf_counter()
        trainer.train_step(batch)
        synchronize(device)
        steps.append(time.perf_counter() - start)
    cached = max(6, workers // 2)  # nnU-Net's queue: this many in each of its two queues, one more per worker
    for _ in range(2 * cached + 2 * workers):  # drain what the workers queued while the first step ran
        next(loader)
    count = max(3 * workers, 12)
    start = time.perf_counter()
    for _ in range(count):
        next(loader)
    delivered = count / (time.perf_counter() - start)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.train_step(next(loader))
    synchronize(device)
    loop = (time.perf_counter() - start) / iterations
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else float("nan")
    report("variant", variant=variant, compiled=compiled, workers_batches_per_s=delivered,
           first_step_s=first, step_s=statistics.median(steps), loop_s_per_it=loop, peak_alloc_mib=peak)
    return trainer


def loading_cpu_seconds(preprocessed: Path, variant: str, batches: int) -> float:
    """CPU seconds per batch of the variant's CPU training pipeline, made in this process (no workers)."""
    import torch

    from ImprovedNNUNetTrainingLib.engine.runner import stop_data_loaders

    before = os.environ.get("nnUNet_n_proc_DA")
    os.environ["nnUNet_n_proc_DA"] = "0"
    try:
        trainer = started_trainer(variant, preprocessed, torch.device("cpu"))
    finally:
        os.environ["nnUNet_n_proc_DA"] = before if before is not None else ""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a data-loading worker, so that CPU time is one worker's work
    try:
        next(trainer.dataloader_train)
        start = time.process_time()
        for _ in range(batches):
            next(trainer.dataloader_train)
        return (time.process_time() - start) / batches
    finally:
        torch.set_num_threads(threads)
        stop_data_loaders(trainer)


def sdm_targets(preprocessed: Path, device, report: Report) -> None:
    """The sdm targets' cost: in the CPU workers (share of baseline's loading) and on the device."""
    import torch

    from ImprovedNNUNetTrainingLib.trainers.sdm import device_targets

    baseline = loading_cpu_seconds(preprocessed, "baseline", 6)
    sdm = loading_cpu_seconds(preprocessed, "sdm", 6)
    report("sdm_targets_in_cpu_workers", baseline_loading_cpu_s=baseline, sdm_loading_cpu_s=sdm,
           added_share_of_baseline=(sdm - baseline) / baseline, target_share=0.15)
    if device.type != "cpu":
        plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())["configurations"]["3d_fullres"]
        patch, batch_size, spacing = plans["patch_size"], plans["batch_size"], plans["spacing"]
        _, labels = synthetic_case(tuple(patch), 1)
        segmentation = torch.from_numpy(labels.astype("int16"))[None, None].repeat(batch_size, 1, 1, 1, 1).to(device)
        from ImprovedNNUNetTrainingLib.trainers import signed_distance_torch
        from ImprovedNNUNetTrainingLib.trainers.signed_distance import signed_distance_targets

        reference = signed_distance_targets(segmentation.cpu().numpy(), (1, 2), spacing)
        for name, failed in (("compiled", False), ("eager", True)):
            signed_distance_torch._compiled["failed"] = failed
            times = []
            for _ in range(6):
                synchronize(device)
                start = time.perf_counter()
                maps = device_targets(segmentation, (1, 2), spacing)
                synchronize(device)
                times.append(time.perf_counter() - start)
            report("sdm_targets_on_device", device=str(device), envelope=name,
                   ms_per_batch=statistics.median(times[1:]) * 1000, first_call_s=times[0],
                   max_abs_difference_to_cpu=float(abs(maps.cpu().numpy() - reference).max()), workers_added_share=0.0)
        signed_distance_torch._compiled["failed"] = False


def trained_baseline(preprocessed: Path, device, steps: int = 10) -> Path:
    """A baseline model folder (nnU-Net's layout, read by nnU-Net and by the project) after a few training
    steps, without compiling (the weights are what matters here)."""
    from ImprovedNNUNetTrainingLib.engine.runner import stop_data_loaders

    before = os.environ.get("nnUNet_compile")
    os.environ["nnUNet_compile"] = "f"
    try:
        trainer = started_trainer("baseline", preprocessed, device)
    finally:
        if before is None:
            del os.environ["nnUNet_compile"]
        else:
            os.environ["nnUNet_compile"] = before
    try:
        for _ in range(steps):
            trainer.train_step(next(trainer.dataloader_train))
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.save_checkpoint(str(Path(trainer.output_folder) / "checkpoint_final.pth"))
    finally:
        stop_data_loaders(trainer)
    return Path(trainer.output_folder_base)


def timed_process(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = (done.stderr or done.stdout).strip().splitlines()
    return seconds, "" if done.returncode == 0 else (tail[-1] if tail else f"exit {done.returncode}")


def predict_comparison(model: Path, root: Path, size: str, device, repeats: int, report: Report) -> None:
    import numpy as np
    import SimpleITK as sitk

    image, _ = synthetic_case(SIZES[size][2], 99)
    inputs = root / "predict_in"
    inputs.mkdir()
    write_image(image, inputs / "volume_0000.nii.gz")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "ImprovedNNUNet"), str(ROOT / "ImprovedNNUNetTraining"),
                                                         os.environ.get("PYTHONPATH", "")])}
    ours = [sys.executable, "-m", "ImprovedNNUNetLib.cli.main", "predict", "-i", str(inputs / "volume_0000.nii.gz"),
            "-m", str(model), "-f", "0", "--device", device.type, "--tta", "--overwrite"]
    theirs = [sys.executable, "-c", "import sys; from nnunetv2.inference.predict_from_raw_data import "
              "predict_entry_point_modelfolder as main; sys.exit(main())", "-i", str(inputs), "-m", str(model),
              "-f", "0", "-device", device.type]
    times = {"project": [], "nnunet": []}
    for repeat in range(repeats):
        out = {side: root / f"predict_{side}_{repeat}" for side in times}
        seconds, error = timed_process([*ours, "-o", str(out["project"])], env)
        times["project"].append(seconds)
        if error:
            report("predict_error", side="project", error=error)
            return
        seconds, error = timed_process([*theirs, "-o", str(out["nnunet"])], env)
        times["nnunet"].append(seconds)
        if error:
            report("predict_error", side="nnunet", error=error)
            return
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(out["project"] / "volume.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(out["nnunet"] / "volume.nii.gz")))
    project, nnunet = statistics.median(times["project"]), statistics.median(times["nnunet"])
    report("predict_whole_process", shape=list(image.shape), project_s=project, nnunet_s=nnunet,
           ratio=project / nnunet, target_ratio=0.5, voxel_agreement=float(np.mean(a == b)))
    predict_stages(model, inputs / "volume_0000.nii.gz", root, device, env, report)


STAGES_SCRIPT = r"""
import json, sys, time
start = time.perf_counter()
from ImprovedNNUNetLib.core.imageio import read_image, write_image
from ImprovedNNUNetLib.inference import load_model
stages = {"imports": time.perf_counter() - start}
def lap(name, t):
    stages[name] = time.perf_counter() - t
    return time.perf_counter()
t = time.perf_counter()
image = read_image(sys.argv[1]); t = lap("read", t)
model = load_model(sys.argv[2], folds=[0], device=sys.argv[3]); t = lap("load_model", t)
model.predictor.use_mirroring = True
data, template = __import__("ImprovedNNUNetLib.inference.channels", fromlist=["x"]).stack_channels(
    [image], model.channel_names, None, None, None)
pre, props = model._preprocess(data, template); t = lap("preprocess", t)
model.predictor.track(None, 1)
import torch
logits, _ = model._sliding_window(pre, False)
if torch.cuda.is_available(): torch.cuda.synchronize()
t = lap("tiles", t)
model.predictor.batch_mirrors = not model.predictor.batch_mirrors
model._sliding_window(pre, False)
if torch.cuda.is_available(): torch.cuda.synchronize()
t = lap("tiles_batch_mirrors_" + ("on" if model.predictor.batch_mirrors else "off"), t)
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape as c
seg = c(logits, model.plans_manager, model.configuration_manager, model.label_manager, props); t = lap("convert", t)
write_image(template.with_array(seg), sys.argv[4]); t = lap("write", t)
print(json.dumps(stages))
"""


IMPORTS_SCRIPT = r"""
import json, time
start = time.perf_counter()
import torch
torch_s = time.perf_counter() - start
import nnunetv2.inference.predict_from_raw_data
nnunet_s = time.perf_counter() - start - torch_s
import ImprovedNNUNetLib.inference, ImprovedNNUNetLib.core.imageio
print(json.dumps({"torch_s": torch_s, "nnunet_predictor_s": nnunet_s,
                  "project_s": time.perf_counter() - start - torch_s - nnunet_s}))
"""


def predict_stages(model: Path, image: Path, root: Path, device, env: dict, report: Report) -> None:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "pass"], env=env)
    interpreter = time.perf_counter() - start
    done = subprocess.run([sys.executable, "-c", IMPORTS_SCRIPT], env=env, capture_output=True, text=True)
    if done.returncode == 0:
        report("predict_imports", **json.loads(done.stdout.strip().splitlines()[-1]))
    done = subprocess.run([sys.executable, "-c", STAGES_SCRIPT, str(image), str(model), device.type,
                           str(root / "stages.nii.gz")], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        report("predict_stages_error", error=(done.stderr.strip().splitlines() or ["?"])[-1])
        return
    stages = json.loads(done.stdout.strip().splitlines()[-1])
    report("predict_stages", interpreter_s=interpreter, **{f"{k}_s": v for k, v in stages.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="data-loading workers (default: one per core)")
    parser.add_argument("--iterations", type=int, default=10, help="timed steps and loop iterations per variant")
    parser.add_argument("--variants", nargs="+", default=None, help="variants to time (default: all)")
    parser.add_argument("--predict-repeats", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["variants", "targets", "predict"])
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds; later parts are skipped")
    parser.add_argument("--json", default=None, help="append each result as a JSON line to this file")
    args = parser.parse_args()
    for folder in ("ImprovedNNUNet", "ImprovedNNUNetTraining"):
        sys.path.insert(0, str(ROOT / folder))

    import torch

    from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS
    from ImprovedNNUNetTrainingLib.engine.runner import stop_data_loaders

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    os.environ["nnUNet_n_proc_DA"] = str(args.workers)
    report = Report(args.json, args.deadline)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        preprocessed = make_dataset(root, args.size)
        plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())["configurations"]["3d_fullres"]
        report("setup", device=str(device), gpu=torch.cuda.get_device_name() if device.type == "cuda" else "none",
               size=args.size, patch=plans["patch_size"], batch=plans["batch_size"], workers=args.workers,
               torch=torch.__version__, nnUNet_compile=os.environ.get("nnUNet_compile", "(unset: nnU-Net's default)"))
        if "targets" not in args.skip:
            sdm_targets(preprocessed, device, report)
        if "predict" not in args.skip:
            predict_comparison(trained_baseline(preprocessed, device), root, args.size, device, args.predict_repeats,
                               report)
        if "variants" not in args.skip:
            for variant in args.variants or list(VARIANTS):
                if not report.time_left():
                    report("skipped", what=f"variant {variant}", why="deadline")
                    continue
                trainer = measure_variant(variant, preprocessed, device, args.iterations, args.workers, report)
                stop_data_loaders(trainer)
                del trainer
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
