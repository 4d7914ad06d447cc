"""`find-best` over variants: the same choice as nnU-Net's own find_best_configuration on the same folders,
reported in variant names with the commands that reproduce it."""
from __future__ import annotations

import json

import pytest

from fixtures.training import train_tiny
from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError

FOLDS = (0, 1)


@pytest.fixture(scope="module")
def validated(tiny_dataset, tmp_path_factory):
    """baseline and loss, folds 0 and 1, each with nnU-Net's final validation and its .npz files (--npz)."""
    root = tmp_path_factory.mktemp("find_best_results")
    for variant in ("baseline", "loss"):
        for fold in FOLDS:
            result = train_tiny(tiny_dataset, variant, fold, results_root=root, final_validation=True,
                                save_probabilities=True)
            assert result.status == "done"
            assert list((result.fold_folder / "validation").glob("*.npz"))
    return root


def test_find_best_chooses_as_nnunet_does(tiny_dataset, validated, monkeypatch, capsys):
    from nnunetv2.evaluation.find_best_configuration import find_best_configuration

    monkeypatch.setenv("nnUNet_results", str(validated))
    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_dataset.preprocessed.parent))
    assert main(["find-best", tiny_dataset.name, "--variants", "baseline", "loss", "-f", "0", "1"]) == 0
    report = capsys.readouterr().out
    ours = json.loads((validated / tiny_dataset.name / "inference_information.json").read_text())

    models = tuple({"trainer": t, "plans": "nnUNetPlans", "configuration": "3d_fullres"}
                   for t in ("nnUNetTrainer", "nnUNetTrainerLoss"))
    theirs = find_best_configuration(tiny_dataset.name, models, allow_ensembling=True, num_processes=1,
                                     overwrite=True, folds=FOLDS)
    assert ours["best_model_or_ensemble"]["selected_model_or_models"] == \
        theirs["best_model_or_ensemble"]["selected_model_or_models"]
    assert ours["all_results"] == pytest.approx(theirs["all_results"])
    assert len(ours["all_results"]) == 3  # two models and their ensemble

    lines = report.splitlines()
    assert lines[0] == "cross-validation mean foreground Dice (folds 0, 1):"
    assert any(line.strip().startswith("baseline (nnUNetPlans, 3d_fullres)") for line in lines)
    assert any(line.strip().startswith("ensemble of baseline (nnUNetPlans, 3d_fullres) + loss (") for line in lines)
    assert sum("<- best" in line for line in lines) == 1
    assert any(line.startswith("best: ") and "postprocessing" in line for line in lines)
    assert any("improved-nnunet predict -i IN" in line and f"-d {tiny_dataset.name}" in line for line in lines)


def test_find_best_says_what_is_missing(tiny_dataset, validated, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_results", str(validated))
    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_dataset.preprocessed.parent))
    assert main(["find-best", tiny_dataset.name, "--variants", "baseline", "-f", "0", "1", "2"]) == 2
    err = capsys.readouterr().err
    assert "fold 2 of nnUNetTrainer__nnUNetPlans__3d_fullres is not trained" in err and len(err.splitlines()) == 1
    from ImprovedNNUNetTrainingLib.analysis.find_best import find_best

    with pytest.raises(UserError, match="none of the models is trained"):
        find_best(tiny_dataset.name, ["msf"], folds=FOLDS)
