"""A battery of bad inputs and faults given to the real command line, one parametrised case per row.

Every case runs ``python -m ImprovedNNUNetLib ...`` as a user would and asserts the exit code, a
single-line message on stderr that names the problem (no traceback), and that no file in the
user's workspace changed or appeared (checksums before and after).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DATASET = "Dataset987_TinyChest"


@dataclass
class Workspace:
    root: Path
    env: dict


def cut(path: Path, fraction: float, target: Path) -> Path:
    data = path.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[:int(len(data) * fraction)])
    return target


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.parent.name) / folder.name / path.relative_to(folder))
    return archive


def zip_bomb(archive: Path) -> Path:
    """1 MiB that expands to 1 GiB, laid out like a model export."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in ("dataset.json", "plans.json"):
            zf.writestr(f"Dataset001_Bomb/nnUNetTrainer__nnUNetPlans__3d_fullres/{name}", "{}")
        with zf.open("Dataset001_Bomb/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth", "w",
                     force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(1024):
                f.write(chunk)
    return archive


@pytest.fixture(scope="module")
def workspace(tiny_dataset, trained_model, tmp_path_factory) -> Workspace:
    """A user's folder: references, predictions, images, a model, archives, and faults made from them."""
    from ImprovedNNUNetLib.core.imageio import read_image, write_image

    root = tmp_path_factory.mktemp("user")
    labels = sorted((tiny_dataset.raw / "labelsTr").iterdir())[:3]
    images = sorted((tiny_dataset.raw / "imagesTr").iterdir())
    for folder in ("ref", "pred"):
        (root / folder).mkdir()
        for label in labels:
            shutil.copy(label, root / folder / label.name)
    (root / "pred_partial").mkdir()
    shutil.copy(labels[0], root / "pred_partial" / labels[0].name)
    ct = read_image(images[0])
    write_image(ct.with_array((ct.array.astype(np.int32) + 1024).clip(0).astype(np.int16)),
                root / "ct_as_pred" / labels[0].name)  # an intensity image with hundreds of values
    write_image(ct, root / "raw_ct_as_pred" / labels[0].name)  # the CT itself, negative Hounsfield units
    cut(labels[0], 0.5, root / "pred_truncated" / labels[0].name)
    cut(labels[0], 0.9, root / "ref_truncated.nii.gz")
    cut(images[0], 0.9, root / "images_truncated" / images[0].name)
    (root / "images_two_channels").mkdir()
    shutil.copy(images[0], root / "images_two_channels" / "c_0000.nii.gz")
    shutil.copy(images[1], root / "images_two_channels" / "c_0001.nii.gz")
    (root / "images").mkdir()
    for image in images[:2]:
        shutil.copy(image, root / "images" / image.name)
    os.mkfifo(root / "fifo.nii.gz")
    (root / "outfile").write_text("a file where a folder is expected")
    (root / "notes.txt").write_text("my notes")
    (root / "existing_seg.nii.gz").write_bytes(labels[0].read_bytes())
    (root / "results.csv").write_text("my own table")
    model = root / "model"
    shutil.copytree(trained_model("baseline"), model)
    zip_folder(model, root / "model.zip")
    zip_bomb(root / "bomb.zip")
    (root / "not_a_zip.zip").write_text("not an archive")
    raw = root / "Dataset986_Cut"
    shutil.copytree(tiny_dataset.raw, raw)
    cut(raw / "labelsTr" / labels[1].name, 0.5, raw / "labelsTr" / labels[1].name)
    (root / "Badname").mkdir()
    env = dict(os.environ, IMPROVED_NNUNET_MODELS=str(root / "models"), PYTHONUNBUFFERED="1",
               nnUNet_raw=str(tiny_dataset.raw.parent), nnUNet_preprocessed=str(tiny_dataset.preprocessed.parent),
               nnUNet_results=str(root / "nnunet_results"))
    (root / "nnunet_results").mkdir()
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "models", "import", str(root / "model"),
                          "--name", "chest"], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "evaluate", str(root / "pred"),
                          str(root / "ref"), "--out", str(root / "evaluation")], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    return Workspace(root, env)


def checksums(root: Path) -> dict:
    sums = {}
    for path in sorted(root.rglob("*")):
        if path.is_fifo():
            sums[str(path)] = "fifo"
        elif path.is_file():
            sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


# (id, arguments with {ws} for the workspace, expected exit code, regular expression the message matches)
CASES = [
    # evaluate
    ("evaluate-missing-prediction", "evaluate {ws}/nope {ws}/ref", 2, r"prediction .*nope: no such file or folder"),
    ("evaluate-partial-coverage", "evaluate {ws}/pred_partial {ws}/ref", 2,
     r"covers 1 of 3 reference case\(s\).*pass --chill"),
    ("evaluate-ct-as-prediction", "evaluate {ws}/ct_as_pred {ws}/ref --chill", 2,
     r"looks like an intensity image, not a segmentation"),
    ("evaluate-raw-ct-as-prediction", "evaluate {ws}/raw_ct_as_pred {ws}/ref --chill", 2,
     r"raw_ct_as_pred.*looks like an intensity image, not a segmentation"),
    ("evaluate-truncated-prediction", "evaluate {ws}/pred_truncated {ws}/ref --chill", 2,
     r"chest_000.nii.gz is incomplete .*copy or export the file again"),
    ("evaluate-truncated-reference", "evaluate {ws}/pred/chest_000.nii.gz {ws}/ref_truncated.nii.gz", 2,
     r"ref_truncated.nii.gz is incomplete"),
    ("evaluate-fifo", "evaluate {ws}/fifo.nii.gz {ws}/ref/chest_000.nii.gz", 2,
     r"fifo.nii.gz is neither a regular file nor a folder"),
    ("evaluate-out-is-a-file", "evaluate {ws}/pred {ws}/ref --out {ws}/outfile", 2,
     r"--out .*outfile is a file, not a folder"),
    ("evaluate-existing-results", "evaluate {ws}/pred {ws}/ref --out {ws}/evaluation", 2,
     r"summary.json exists; .*--overwrite"),
    ("evaluate-maps-without-out", "evaluate {ws}/pred {ws}/ref --maps", 2, r"error maps need an output folder"),
    ("evaluate-msf-without-maps", "evaluate {ws}/pred {ws}/ref --msf", 2, r"--msf .* give --maps too"),
    ("evaluate-pfile-without-djfile", "evaluate {ws}/pred {ws}/ref -pfile {ws}/notes.txt", 2,
     r"-pfile comes with -djfile"),
    ("evaluate-pfile-not-plans", "evaluate {ws}/pred {ws}/ref -djfile 1 -pfile {ws}/notes.txt", 2,
     r"-pfile .*notes.txt: not a readable JSON file"),
    ("evaluate-bad-labels", "evaluate {ws}/pred {ws}/ref --labels one,two", 2, r"--labels 'one,two'"),
    ("evaluate-bad-tau-label", "evaluate {ws}/pred {ws}/ref --tau-label lung", 2, r"write LABEL=MM"),
    ("evaluate-file-and-folder", "evaluate {ws}/pred/chest_000.nii.gz {ws}/ref", 2,
     r"ref is read as one case's structure masks .*needs label names"),
    # predict
    ("predict-file-output-for-several-cases", "predict -i {ws}/images -o {ws}/seg.nii.gz -m {ws}/model", 2,
     r"names one image file but 2 cases are given; give an output folder"),
    ("predict-two-channels-for-one-channel-model", "predict -i {ws}/images_two_channels -o {ws}/out -m {ws}/model",
     2, r"c_0001.nii.gz looks like channel 1 of case 'c'"),
    ("predict-truncated-input", "predict -i {ws}/images_truncated -o {ws}/out -m {ws}/model", 2,
     r"chest_000_0000.nii.gz is incomplete"),
    ("predict-output-exists", "predict -i {ws}/images/chest_000_0000.nii.gz -o {ws}/existing_seg.nii.gz -m chest",
     2, r"existing_seg.nii.gz exists .*--overwrite"),
    ("predict-output-is-a-file", "predict -i {ws}/images -o {ws}/outfile -m {ws}/model", 2,
     r"outfile exists and is not a folder"),
    ("predict-unknown-model", "predict -i {ws}/images -o {ws}/out -m nomodel", 2,
     r"model 'nomodel' is neither a folder nor an imported model \(imported: chest\)"),
    ("predict-missing-input", "predict -i {ws}/none.nii.gz -o {ws}/out -m chest", 2, r"none.nii.gz: no such file"),
    ("predict-notes-as-input", "predict -i {ws}/notes.txt -o {ws}/out -m chest", 2, r"notes.txt is not an image file"),
    ("ensemble-one-folder", "ensemble -i {ws}/images -o {ws}/out", 2,
     r"at least two input folders"),
    ("ensemble-no-npz", "ensemble -i {ws}/images {ws}/pred -o {ws}/out", 2, r"holds no .npz probability files"),
    ("predict-no-model-files", f"predict -i {{ws}}/images -o {{ws}}/out -d {DATASET} -p nnUNetResEncUNetXLPlans", 2,
     r"nnUNetTrainer__nnUNetResEncUNetXLPlans__3d_fullres"),
    # train
    ("train-plans-not-prepared", f"train {DATASET} --variant msf -p nnUNetResEncUNetXLPlans", 2,
     r"nnUNetResEncUNetXLPlans.json not found .*prepare --planner nnUNetPlannerResEncXL"),
    ("train-pretrained-and-continue", f"train {DATASET} --variant msf --continue -pretrained_weights x.pth", 2,
     r"cannot be combined with --continue"),
    ("train-val-without-run", f"train {DATASET} --variant augment --val", 2, r"--val: .* not found"),
    ("train-fold-out-of-range", f"train {DATASET} --variant msf --fold 0,7", 2,
     r"fold 7 is out of range: this dataset has 5 folds"),
    ("train-continue-nothing", f"train {DATASET} --variant loss --continue", 2, r"there is no run to resume"),
    ("train-zero-epochs", f"train {DATASET} --variant msf --epochs 0", 2, r"--epochs must be at least 1, got 0"),
    ("train-change-without-continue", f"train {DATASET} --variant msf --change", 2,
     r"--change only applies to --continue"),
    ("train-unknown-hyperparameter", f"train {DATASET} --variant msf --set bogus=1", 2,
     r"has no settable hyper-parameter bogus"),
    ("train-bad-hyperparameter-value", f"train {DATASET} --variant loss --set dice_weight=heavy", 2,
     r"is not a number or list"),
    ("train-unknown-dataset", "train 555 --variant msf", 2, r"no dataset with id 555"),
    ("train-unknown-configuration", f"train {DATASET} --variant msf --config 2d", 2,
     r"(not in the plans|nnUNetPlans_2d not found)"),
    # prepare
    ("prepare-truncated-label", "prepare {ws}/Dataset986_Cut --config 3d_fullres", 2,
     r"chest_001.nii.gz is incomplete"),
    ("prepare-bad-folder-name", "prepare {ws}/Badname", 2, r"must look like Dataset001_Name"),
    ("prepare-bad-gpu-memory", "prepare {ws}/Badname --planner ResEncL --gpu-memory-target 0", 2,
     r"--gpu-memory-target 0.0: give the GPU memory in GB"),
    # find-best
    ("find-best-nothing-trained", f"find-best {DATASET} --variants msf_deep", 2, r"none of the models is trained"),
    # models
    ("models-zip-bomb", "models import {ws}/bomb.zip", 2, r"would expand from 1.0 MiB to 1.0 GiB"),
    ("models-name-clash", "models import {ws}/model.zip --name chest", 2,
     r"model 'chest' already exists .*--force"),
    ("models-not-a-zip", "models import {ws}/not_a_zip.zip", 2, r"neither a ZIP archive nor a folder"),
    ("models-remove-unknown", "models remove other", 2, r"no imported model named 'other'"),
    # compare
    ("compare-csv-not-ours", f"compare {DATASET} --csv {{ws}}/results.csv", 2,
     r"results.csv exists and was not written by compare"),
    # study
    ("study-unknown-variant", f"study run {DATASET} --arm best", 2, r"arm 'best': unknown variant or trainer 'best'"),
    ("study-unknown-setting", f"study run {DATASET} --arm a=msf:foo=1", 2, r"msf has no setting foo; valid: "),
    ("study-fold-out-of-range", f"study run {DATASET} --arm baseline --folds 0,9", 2,
     r"fold 9 is out of range"),
    ("study-unknown-study", f"study status {DATASET} nope", 2, r"no study 'nope' .*study run first"),
    # argument errors (argparse)
    ("evaluate-no-arguments", "evaluate", 2, r"the following arguments are required: PRED, REF"),
    ("train-unknown-variant", f"train {DATASET} --variant best", 2, r"invalid choice: 'best'"),
]


@pytest.mark.parametrize("case_id,arguments,code,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(workspace, case_id, arguments, code, message):
    before = checksums(workspace.root)
    argv = [part.replace("{ws}", str(workspace.root)) for part in arguments.split()]
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *argv], env=workspace.env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == code, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert "Traceback" not in ran.stderr
    assert len(lines) == 1, f"expected one line on stderr:\n{ran.stderr}"
    assert re.match(r"improved-nnunet [\w -]+: error: ", lines[0]), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert checksums(workspace.root) == before, "a user file changed or appeared"


def test_the_battery_is_large_enough():
    assert len(CASES) >= 30


NO_TORCH = ["train-fold-out-of-range", "train-continue-nothing", "predict-two-channels-for-one-channel-model",
            "predict-file-output-for-several-cases", "evaluate-partial-coverage", "models-name-clash"]


@pytest.mark.parametrize("case_id", NO_TORCH)
def test_validation_errors_come_before_torch_is_imported(workspace, case_id):
    """Checks run before the work, and before torch is imported (that import alone takes seconds)."""
    arguments = next(c[1] for c in CASES if c[0] == case_id)
    argv = [part.replace("{ws}", str(workspace.root)) for part in arguments.split()]
    code = ("import sys\nfrom ImprovedNNUNetLib.cli.main import main\n"
            f"rc = main({argv!r})\n"
            "print('torch imported' if 'torch' in sys.modules else 'torch not imported')\nsys.exit(rc)\n")
    ran = subprocess.run([sys.executable, "-c", code], env=workspace.env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "torch not imported"


@pytest.mark.parametrize("command", [f"train {DATASET} --variant msf", "train 500 --variant msf"])
def test_train_with_the_nnunet_folders_unset_names_the_variable(workspace, command):
    """As docs/training.md promises (and predict does): the unset variable, not "no dataset with id 500"."""
    env = {k: v for k, v in workspace.env.items() if not k.startswith("nnUNet_") or k.startswith("nnUNet_n")}
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *command.split()], env=env,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nnUNet_preprocessed is not set; export nnUNet_preprocessed=" in lines[0], ran.stderr
