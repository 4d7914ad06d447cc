"""Folders evaluated by several worker processes: same numbers and order as one process, maps written,
a bad case stops the run with its one-line message (real files, real process pool)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures.evaluation import BLOB_SPACING, perturbed, random_blobs
from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image, write_image
from ImprovedNNUNetLib.evaluation.runner import evaluate

CASES = [f"case_{i:02d}" for i in (3, 1, 7, 0, 5, 2)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    for seed, case in enumerate(CASES):
        ref = random_blobs((20, 32, 28), 3, seed)
        for name, array in (("ref", ref), ("pred", perturbed(ref, seed))):
            write_image(Image(array, BLOB_SPACING[::-1]), root / name / f"{case}.nii.gz")
    return root


def test_two_jobs_give_the_numbers_and_order_of_one(folders, tmp_path):
    one = evaluate(folders / "pred", folders / "ref", out_dir=tmp_path / "one", maps=True, jobs=1)
    two = evaluate(folders / "pred", folders / "ref", out_dir=tmp_path / "two", maps=True, jobs=2)
    assert [c.case_id for c in two] == [c.case_id for c in one] == sorted(CASES)
    for a, b in zip(one, two):
        assert json.dumps(a.metrics.to_dict(), sort_keys=True) == json.dumps(b.metrics.to_dict(), sort_keys=True)
    assert (tmp_path / "one" / "summary.json").read_text().replace("/one/", "/") == \
        (tmp_path / "two" / "summary.json").read_text().replace("/two/", "/")
    assert sorted(p.name for p in (tmp_path / "two" / "maps").iterdir()) == \
        sorted(p.name for p in (tmp_path / "one" / "maps").iterdir())


def test_a_bad_case_in_a_worker_stops_the_run_with_its_message(folders, tmp_path, capsys):
    import shutil

    pred = tmp_path / "pred"
    shutil.copytree(folders / "pred", pred)
    write_image(Image(np.full((20, 32, 28), 0.5, np.float32), BLOB_SPACING[::-1]), pred / "case_05.nii.gz",
                overwrite=True)
    with pytest.raises(UserError, match="non-integer values"):
        evaluate(pred, folders / "ref", jobs=2)
    assert main(["evaluate", str(pred), str(folders / "ref"), "--jobs", "2", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "case_05.nii.gz: has non-integer values" in error
    assert not (tmp_path / "out" / "summary.json").exists()
