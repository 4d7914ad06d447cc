"""`improved-nnunet prepare|train` on bad input, the results-folder guard, and the nnUNet_extTrainer folder."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.engine.progress import parse_event
from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS, get_variant, trainer_class_by_name


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of the command line run in this process."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_event(stdout):
    events = [e for e in map(parse_event, stdout.splitlines()) if e is not None]
    assert events and events[-1]["stage"] == "error", stdout
    return events[-1]["message"]


def test_prepare_missing_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    code, out, err = run_cli(capsys, "prepare", str(tmp_path / "Dataset555_Missing"), "--json")
    assert code == 2 and "no such dataset folder" in err and len(err.strip().splitlines()) == 1
    assert "no such dataset folder" in error_event(out)


def test_prepare_malformed_folders(capsys, tmp_path, monkeypatch, tiny_dataset):
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    bad_name = tmp_path / "raw" / "Chest"
    shutil.copytree(tiny_dataset.raw, bad_name)
    code, _, err = run_cli(capsys, "prepare", str(bad_name))
    assert code == 2 and "Dataset001_Name" in err

    no_labels = tmp_path / "raw" / "Dataset556_NoLabels"
    shutil.copytree(tiny_dataset.raw, no_labels)
    shutil.rmtree(no_labels / "labelsTr")
    code, _, err = run_cli(capsys, "prepare", str(no_labels))
    assert code == 2 and "missing folder labelsTr" in err

    wrong_count = tmp_path / "raw" / "Dataset557_WrongCount"
    shutil.copytree(tiny_dataset.raw, wrong_count)
    dataset_json = json.loads((wrong_count / "dataset.json").read_text())
    dataset_json["numTraining"] = 9
    (wrong_count / "dataset.json").write_text(json.dumps(dataset_json))
    code, _, err = run_cli(capsys, "prepare", str(wrong_count))
    assert code == 2 and "integrity check failed" in err and "expected number of training cases" in err


def test_prepare_keeps_existing_plans(capsys, tiny_dataset):
    plans = tiny_dataset.preprocessed / "nnUNetPlans.json"
    before = plans.read_bytes()
    code, _, err = run_cli(capsys, "prepare", str(tiny_dataset.raw))
    assert code == 2 and "--overwrite" in err
    assert plans.read_bytes() == before


def test_train_fold_out_of_range(capsys, tiny_dataset):
    code, out, err = run_cli(capsys, "train", tiny_dataset.name, "--variant", "baseline", "--fold", "5")
    assert code == 2 and "fold 5 is out of range" in err and "0..4" in err
    assert out == "", "without --json an error goes to stderr only"
    code, out, err = run_cli(capsys, "train", tiny_dataset.name, "--variant", "baseline", "--fold", "5", "--json")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "out of range" in error_event(out)


def test_unknown_variant_lists_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "1", "--variant", "fancy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "fancy" in err and all(name in err for name in VARIANTS)
    with pytest.raises(UserError, match="baseline, loss, deepsup, augment, improved, sdm, msf, msf_deep"):
        get_variant("fancy")


def test_train_unknown_or_unprepared_dataset(capsys, tiny_dataset, monkeypatch):
    code, _, err = run_cli(capsys, "train", "555", "--variant", "baseline")
    assert code == 2 and "no dataset with id 555" in err
    monkeypatch.delenv("nnUNet_results")
    code, _, err = run_cli(capsys, "train", tiny_dataset.name, "--variant", "baseline")
    assert code == 2 and "nnUNet_results is not set" in err


def test_existing_results_are_never_overwritten(capsys, trained_model):
    fold = trained_model("baseline") / "fold_0"
    checkpoint = fold / "checkpoint_final.pth"
    before = (checkpoint.stat().st_mtime_ns, checkpoint.read_bytes())
    code, _, err = run_cli(capsys, "train", "987", "--variant", "baseline", "--epochs", "1")
    assert code == 2 and "--continue" in err and "--overwrite" in err
    assert (checkpoint.stat().st_mtime_ns, checkpoint.read_bytes()) == before
    with pytest.raises(SystemExit):
        main(["train", "987", "--variant", "baseline", "--continue", "--overwrite"])


def test_device_cuda_needs_a_gpu():
    import torch

    from ImprovedNNUNetTrainingLib.engine.runner import pick_device

    if torch.cuda.is_available():
        assert pick_device("cuda")[0].type == "cuda"
    else:
        with pytest.raises(UserError, match="no CUDA GPU"):
            pick_device("cuda")
        device, note = pick_device("auto")
        assert device.type == "cpu" and "CPU" in note


def test_trainer_class_by_name():
    for cls in VARIANTS.values():
        assert trainer_class_by_name(cls.__name__) is cls
    assert trainer_class_by_name("nnUNetTrainerNoDA") is None


FIND_WITH_NNUNET = """
import json, sys
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS
folder = sys.argv[1]
found = {}
for cls in VARIANTS.values():
    hit = recursive_find_python_class(folder, cls.__name__, None, base_folder=folder,
                                      cleanup_imports_from_base_folder=True)
    found[cls.__name__] = hit is not None and hit is cls and issubclass(hit, nnUNetTrainer)
print(json.dumps(found))
"""


def test_ext_trainer_folder_is_searchable_by_nnunet():
    """nnU-Net's own search of an nnUNet_extTrainer path (the call recursive_find_trainer_class_by_name
    makes for each such path), in a fresh interpreter. The stock trainer search that precedes it imports
    every nnU-Net trainer and fails on this machine's broken torchvision, so it is not part of the test."""
    from ImprovedNNUNetTrainingLib.nnunet_ext import EXT_TRAINER_FOLDER

    result = subprocess.run([sys.executable, "-c", FIND_WITH_NNUNET, str(EXT_TRAINER_FOLDER)],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {cls.__name__: cls is not VARIANTS["baseline"] for cls in VARIANTS.values()}


def test_device_cuda_n_selects_the_visible_gpu(monkeypatch, capsys):
    from ImprovedNNUNetTrainingLib.cli.train import select_gpu
    from ImprovedNNUNetTrainingLib.engine.runner import pick_device

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert select_gpu("cuda:1") == "cuda" and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # e.g. what a cluster job was given
    assert select_gpu("cuda:1") == "cuda" and os.environ["CUDA_VISIBLE_DEVICES"] == "6"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with pytest.raises(UserError, match="only 2 GPU"):
        select_gpu("cuda:2")
    assert select_gpu("cpu") == "cpu" and select_gpu("auto") == "auto"
    with pytest.raises(UserError, match="unknown device 'gpu1'; use auto, cpu, cuda, cuda:N"):
        pick_device("gpu1")
    assert main(["train", "987", "--variant", "baseline", "--device", "gpu1"]) == 2
    assert "unknown device 'gpu1'" in capsys.readouterr().err
