"""Studies on a real SLURM cluster (single node, started by ``Testing/slurm/cluster.sh start``; `.ci/run`
starts it). Skipped on machines without SLURM, never in CI (``CI`` set): there a missing cluster fails."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

DATASET = "Dataset987_TinyChest"
SCHEDULE = ["--iters-per-epoch", "2", "--val-iters-per-epoch", "1", "--device", "cpu"]


def cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30).stdout.split()
    return any(s in ("idle", "mixed", "allocated") for s in states)


if not cluster_up():
    if os.environ.get("CI"):
        pytest.fail("CI is set but no SLURM cluster answers; .ci/run starts it with Testing/slurm/cluster.sh start",
                    pytrace=False)
    pytest.skip("no SLURM cluster; start the test cluster as root with: Testing/slurm/cluster.sh start",
                allow_module_level=True)


def study(tmp_path, *arguments, timeout=900, **variables):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1", **variables)
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", *arguments], capture_output=True,
                          text=True, env=env, timeout=timeout)


def wait_for(condition, timeout=300, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_stock_trainer_arm_with_repeats_runs_on_slurm_tracked_in_mlflow(tiny_dataset, tmp_path, monkeypatch):
    """An arm of nnU-Net's own trainer, 2 repeats: 2 jobs, each repeat with its seed; the jobs inherit
    MLFLOW_TRACKING_URI and their runs nest under the study's."""
    import mlflow

    store = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    ran = study(tmp_path, "run", DATASET, "--arm", "nomirror=nnUNetTrainerNoMirroring", "--folds", "0", "--repeats",
                "2", "--name", "stock", "--epochs", "2", *SCHEDULE, "--executor", "slurm",
                "--slurm-cpus-per-task", "1", "--slurm-time", "20", **store)
    assert ran.returncode == 0, ran.stderr[-3000:]
    folder = tmp_path / "results" / DATASET / "studies" / "stock"
    jobs = json.loads((folder / "slurm_jobs.json").read_text())
    assert set(jobs) == {f"nomirror/fold 0/repeat {r}" for r in (0, 1)}
    for arm in ("nomirror",):
        log = (folder / "logs" / f"{arm}_fold0.log").read_text()
        assert f"SLURM job {jobs[arm + '/fold 0/repeat 0']}" in log
        assert f"SLURM job {jobs[arm + '/fold 0/repeat 1']}" in (folder / "logs" / f"{arm}_fold0_repeat1.log").read_text()
    fold = folder / "arms" / "nomirror" / "repeat_1" / DATASET / "nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"
    assert json.loads((fold / "fold_0" / "run_options.json").read_text())["seed"] == 1
    assert "Arm effect vs seed spread" in (folder / "report" / "report.md").read_text()
    status = study(tmp_path, "status", DATASET, "stock")
    assert [line.split()[1:] for line in status.stdout.splitlines()[1:]] == [["done", "done"]]

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(store["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name(DATASET).experiment_id])
    parent = next(r for r in runs if r.info.run_name == "study stock")
    assert sum(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id for r in runs) == 2


def test_requeued_and_cancelled_jobs_resume_the_same_training(tiny_dataset, tmp_path):
    arguments = ["run", DATASET, "--arm", "baseline", "--folds", "0", "--epochs", "40", *SCHEDULE,
                 "--executor", "slurm", "--slurm-cpus-per-task", "1", "--slurm-time", "20"]
    submitted = study(tmp_path, *arguments, "--no-wait")
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    folder = tmp_path / "results" / DATASET / "studies" / "baseline"
    job = json.loads((folder / "slurm_jobs.json").read_text())["baseline/fold 0"]
    fold = folder / "arms" / "baseline" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    wait_for(lambda: (fold / "checkpoint_latest.pth").is_file(), what="the first checkpoint")

    subprocess.run(["scontrol", "requeue", job], check=True)  # what preemption with PreemptMode=REQUEUE does
    log = folder / "logs" / "baseline_fold0.log"
    wait_for(lambda: "(restart 1)" in log.read_text(), timeout=300, what="the requeued job to start")
    wait_for(lambda: "resumed from checkpoint_" in log.read_text(), timeout=120, what="the resume")

    subprocess.run(["scancel", job], check=True)  # killed mid-training
    wait_for(lambda: job not in subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True,
                                               text=True).stdout.split(), what="the job to leave the queue")
    assert not (fold / "study_done.json").exists()
    resumed = study(tmp_path, *arguments)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "baseline/fold 0 resumes from its checkpoint" in resumed.stderr
    assert (fold / "study_done.json").is_file()
    assert log.read_text().count("--continue") >= 2
