"""The brain-tissue step of `make demo` (Scripts/demo_brain.py) on real data: nilearn's bundled
MNI template.

The dataset builder is checked against the label rule and the slab split; the whole brain
step runs once per session on a tiny schedule (one variant, 1 epoch × 1 iteration) through
the real `improved-nnunet` sub-commands, and its report is checked against the run's own
evaluation summary. Scripts/demo.py's rules for replacing an output folder are checked too.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Scripts"))

import demo_brain  # noqa: E402
import demo_folder  # noqa: E402
from demo_brain_data import (  # noqa: E402
    LABELS,
    BrainDataConfig,
    build_dataset,
    load_template,
    nifti_to_image,
    slab_bounds,
    tissue_labels,
)
from demo_report import VariantRun, comparison_table, format_number  # noqa: E402
from ImprovedNNUNetLib.core.errors import UserError  # noqa: E402
from ImprovedNNUNetLib.core.imageio import read_image  # noqa: E402

TINY_DATA = BrainDataConfig(num_slabs=6, held_out=(3,))
TINY = demo_brain.DemoSettings(data=TINY_DATA, variants=("improved",), epochs=1, iterations=1, val_iterations=1)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """Output folder of one tiny end-to-end run of the brain step."""
    out = tmp_path_factory.mktemp("demo") / "demo_output"
    before = demo_folder.claim_output(out, overwrite=False)
    real_run_cli = demo_brain.run_cli

    def recording_run_cli(args, *rest, on_event=None, **kwargs):  # what reached each step's progress bar
        seen = BAR_EVENTS.setdefault(args[0], [])
        return real_run_cli(args, *rest, on_event=lambda e: (seen.append(e), on_event and on_event(e)), **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_brain, "run_cli", recording_run_cli)
        demo_brain.run_brain_demo(out, TINY)
    demo_folder.record_outputs(out, before)
    return out


BAR_EVENTS: dict[str, list] = {}


def test_the_plan_and_training_bars_move(tiny_demo):
    """The demo's prepare and train children print progress events (--json), so their bars move."""
    assert {e["stage"] for e in BAR_EVENTS["prepare"]} >= {"planning", "preprocessing"}
    training = [e for e in BAR_EVENTS["train"] if e["stage"] == "training" and e.get("iteration")]
    assert training and training[-1]["iteration"] == TINY.iterations


def test_nifti_geometry_matches_simpleitk(tmp_path):
    import nibabel as nib
    import SimpleITK as sitk
    from nilearn.datasets import load_mni152_gm_template

    nifti = load_mni152_gm_template(resolution=2)
    nib.save(nifti, tmp_path / "gm.nii.gz")
    ours, theirs = nifti_to_image(nifti), sitk.ReadImage(str(tmp_path / "gm.nii.gz"))
    assert np.allclose(ours.spacing, theirs.GetSpacing())
    assert np.allclose(ours.origin, theirs.GetOrigin())
    assert np.allclose(ours.direction, theirs.GetDirection())
    assert np.allclose(ours.array, sitk.GetArrayFromImage(theirs), atol=1 / 255)  # nibabel stores uint8 here


def test_tissue_rule():
    t1 = np.array([0.0, 0.5, 0.5, 0.5, 0.5])
    gm = np.array([0.9, 0.6, 0.3, 0.5, 0.3])
    wm = np.array([0.0, 0.3, 0.6, 0.5, 0.3])
    assert tissue_labels(t1, gm, wm, 0.5).tolist() == [0, 1, 2, 1, 0]


def test_slabs_are_disjoint_and_cover_the_range():
    bounds = slab_bounds(3, 80, 8)
    assert bounds[0][0] == 3 and bounds[-1][1] == 80
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    with pytest.raises(UserError, match="fewer slabs"):
        slab_bounds(0, 4, 8)


def test_bad_configuration_is_refused():
    with pytest.raises(UserError, match="resolution"):
        BrainDataConfig(resolution_mm=3)
    with pytest.raises(UserError, match="held-out"):
        BrainDataConfig(num_slabs=4, held_out=(4,))


def test_comparison_table_shows_each_variants_means():
    def summary(dice, hd95):
        return {"mean": {"1": {"Dice": dice, "HD95": hd95, "NSD": 0.5}, "2": {"Dice": 0.25, "HD95": None, "NSD": 0.0}}}

    rows = comparison_table([VariantRun("baseline", summary(0.9, 2.0)), VariantRun("improved", summary(0.8, 3.5))],
                            {1: "grey matter", 2: "white matter"})
    assert rows[0] == ("| Label | Dice baseline | Dice improved | HD95 (mm) baseline | HD95 (mm) improved "
                       "| NSD baseline | NSD improved |")
    assert rows[2] == "| grey matter (1) | 0.900 | 0.800 | 2.00 | 3.50 | 0.500 | 0.500 |"
    assert rows[3] == "| white matter (2) | 0.250 | 0.250 | - | - | 0.000 | 0.000 |"
    assert format_number(float("inf"), 2) == "inf" and format_number(float("nan"), 3) == "n/a"


def test_dataset_holds_out_whole_slabs(tmp_path):
    folder = tmp_path / "Dataset931_MNIBrainTissue"
    dataset = build_dataset(folder, TINY_DATA)
    assert dataset.test_cases == ["mni_slab03"] and len(dataset.train_cases) == 5
    assert sorted(p.name for p in (folder / "imagesTs").iterdir()) == ["mni_slab03_0000.nii.gz"]
    assert "mni_slab03_0000.nii.gz" not in {p.name for p in (folder / "imagesTr").iterdir()}
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["labels"] == LABELS and meta["numTraining"] == 5

    t1, labels = load_template(2, 0.5)
    seen_z = set()
    for case, (z0, z1) in dataset.slabs.items():
        assert not seen_z & set(range(z0, z1)), "slabs overlap"
        seen_z |= set(range(z0, z1))
        kind = "Ts" if case in dataset.test_cases else "Tr"
        image = read_image(folder / f"images{kind}" / f"{case}_0000.nii.gz")
        label = read_image(folder / f"labels{kind}" / f"{case}.nii.gz")
        assert image.same_grid(label)
        # the slab is the template at the physical position its origin says
        index = np.rint((np.reshape(t1.direction, (3, 3)).T @ (np.subtract(image.origin, t1.origin)))
                        / np.asarray(t1.spacing)).astype(int)[::-1]
        box = tuple(slice(i, i + n) for i, n in zip(index, image.array.shape))
        assert index[0] == z0
        assert np.array_equal(label.array, labels.array[box])
        assert np.allclose(image.array, t1.array[box])
    assert set(np.unique(label.array)) == {0, 1, 2}
    with pytest.raises(UserError, match="already exists"):
        build_dataset(folder, TINY_DATA)


def test_demo_report_numbers_come_from_the_run(tiny_demo):
    summary = json.loads((tiny_demo / "brain_evaluation" / "improved" / "summary.json").read_text())
    report = (tiny_demo / "report.md").read_text()
    assert "not the papers' 1000 epochs" in report
    assert "epochs × iterations per epoch: 1 × 1" in report
    for label, name in demo_brain.LABEL_NAMES.items():
        row = next(line for line in report.splitlines() if line.startswith(f"| {name} ({label}) |"))
        means = summary["mean"][str(label)]
        expected = [format_number(means["Dice"], 3), format_number(means["HD95"], 2), format_number(means["NSD"], 3)]
        assert [cell.strip() for cell in row.strip("|").split("|")][1:] == expected
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (tiny_demo / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.search(r"\| train improved \| \d", report)


def test_demo_overwrite_removes_only_what_the_demo_wrote(tiny_demo, tmp_path):
    """`make demo` passes --overwrite: a user's file in the output folder survives it; every file of the
    earlier run is removed; a demo file the user edited stops it before anything is removed."""
    import shutil

    with pytest.raises(UserError, match="--overwrite"):
        demo_folder.claim_output(tiny_demo, overwrite=False)
    out = tmp_path / "demo_output"
    shutil.copytree(tiny_demo, out)  # keeps modification times, so the manifest still matches
    (out / "my_notes.txt").write_text("keep me")
    report = (out / "report.md").read_bytes()
    (out / "report.md").write_text("my edits")
    demo_files = [p for p in out.rglob("*") if p.is_file() and p.name != "my_notes.txt"]
    assert len(demo_files) > 10
    with pytest.raises(UserError, match="report.md was changed after the demo wrote it"):
        demo_folder.claim_output(out, overwrite=True)
    assert all(p.exists() for p in demo_files)
    (out / "report.md").unlink()
    before = demo_folder.claim_output(out, overwrite=True)
    assert (out / "my_notes.txt").read_text() == "keep me"
    assert [p for p in demo_files if p.exists()] == []
    assert before == {out / "my_notes.txt"} and report
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not made by the demo"):
        demo_folder.claim_output(foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
