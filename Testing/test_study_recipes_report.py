"""Study recipes (the papers' ablations), compute accounting of real trainings, and the report's bootstrap
intervals, small-sample sentence, compute table and self-contained HTML."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ImprovedNNUNetTrainingLib.analysis.study.costs import compute_warnings
from ImprovedNNUNetTrainingLib.analysis.study.recipes import RECIPES, recipe
from ImprovedNNUNetTrainingLib.analysis.study.report import Comparison, paired_interval, small_sample_lines
from ImprovedNNUNetTrainingLib.analysis.study.spec import Arm

DATASET = "Dataset987_TinyChest"
ONE_EPOCH = ["--epochs", "1", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1", "--device", "cpu"]


def cli(tmp_path, *arguments):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *arguments], capture_output=True, text=True,
                          env=env, timeout=900)


def test_every_recipe_is_a_valid_study_and_lists_its_source():
    for name in RECIPES:
        arms = [Arm(**arm).check() for arm in recipe(name)["arms"]]
        assert len({a.name for a in arms}) == len(arms) >= 2
    msf = {a["name"]: a.get("settings", {}) for a in recipe("msf-dilation")["arms"]}
    assert [s.get("msf_dilation_radius") for s in msf.values()] == [None, 2, 5, 10]  # He et al., Table 3
    listed = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", "recipes"], capture_output=True,
                            text=True)
    assert listed.returncode == 0 and all(name in listed.stdout for name in RECIPES)
    assert "He et al., Table 3" in listed.stdout
    shown = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", "recipes", "msf-stages"],
                           capture_output=True, text=True)
    assert json.loads(shown.stdout)["arms"][1]["settings"] == {"msf_stage1_fraction": 0.0}
    unknown = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "study", "recipes", "nope"],
                             capture_output=True, text=True)
    assert unknown.returncode == 2 and "no recipe 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_paired_interval_is_scipys_bootstrap():
    from scipy.stats import bootstrap

    differences = np.array([1.5, -0.2, 2.3, 0.8, 1.1, 0.4, 3.0, -0.5])
    low, high = paired_interval(differences)
    expected = bootstrap((differences,), np.mean, n_resamples=9999, method="percentile",
                         rng=np.random.default_rng(0)).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert low < differences.mean() < high
    assert paired_interval(np.array([2.0, 2.0, 2.0])) == (2.0, 2.0)
    assert all(np.isnan(paired_interval(np.array([1.0]))))


def test_small_samples_get_a_plain_sentence():
    few = [Comparison("a", "liver", "Dice", 4, 1.0, 0.125), Comparison("a", "spleen", "Dice", 9, 1.0, 0.01)]
    text = " ".join(small_sample_lines(few))
    assert "only 4 paired case(s)" in text and "0.125" in text
    assert small_sample_lines([Comparison("a", "liver", "Dice", 6, 1.0, 0.03)]) == []


def test_compute_warning_when_arms_differ_by_more_than_a_fifth():
    compute = {"baseline": {"gpu_hours": 2.0, "wall_h": 2.0, "trainings": 2},
               "big": {"gpu_hours": 3.0, "wall_h": 3.0, "trainings": 2},
               "same": {"gpu_hours": 2.2, "wall_h": 2.2, "trainings": 2}}
    warnings = compute_warnings(compute, "baseline")
    assert len(warnings) == 1 and "`big` used 1.50× the GPU-hours" in warnings[0]


def test_a_recipe_runs_and_the_report_states_compute_and_intervals(tiny_dataset, tmp_path):
    ran = cli(tmp_path, "study", "run", "--recipe", "sdm-vs-baseline", DATASET, "--folds", "0", *ONE_EPOCH)
    assert ran.returncode == 0, ran.stderr[-3000:]
    folder = tmp_path / "results" / DATASET / "studies" / "sdm-vs-baseline"
    record = json.loads((folder / "arms" / "sdm" / DATASET / "nnUNetTrainerSDM__nnUNetPlans__3d_fullres" / "fold_0"
                         / "compute.json").read_text())
    assert record["epochs"] == 1 and record["wall_s"] > 0 and record["gpu_hours"] == 0.0
    assert record["peak_memory_mb"] > 10 and record["memory"].startswith("CPU RSS")
    assert record["parameters"] > 1000 and record["plans"] == "nnUNetPlans"
    baseline = json.loads((folder / "arms" / "baseline" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres"
                           / "fold_0" / "compute.json").read_text())
    assert record["parameters"] > baseline["parameters"]  # the distance head's weights

    report = folder / "report"
    text = (report / "report.md").read_text()
    assert "Compute per arm" in text and "| sdm | 1 |" in text and "mean difference [95% CI]" in text
    assert "Too few cases to detect a difference" in text  # one fold of a six-case dataset
    tests = list(csv.DictReader(open(report / "tests.csv")))
    assert tests and {"ci95_low", "ci95_high", "mean_difference"} <= set(tests[0])
    page = (report / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "Compute per arm" in page
    assert "data:image/png;base64," in page and 'src="box_' not in page  # pictures inside the file
