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


def study(tmp_path, *arguments, timeout=900):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", *arguments], capture_output=True,
                          text=True, env=env, timeout=timeout)


def wait_for(condition, timeout=300, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_two_arm_study_runs_on_slurm_and_reports(tiny_dataset, tmp_path):
    ran = study(tmp_path, "run", DATASET, "--arm", "baseline", "--arm", "loss", "--folds", "0", "--epochs", "2",
                *SCHEDULE, "--executor", "slurm", "--slurm-cpus-per-task", "1", "--slurm-time", "20")
    assert ran.returncode == 0, ran.stderr[-3000:]
    folder = tmp_path / "results" / DATASET / "studies" / "baseline-vs-loss"
    jobs = json.loads((folder / "slurm_jobs.json").read_text())
    assert set(jobs) == {"baseline/fold 0", "loss/fold 0"}
    for arm in ("baseline", "loss"):
        log = (folder / "logs" / f"{arm}_fold0.log").read_text()
        assert f"SLURM job {jobs[arm + '/fold 0']}" in log
    assert (folder / "report" / "report.md").is_file()
    status = study(tmp_path, "status", DATASET, "baseline-vs-loss")
    assert [line.split()[1:] for line in status.stdout.splitlines()[1:]] == [["done"], ["done"]]


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
