"""A dataset with fewer training cases than nnU-Net's 5 folds: one fold per case instead of
scikit-learn's "Cannot have number of splits n_splits=5 greater than the number of samples"."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from ImprovedNNUNetTrainingLib.engine.progress import parse_event

NAME = "Dataset985_Three"


def small_copy(tiny_dataset, root, keep: int, name=NAME):
    """The tiny dataset's preprocessed folder with only ``keep`` cases and no split yet."""
    target = root / "preprocessed" / name
    shutil.copytree(tiny_dataset.preprocessed, target)
    (target / "splits_final.json").unlink(missing_ok=True)
    data = target / "nnUNetPlans_3d_fullres"
    cases = sorted({p.name.split(".")[0] for p in data.glob("*.pkl")})
    for case in cases[keep:]:
        for path in data.glob(f"{case}[._]*"):
            path.unlink()
    plans = json.loads((target / "nnUNetPlans.json").read_text())
    plans["dataset_name"] = name
    (target / "nnUNetPlans.json").write_text(json.dumps(plans))
    dataset = json.loads((target / "dataset.json").read_text())
    dataset["numTraining"] = keep
    (target / "dataset.json").write_text(json.dumps(dataset))
    return target


def train(root, *arguments, name=NAME):
    env = dict(os.environ, nnUNet_preprocessed=str(root / "preprocessed"), nnUNet_results=str(root / "results"),
               nnUNet_n_proc_DA="0")
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "train", name, "--variant", "baseline", "--json",
                           "--epochs", "1", "--iters-per-epoch", "1", "--val-iters-per-epoch", "1", "--device", "cpu",
                           "--no-validation", *arguments], capture_output=True, text=True, env=env, timeout=600)


def test_three_cases_train_with_three_folds(tiny_dataset, tmp_path):
    preprocessed = small_copy(tiny_dataset, tmp_path, 3)
    out_of_range = train(tmp_path, "--fold", "4")
    assert out_of_range.returncode == 2
    assert "fold 4 is out of range: this dataset has 3 folds (0..2)" in out_of_range.stderr
    ran = train(tmp_path, "--fold", "2")
    assert ran.returncode == 0, ran.stderr
    assert "Cannot have number of splits" not in ran.stdout + ran.stderr
    splits = json.loads((preprocessed / "splits_final.json").read_text())
    assert len(splits) == 3 and all(len(s["val"]) == 1 for s in splits)
    first = next(e for e in map(parse_event, ran.stdout.splitlines()) if e)
    assert "3 training cases: 3-fold cross-validation" in first["message"]


def test_one_case_needs_fold_all(tiny_dataset, tmp_path):
    small_copy(tiny_dataset, tmp_path, 1, name="Dataset984_One")
    ran = train(tmp_path, "--fold", "0", name="Dataset984_One")
    assert ran.returncode == 2
    assert "has 1 training case, too few for cross-validation; train with --fold all" in ran.stderr
    assert len([line for line in ran.stderr.splitlines() if line.strip()]) == 1


def test_study_and_find_best_default_to_the_folds_of_the_split(tiny_dataset, tmp_path, monkeypatch):
    """A 3-case dataset has folds 0-2: `study run` and `find-best` default to those, not to 0-4."""
    from ImprovedNNUNetTrainingLib.analysis.study.spec import Arm, Study
    from ImprovedNNUNetTrainingLib.engine.splits import default_folds

    small_copy(tiny_dataset, tmp_path, 3)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    assert default_folds(NAME) == [0, 1, 2]
    assert Study(dataset=NAME, arms=[Arm("baseline", "baseline")]).folds == [0, 1, 2]
    assert default_folds(tiny_dataset.name) == [0, 1, 2, 3, 4]  # six cases: nnU-Net's five folds
    env = dict(os.environ, nnUNet_preprocessed=str(tmp_path / "preprocessed"), nnUNet_results=str(tmp_path / "results"))
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "find-best", NAME, "--variants", "baseline"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 2 and "fold_3" not in ran.stderr, ran.stderr
