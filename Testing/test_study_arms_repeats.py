"""Studies a reviewer trusts: arms of any trainer nnU-Net can find (with plans of their own), a fine-tuning arm,
repeats with recorded seeds, the report's arm effect vs seed spread and compute per arm, and the trainings
tracked in a real local MLflow store (nested under the study's run). Real CPU trainings throughout."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ImprovedNNUNetLib.core.errors import UserError

DATASET = "Dataset987_TinyChest"
SCHEDULE = ["--epochs", "1", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1", "--device", "cpu"]


def cli(tmp_path, *arguments, **variables):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1", **variables)
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *arguments], capture_output=True, text=True,
                          encoding="utf-8", env=env, timeout=900)


def network_weights(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def test_arms_of_any_trainer_plans_and_fine_tuning_with_repeats_tracked_in_mlflow(tiny_dataset, resenc_plans,
                                                                                 trained_model, tmp_path, monkeypatch):
    import mlflow

    checkpoint = trained_model("baseline") / "fold_0" / "checkpoint_final.pth"
    store = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    arms = ["--arm", f"ft=baseline:pretrained={checkpoint}", "--arm",
            f"nomirror=nnUNetTrainerNoMirroring:plans={resenc_plans}"]  # ft, the first arm, is the report's baseline
    ran = cli(tmp_path, "study", "run", DATASET, *arms, "--folds", "0", "--repeats", "2", "--parallel", "2",
              "--name", "arms", *SCHEDULE, **store)
    assert ran.returncode == 0, ran.stderr[-3000:]
    study = tmp_path / "results" / DATASET / "studies" / "arms"
    own_plans = f"nnUNetTrainerNoMirroring__{resenc_plans}__3d_fullres"
    for repeat, root in ((0, study / "arms"), (1, None)):
        for arm, model in (("nomirror", own_plans), ("ft", "nnUNetTrainer__nnUNetPlans__3d_fullres")):
            arm_root = study / "arms" / arm / ("repeat_1" if repeat else "")
            fold = arm_root / DATASET / model / "fold_0"
            assert (fold / "study_done.json").is_file(), fold
            assert json.loads((fold / "run_options.json").read_text())["seed"] == repeat
    nomirror = study / "arms" / "nomirror" / DATASET / own_plans / "fold_0"
    assert network_weights(nomirror / "checkpoint_final.pth")["trainer_name"] == "nnUNetTrainerNoMirroring"
    assert json.loads((study / "arms" / "nomirror" / "arm.json").read_text()) == {
        "variant": "nnUNetTrainerNoMirroring", "settings": {}, "plans": resenc_plans}
    ft = study / "arms" / "ft" / DATASET / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    assert json.loads((ft / "run_options.json").read_text())["pretrained_weights"] == str(checkpoint.resolve())
    assert "fine-tuning from" in (study / "logs" / "ft_fold0.log").read_text()
    first, second = (network_weights(root / DATASET / own_plans / "fold_0" / "checkpoint_final.pth")["network_weights"]
                     for root in (study / "arms" / "nomirror", study / "arms" / "nomirror" / "repeat_1"))
    assert any(not (first[k] == second[k]).all() for k in first)  # two seeds, two networks

    status = cli(tmp_path, "study", "status", DATASET, "arms").stdout.splitlines()
    assert status[0].split() == ["arm", "fold", "0", "r0", "fold", "0", "r1"]
    assert status[1].split() == ["ft", "done", "done"]

    report = (study / "report" / "report.md").read_text()
    assert "trained 2 times (seeds 0, 1)" in report
    assert "Arm effect vs seed spread" in report
    spread = [line for line in report.splitlines() if line.startswith("| nomirror | 2 |") and resenc_plans not in line]
    assert len(spread) == 1 and len(spread[0].split("|")[3].split(",")) == 2  # the Dice of each repeat
    assert any(line.startswith("- `nomirror` differs from `ft` by") for line in report.splitlines())
    compute = [line for line in report.splitlines() if line.startswith("| nomirror | 2 |") and resenc_plans in line]
    assert compute, "the compute table counts both repeats and names the arm's own plans"
    assert "`ft` (baseline, fine-tuned from" in report

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(store["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(DATASET)
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.info.run_name == "study arms"]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    assert sorted(r.data.params["seed"] for r in children) == ["0", "0", "1", "1"]
    assert {r.data.params["trainer"] for r in children} == {"nnUNetTrainer", "nnUNetTrainerNoMirroring"}
    for run in children:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0]
        assert "validation_dice" in run.data.metrics and run.data.metrics["parameters"] > 0
    assert json.loads(parent[0].data.params["arms"])[1]["plans"] == resenc_plans

    compared = cli(tmp_path, "compare", DATASET, "--csv", str(tmp_path / "compare.csv"))
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "arms/nomirror/repeat_1" in compared.stdout and "arms/ft " in compared.stdout

    again = cli(tmp_path, "study", "run", DATASET, *arms, "--folds", "0", "--name", "arms", *SCHEDULE, **store)
    assert again.returncode == 0 and "started" not in again.stderr  # nothing retrained, the 2 repeats kept
    assert json.loads((study / "study.json").read_text())["repeats"] == 2
    assert "trained 2 times" in (study / "report" / "report.md").read_text()
    seeds = cli(tmp_path, "study", "run", DATASET, *arms, "--folds", "0", "--seeds", "5,6", "--name", "arms",
                *SCHEDULE)
    assert seeds.returncode == 2 and "was run with --seeds [0, 1]" in seeds.stderr


def test_one_seed_trains_the_same_network_on_the_cpu(tiny_dataset, tmp_path):
    """Without augmentation workers (nnUNet_n_proc_DA=0, as train_tiny runs) a seed fixes the whole CPU run: two
    trainings of one seed end in the same weights, another seed in other weights."""
    from fixtures.training import train_tiny

    weights = []
    for seed, root in ((3, "a"), (3, "b"), (4, "c")):
        result = train_tiny(tiny_dataset, "baseline", 0, results_root=tmp_path / root, seed=seed)
        assert result.status == "done"
        assert json.loads((result.fold_folder / "run_options.json").read_text())["seed"] == seed
        weights.append(network_weights(result.fold_folder / "checkpoint_final.pth")["network_weights"])
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
    assert any(not (weights[0][k] == weights[2][k]).all() for k in weights[0])


def test_train_takes_any_trainer_nnunet_finds(tiny_dataset, tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "my_trainer.py").write_text(
        "from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer\n\n\n"
        "class nnUNetTrainerMine(nnUNetTrainer):\n    pass\n")
    trained = cli(tmp_path, "train", DATASET, "--trainer", "nnUNetTrainerMine", "--fold", "0", "--no-validation",
                  *SCHEDULE, nnUNet_extTrainer=str(own), nnUNet_n_proc_DA="0")
    assert trained.returncode == 0, trained.stderr[-2000:]
    fold = tmp_path / "results" / DATASET / "nnUNetTrainerMine__nnUNetPlans__3d_fullres" / "fold_0"
    assert network_weights(fold / "checkpoint_final.pth")["trainer_name"] == "nnUNetTrainerMine"
    unknown = cli(tmp_path, "train", DATASET, "-tr", "nnUNetTrainerNoSuchThing", *SCHEDULE)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "unknown variant or trainer 'nnUNetTrainerNoSuchThing'" in unknown.stderr and "nnUNet_extTrainer" in unknown.stderr
    settings = cli(tmp_path, "train", DATASET, "-tr", "nnUNetTrainerNoMirroring", "--set", "dice_weight=2", *SCHEDULE)
    assert settings.returncode == 2 and "--set changes a variant's hyper-parameters" in settings.stderr


def test_arm_strings_and_their_errors(tiny_dataset, tmp_path):
    from ImprovedNNUNetTrainingLib.analysis.study.spec import Study, parse_arm

    arm = parse_arm("resencl=baseline:plans=nnUNetResEncUNetLPlans,config=2d")
    assert (arm.variant, arm.plans, arm.configuration, arm.settings) == ("baseline", "nnUNetResEncUNetLPlans", "2d", {})
    arm = parse_arm("m5=msf:msf_dilation_radius=5,configuration=3d_lowres")
    assert arm.settings == {"msf_dilation_radius": 5} and arm.configuration == "3d_lowres"
    assert parse_arm("da5=nnUNetTrainerDA5").variant == "nnUNetTrainerDA5"
    problems = {"x=nnUNetTrainerNope": "unknown variant or trainer 'nnUNetTrainerNope'",
                "x=nnUNetTrainerDA5:dice_weight=2": "nnUNetTrainerDA5 has no setting dice_weight",
                "x=baseline:config=4d": "unknown configuration '4d'",
                f"x=baseline:pretrained={tmp_path / 'missing.pth'}": "no such file"}
    for text, message in problems.items():
        with pytest.raises(UserError, match=message.replace("(", r"\(")):
            parse_arm(text)
    with pytest.raises(UserError, match="give 2 different seeds"):
        Study(DATASET, [parse_arm("baseline")], folds=[0], repeats=2, seeds=[1, 1])
    study = Study(DATASET, [parse_arm("baseline"), parse_arm("r=baseline:plans=P,config=2d")], folds=[0], repeats=3)
    assert study.seeds == [0, 1, 2]
    assert study.fold_folder(study.arms[1], 0, 2).parts[-4:] == ("repeat_2", DATASET, "nnUNetTrainer__P__2d", "fold_0")
