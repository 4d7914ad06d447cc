"""The evaluation step of `make demo` (Scripts/demo.py) on slicerio's chest segmentation."""
import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "Scripts"
DEMO = SCRIPTS / "demo.py"


@pytest.fixture(scope="module")
def demo():
    sys.path.insert(0, str(SCRIPTS))  # as `python Scripts/demo.py` has it: the demo's sibling modules
    spec = importlib.util.spec_from_file_location("demo_script", DEMO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_evaluation_step_writes_table_and_maps(demo, tmp_path, capsys):
    out = tmp_path / "demo_output"
    assert demo.main(["--out", str(out), "--steps", "evaluation"]) == 0
    results = out / "evaluation"
    summary = json.loads((results / "summary.json").read_text())
    metrics = summary["metric_per_case"][0]["metrics"]
    assert metrics["4"]["status"] == "prediction empty" and metrics["4"]["HD95"] is None
    assert 0.5 < metrics["3"]["Dice"] < 1.0  # the moved thoracic spine
    assert len(list(csv.DictReader((results / "metrics.csv").open()))) == 7
    assert {p.name for p in (results / "maps").iterdir()} == {
        "Segmentation_FP.nii.gz", "Segmentation_FN.nii.gz", "Segmentation_MSF.nii.gz"
    }
    assert "lumbar vertebral column" in capsys.readouterr().out
    # a second run replaces its own output only when asked to
    with pytest.raises(SystemExit, match="--overwrite"):
        demo.main(["--out", str(out), "--steps", "evaluation"])
    assert (results / "summary.json").is_file()
    assert demo.main(["--out", str(out), "--steps", "evaluation", "--overwrite"]) == 0
    assert (results / "summary.json").is_file()


def test_bad_brain_options_are_refused_before_anything_is_written(demo, tmp_path):
    out = tmp_path / "demo_output"
    with pytest.raises(SystemExit, match="unknown variant or trainer 'fancy': use one of the variants baseline, loss"):
        demo.main(["--out", str(out), "--variants", "baseline", "fancy"])
    with pytest.raises(SystemExit, match="--epochs and --iterations must be at least 1"):
        demo.main(["--out", str(out), "--epochs", "0"])
    assert not out.exists()


def test_foreign_output_folder_is_not_replaced(demo, tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(SystemExit, match="not made by the demo"):
        demo.main(["--out", str(tmp_path)])
    assert (tmp_path / "mine.txt").read_text() == "user data"


def test_the_report_explains_why_unchanged_ribs_and_cervical_spine_lose_dice(demo):
    """What the report says about the chest step holds on the data: the voxels the ribs and the cervical spine
    lose went to the grown lungs (and the moved thoracic spine), nowhere else."""
    import numpy as np
    import slicerio

    from demo_report import chest_section

    segmentation = slicerio.read_segmentation(str(Path(slicerio.__file__).parent / "data" / "Segmentation.seg.nrrd"))
    values = {s["name"]: s["labelValue"] for s in segmentation["segments"]}
    voxels = segmentation["voxels"]
    perturbed = demo.perturb_chest_segmentation(voxels, values)
    takers = {values[n] for n in ("right lung", "left lung", "thoracic vertebral column")}
    for name in ("ribs", "cervical vertebral column"):
        lost = (voxels == values[name]) & (perturbed != values[name])
        assert lost.any() and set(np.unique(perturbed[lost]).tolist()) <= takers
    summary = {"labels": {"1": "ribs"}, "metric_per_case": [{"metrics": {"1": {
        "Dice": 0.9, "HD95": 1.0, "NSD": 0.9, "status": "ok"}}}]}
    assert "Ribs and the cervical spine lose Dice too" in "\n".join(chest_section(summary))
