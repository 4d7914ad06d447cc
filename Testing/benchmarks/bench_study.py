"""Benchmark: one tiny CPU study of 4 trainings (2 arms × 2 folds) run sequentially, with the local
executor (2 at once), and on the SLURM test cluster (2 one-CPU slots) when one answers.

Prints wall times, the parallel/sequential speed-up (target >= 1.6x on 2 cores), the SLURM overhead
per job against the local parallel run (target <= 5 s) and each job's submit-to-start latency
(from submission to its log file appearing).

Run: ``.venv/bin/python Testing/benchmarks/bench_study.py`` (start the cluster first, as root:
``Testing/slurm/cluster.sh start``)
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASET = "Dataset987_TinyChest"
ARMS = ["--arm", "baseline", "--arm", "loss"]
SCHEDULE = ["--folds", "0,1", "--epochs", "3", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1",
            "--device", "cpu"]
TARGET_PARALLEL = 1.6
TARGET_SLURM_OVERHEAD_S = 5.0


def prepare(root: Path) -> None:
    import slicerio

    from fixtures.training import shrink_plans, write_tiny_chest_dataset

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / var).mkdir()
        os.environ[var] = str(root / var)
    raw = write_tiny_chest_dataset(root / "nnUNet_raw", Path(slicerio.__file__).parent / "data")
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    preprocessed = prepare_dataset(str(raw), ["3d_fullres"], reporter=ProgressReporter(stream=io.StringIO()))
    shrink_plans(preprocessed / "nnUNetPlans.json")


def study(*arguments) -> float:
    started = time.perf_counter()
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", "run", DATASET, *ARMS, *SCHEDULE,
                          *arguments], capture_output=True, text=True)
    if ran.returncode != 0:
        raise SystemExit(f"study {arguments} failed:\n{ran.stderr[-3000:]}")
    return time.perf_counter() - started


def slurm_run(root: Path) -> tuple[float, list[float]]:
    started = time.perf_counter()
    study("--name", "slurm", "--executor", "slurm", "--slurm-cpus-per-task", "1", "--no-wait")
    submitted = time.time()
    folder = root / "nnUNet_results" / DATASET / "studies" / "slurm"
    jobs = json.loads((folder / "slurm_jobs.json").read_text())
    del submitted
    folds = [folder / "arms" / arm / DATASET / trainer / f"fold_{fold}"
             for arm, trainer in (("baseline", "nnUNetTrainer__nnUNetPlans__3d_fullres"),
                                  ("loss", "nnUNetTrainerLoss__nnUNetPlans__3d_fullres")) for fold in (0, 1)]
    while not all((p / "study_done.json").is_file() for p in folds):
        time.sleep(0.2)
    return time.perf_counter() - started, [job_latency(folder / "slurm" / job) for job in jobs.values()]


def job_latency(job_folder: Path) -> float:
    """Submit-to-start of a job: submitit writes the sbatch script at submission and the job's
    output file when the job starts."""
    script = next(job_folder.glob("*_submission.sh"))
    output = next(job_folder.glob("*_0_log.out"))
    return output.stat().st_ctime - script.stat().st_mtime


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        prepare(root)
        sequential = study("--name", "sequential", "--parallel", "1")
        parallel = study("--name", "parallel", "--parallel", "2")
        print("study: 2 arms × 2 folds = 4 trainings, 3 epochs × 2 iterations + final validation, CPU")
        print(f"{'run':<34}{'wall s':>8}")
        print(f"{'sequential (--parallel 1)':<34}{sequential:>8.1f}")
        print(f"{'local executor (--parallel 2)':<34}{parallel:>8.1f}")
        print(f"parallel / sequential speed-up: {sequential / parallel:.2f}x (target >= {TARGET_PARALLEL}x)")
        if shutil.which("sinfo") and "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True,
                                                               text=True).stdout:
            slurm, latency = slurm_run(root)
            print(f"{'SLURM executor (2 one-CPU slots)':<34}{slurm:>8.1f}")
            overhead = (slurm - parallel) / 2  # two waves of two jobs
            print(f"SLURM overhead per job vs local parallel: {overhead:.1f} s (target <= {TARGET_SLURM_OVERHEAD_S} s)")
            print("submit-to-start per job (the second wave waits for a free slot): "
                  + ", ".join(f"{s:.1f} s" for s in latency))
        else:
            print("no SLURM cluster: start it as root with Testing/slurm/cluster.sh start")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
