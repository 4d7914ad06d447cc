"""A real 2-arm × 2-fold CPU study with the local executor: trainings in parallel, each arm in its own
folder, idempotent re-runs (a killed training resumes, finished ones are not retrained), status and report."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

DATASET = "Dataset987_TinyChest"
SCHEDULE = ["--epochs", "2", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1", "--device", "cpu"]


def study(tmp_path, *arguments, **kwargs):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", *arguments], capture_output=True,
                          text=True, env=env, timeout=900, **kwargs)


def arms_folder(tmp_path):
    return tmp_path / "results" / DATASET / "studies" / "baseline-vs-msf_d3" / "arms"


def test_two_arms_two_folds_locally(tiny_dataset, tmp_path):
    arms = ["--arm", "baseline", "--arm", "msf_d3=msf:msf_dilation_radius=3"]
    ran = study(tmp_path, "run", DATASET, *arms, "--folds", "0,1", "--parallel", "2", "--npz", *SCHEDULE)
    assert ran.returncode == 0, ran.stderr[-3000:]
    folder = arms_folder(tmp_path)
    assert json.loads((folder / "msf_d3" / "arm.json").read_text()) == {"variant": "msf",
                                                                        "settings": {"msf_dilation_radius": 3}}
    msf_fold = folder / "msf_d3" / DATASET / "nnUNetTrainerMSF__nnUNetPlans__3d_fullres" / "fold_1"
    assert json.loads((msf_fold / "run_options.json").read_text())["hyperparameters"] == {"msf_dilation_radius": 3}
    assert (msf_fold / "study_done.json").is_file() and (msf_fold / "validation" / "summary.json").is_file()
    report = folder.parent / "report"
    text = (report / "report.md").read_text()
    assert "| baseline | Dice (%) | 2 |" not in text  # cases pooled over folds: 2 folds of 6 cases → ≥ 2
    rows = list(csv.DictReader(open(report / "table.csv")))
    assert {r["arm"] for r in rows} == {"baseline", "msf_d3"}
    assert set(rows[0]) == {"arm", "metric", "unit", "label", "cases", "mean", "sd"}  # numbers, not "1.6 ± 1.4"
    dice = [r for r in rows if r["metric"] == "Dice" and r["label"] != "mean of labels" and int(r["cases"])]
    assert dice and all(r["unit"] == "%" and 0 <= float(r["mean"]) <= 100 and float(r["sd"]) >= 0 for r in dice)
    tests = list(csv.DictReader(open(report / "tests.csv")))
    assert tests and all(t["baseline"] == "baseline" and t["arm"] == "msf_d3" for t in tests)
    assert all(int(t["n_cases"]) >= 1 for t in tests if t["metric"] == "Dice")
    assert {t["unit"] for t in tests if t["metric"] == "Dice"} == {"%"}
    assert all(abs(float(t["median_difference"])) <= 100 for t in tests
               if t["metric"] == "Dice" and t["median_difference"] != "nan")
    assert (report / "box_left_lung.png").read_bytes()[:4] == b"\x89PNG"
    assert (report / "curves_msf_d3.png").is_file()

    again = study(tmp_path, "run", DATASET, *arms, "--folds", "0,1", *SCHEDULE)
    assert again.returncode == 0 and "started" not in again.stderr  # nothing retrained
    status = study(tmp_path, "status", DATASET, "baseline-vs-msf_d3")
    assert status.stdout.split("\n")[1].split() == ["baseline", "done", "done"]

    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"))
    compared = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "compare", DATASET, "--csv",
                               str(tmp_path / "compare.csv")], capture_output=True, text=True, env=env, timeout=600)
    assert compared.returncode == 0, compared.stderr  # what the Training panel's comparison table shows
    assert "baseline-vs-msf_d3/msf_d3" in compared.stdout and "baseline-vs-msf_d3/baseline" in compared.stdout

    lesions = study(tmp_path, "report", DATASET, "baseline-vs-msf_d3", "--instances")  # lesion F1 tested too
    assert lesions.returncode == 0, lesions.stderr[-3000:]
    tested = {t["metric"] for t in csv.DictReader(open(report / "tests.csv"))}
    assert tested == {"Dice", "HD95", "NSD", "lesion F1"}
    assert "lesion F1 (%)" in (report / "report.md").read_text()

    # nnU-Net's choice over the arms (two of them and their ensemble), in arm names
    best = study(tmp_path, "find-best", DATASET, "baseline-vs-msf_d3")
    assert best.returncode == 0, best.stderr[-3000:]
    lines = best.stdout.splitlines()
    assert lines[0] == "cross-validation mean foreground Dice (folds 0, 1):"
    assert any(line.strip().startswith("msf_d3 (nnUNetPlans, 3d_fullres)") for line in lines)
    assert any(line.strip().startswith("ensemble of baseline (nnUNetPlans, 3d_fullres) + msf_d3") for line in lines)
    assert sum("<- best" in line for line in lines) == 1
    assert any(f"-m {folder}" in line for line in lines if line.strip().startswith("improved-nnunet predict"))
    information = json.loads((folder.parent / "find_best" / DATASET / "inference_information.json").read_text())
    assert set(information["all_results"]) == {"baseline__nnUNetPlans__3d_fullres", "msf_d3__nnUNetPlans__3d_fullres",
                                               "ensemble___baseline__nnUNetPlans__3d_fullres___msf_d3__nnUNetPlans"
                                               "__3d_fullres___0_1"}

    # a trained fold without probabilities (trained before the study kept them) is only validated again
    baseline_fold = folder / "baseline" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    for npz in (baseline_fold / "validation").glob("*.npz"):
        npz.unlink()
    refused = study(tmp_path, "find-best", DATASET, "baseline-vs-msf_d3")
    assert refused.returncode == 2 and "has no .npz files" in refused.stderr
    assert f"study run --file {folder.parent / 'study.json'} --npz" in refused.stderr, refused.stderr
    checkpoint = (baseline_fold / "checkpoint_final.pth").stat().st_mtime_ns
    again = study(tmp_path, "run", DATASET, *arms, "--folds", "0,1", "--npz", *SCHEDULE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "baseline/fold 0 is trained; its validation runs again" in again.stderr
    assert list((baseline_fold / "validation").glob("*.npz"))
    assert (baseline_fold / "checkpoint_final.pth").stat().st_mtime_ns == checkpoint  # not retrained

    clash = study(tmp_path, "run", DATASET, "--arm", "baseline", "--arm", "msf_d3=msf:msf_dilation_radius=5",
                  "--folds", "0,1", *SCHEDULE)
    assert clash.returncode == 2 and "give the new arm another name" in clash.stderr


def test_a_killed_training_is_resumed_by_the_next_run(tiny_dataset, tmp_path):
    arms = ["--arm", "baseline", "--arm", "msf_d3=msf:msf_dilation_radius=3"]
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ImprovedNNUNetLib", "study", "run", DATASET, "--arm", "baseline",
               "--folds", "0", "--name", "baseline-vs-msf_d3", "--epochs", "30", "--iters-per-epoch", "2",
               "--val-iters-per-epoch", "1", "--device", "cpu"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    fold = arms_folder(tmp_path) / "baseline" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    deadline = time.monotonic() + 300
    while not (fold / "checkpoint_latest.pth").is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    trainer = json.loads((fold.parent / ".fold_0.lock").read_text())["pid"]
    os.killpg(os.getpgid(trainer), signal.SIGKILL)  # the training, its workers and the study die without a word
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not (fold / "study_done.json").exists()
    from ImprovedNNUNetTrainingLib.analysis.study.trainings import fold_is_locked

    deadline = time.monotonic() + 20  # the killed processes release the fold's lock as the kernel reaps them
    while fold_is_locked(fold) and time.monotonic() < deadline:
        time.sleep(0.2)
    status = study(tmp_path, "status", DATASET, "baseline-vs-msf_d3")
    assert status.stdout.split("\n")[1].split()[1] == "stopped"
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "baseline/fold 0 resumes from its checkpoint" in resumed.stderr
    log = (arms_folder(tmp_path).parent / "logs" / "baseline_fold0.log").read_text()
    assert "--continue" in log and "resumed from checkpoint_" in log
    assert (fold / "study_done.json").is_file()
    del arms


def test_ctrl_c_stops_the_trainings_with_a_checkpoint(tiny_dataset, tmp_path):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ImprovedNNUNetLib", "study", "run", DATASET, "--arm", "baseline",
               "--folds", "0", "--epochs", "30", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1",
               "--device", "cpu"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    fold = tmp_path / "results" / DATASET / "studies" / "baseline" / "arms" / "baseline" / DATASET / \
        "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    deadline = time.monotonic() + 300
    while not (fold / "progress.jsonl").is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(first.pid, signal.SIGINT)  # a terminal's Ctrl-C
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr[-2000:]
    assert "interrupted; the trainings stopped with a checkpoint" in stderr
    from ImprovedNNUNetTrainingLib.engine.progress import read_events

    assert read_events(fold / "progress.jsonl")[-1]["stage"] == "cancelled"
    assert (fold / "checkpoint_latest.pth").is_file()
