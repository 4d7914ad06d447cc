"""The slicerio CT segmented in a child process by a tiny model trained by the session fixture,
loaded into a real slicer-core scene, evaluated against Segmentation.seg.nrrd; cancel; failures."""
import time

import numpy as np
import psutil
import pytest

from fixtures.slicer_scene import (
    CTScene,
    assert_errors_match_engine,
    assert_table_matches_engine,
    ct_block,
    slicerio_reference,
)
from ImprovedNNUNetLib import evaluation
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image
from ImprovedNNUNetLib.inference import open_model_folder
from ImprovedNNUNetLib.panels.scene.evaluation import evaluate_nodes, metrics_table, show_errors
from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image, image_from_volume
from ImprovedNNUNetLib.panels.segment_job import SegmentJob

TIMEOUT_S = 300


@pytest.fixture(scope="module")
def model_folder(trained_model):
    return trained_model("baseline", (0,))


@pytest.fixture(scope="module")
def segmented(model_folder, slicerio_data, tmp_path_factory):
    """One run on the whole CT (tile step 1 keeps it short), polled the way the panel's timer does."""
    scene = CTScene(slicerio_data)
    job = SegmentJob([scene.ct], model_folder, folds=[0], device="cpu", step=1.0,
                     work_dir=tmp_path_factory.mktemp("segment") / "files")
    polls_while_running = 0
    deadline = time.monotonic() + TIMEOUT_S
    while job.running and time.monotonic() < deadline:
        job.poll()
        polls_while_running += 1
        time.sleep(0.1)
    result = job.wait(timeout=30)
    return scene, job, result, polls_while_running


def test_progress_arrives_as_events_while_the_caller_keeps_running(segmented):
    _, job, _, polls = segmented
    stages = [event["stage"] for event in job.process.events]
    assert stages[:2] == ["loading", "loaded"] and stages[-1] == "done"
    ticks = [(e["done"], e["total"]) for e in job.process.events if e["stage"] == "predicting"]
    assert ticks and [d for d, _ in ticks] == list(range(1, len(ticks) + 1)) and ticks[-1][0] == ticks[-1][1]
    assert job.progress == 1.0 and job.stage == "done"
    assert polls > 1  # the caller was never blocked while the child worked


def test_segmentation_node_is_the_model_output_on_the_ct_grid(segmented, model_folder, slicerio_data):
    scene, job, result, _ = segmented
    labels = open_model_folder(model_folder).labels
    assert [(i.name, i.value) for i in segment_infos(result.segmentation)] == [
        (n, v) for n, v in labels.items() if v]
    written = read_image(job.output_files["segmentation"])
    ct = read_image(slicerio_data / "CTChest4.nrrd")
    assert written.same_grid(ct)
    exported = export_label_image(result.segmentation, segment_infos(result.segmentation))
    assert exported.same_grid(ct)
    np.testing.assert_array_equal(exported.array, written.array)
    assert len(np.unique(written.array)) > 1  # the tiny model found some structure
    hierarchy = scene.hierarchy
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(result.segmentation)) == scene.study


def test_metrics_and_errors_against_the_evaluation_engine(segmented, slicerio_data):
    scene, job, result, _ = segmented
    labels = {n: v for n, v in result.labels.items() if v}
    evaluated = evaluate_nodes(result.segmentation, scene.segmentation, tau_mm=2.0)
    assert evaluated.notes == []  # all 7 names of the reference matched the model's labels
    table = metrics_table(evaluated, scene.scene, "metrics")
    prediction = read_image(job.output_files["segmentation"])
    reference = slicerio_reference(slicerio_data, labels)
    assert_table_matches_engine(table, evaluation.compute_metrics(prediction, reference, labels, 2.0), labels)
    errors = show_errors(result.segmentation, scene.segmentation)
    assert errors.GetName() == f"{result.segmentation.GetName()} errors"
    assert_errors_match_engine(errors, evaluation.error_maps(prediction, reference, labels), labels, reference)


def _wait_for_event(job, deadline_s: float = 60):
    deadline = time.monotonic() + deadline_s
    while not job.process.events and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.05)
    assert job.process.events, "the worker sent no event"


def test_cancel_ends_the_whole_process_tree(ct_scene, model_folder):
    job = SegmentJob([ct_scene.ct], model_folder, folds=[0], device="cpu", step=1.0)
    _wait_for_event(job)
    root = psutil.Process(job.process.pid)
    tree = [root, *root.children(recursive=True)]
    job.cancel()
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == [] and job.stage == "cancelled"
    with pytest.raises(UserError, match="cancelled; press Apply to run it again"):
        job.load_result()


def test_worker_failure_comes_back_as_a_user_error(ct_scene, model_folder):
    job = SegmentJob([ct_scene.ct], model_folder, folds=[0], device="cpu", distance_maps=True)
    with pytest.raises(UserError, match="the segmentation failed: .*has no distance-map head"):
        job.wait(timeout=TIMEOUT_S)
    assert job.stage == "error" and job.process.returncode == 2


def test_inputs_that_do_not_fit_are_refused_before_anything_starts(ct_scene, model_folder, tmp_path):
    with pytest.raises(UserError, match=r"expects 1 input volume\(s\) \(CT\), 2 selected"):
        SegmentJob([ct_scene.ct, ct_scene.ct], model_folder)
    (tmp_path / "kept.txt").write_text("user data")
    with pytest.raises(UserError, match="is not empty; choose a new or empty folder"):
        SegmentJob([ct_scene.ct], model_folder, work_dir=tmp_path)
    assert (tmp_path / "kept.txt").read_text() == "user data"
    with pytest.raises(UserError, match="does not exist"):
        SegmentJob([ct_scene.ct], tmp_path / "no model here")


def test_distance_maps_of_an_sdm_model_become_volumes(ct_scene, trained_model, slicerio_data, tmp_path):
    block = add_volume_from_image(ct_scene.scene, ct_block(slicerio_data), "CT block")
    job = SegmentJob([block], trained_model("sdm", (0,)), folds=[0], device="cpu", step=1.0, distance_maps=True,
                     work_dir=tmp_path / "files")
    result = job.wait(timeout=TIMEOUT_S)
    foreground = [n for n, v in result.labels.items() if v]
    assert list(result.distance_maps) == foreground
    grid = image_from_volume(block)
    for name, node in result.distance_maps.items():
        assert node.GetName() == f"CT block segmentation distance {name}"
        image = image_from_volume(node)
        assert image.same_grid(grid)
        written = read_image(job.output_files["distance_maps"][name])
        np.testing.assert_array_equal(image.array, written.array)
        assert -1.0 <= image.array.min() <= image.array.max() <= 1.0
        hierarchy = ct_scene.hierarchy
        assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == hierarchy.GetSceneItemID()
