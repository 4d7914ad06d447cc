"""Prediction segmentation, metrics table + CSV and error segmentation on a real slicer-core scene.

The prediction here is slicerio's reference shifted by one voxel with one structure removed,
so every metric, the "prediction empty" status and both error types occur; the model-made
prediction is covered in test_slicer_segment_job.py.
"""
import csv
import math

import numpy as np
import pytest

from fixtures.slicer_scene import assert_errors_match_engine, assert_table_matches_engine, slicerio_reference
from ImprovedNNUNetLib import evaluation
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.panels.scene.evaluation import evaluate_nodes, metrics_table, show_errors
from ImprovedNNUNetLib.panels.scene.labelmaps import LABEL_VALUE_TAG, export_label_image, segment_infos, segment_tag
from ImprovedNNUNetLib.panels.scene.metrics_table import table_columns, write_table_csv
from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
from ImprovedNNUNetLib.panels.scene.volumes import image_from_volume

LABELS = {"background": 0, "ribs": 1, "right lung": 2, "left lung": 3, "tissue": 4, "spleen": 5}
TERMINOLOGY_TAG = "TerminologyEntry"


@pytest.fixture(scope="module")
def reference_image(slicerio_data) -> Image:
    return slicerio_reference(slicerio_data, LABELS)


@pytest.fixture
def prediction(ct_scene, reference_image):
    """(prediction node, its label image): reference shifted one voxel along y, left lung dropped."""
    array = np.roll(reference_image.array, 1, axis=1)
    array[array == LABELS["left lung"]] = 0
    image = reference_image.with_array(array)
    return add_prediction_segmentation(image, LABELS, ct_scene.ct, "CT segmentation"), image


def test_segments_named_coloured_tagged_and_valued(prediction):
    node, _ = prediction
    infos = segment_infos(node)
    assert [(i.name, i.value) for i in infos] == [(n, v) for n, v in LABELS.items() if v]
    segmentation = node.GetSegmentation()
    colors = [tuple(round(c, 4) for c in segmentation.GetSegment(i.segment_id).GetColor()) for i in infos]
    assert len(set(colors)) == len(colors)
    tags = {i.name: segment_tag(segmentation.GetSegment(i.segment_id), TERMINOLOGY_TAG) for i in infos}
    assert "SCT^39607008^Lung~SCT^24028007^Right" in tags["right lung"]
    assert "SCT^78961009^Spleen" in tags["spleen"]
    assert all(segment_tag(segmentation.GetSegment(i.segment_id), LABEL_VALUE_TAG) == str(i.value) for i in infos)


def test_segmentation_voxels_and_geometry_are_the_label_image(ct_scene, prediction):
    node, image = prediction
    exported = export_label_image(node, segment_infos(node))
    assert exported.same_grid(image_from_volume(ct_scene.ct))
    np.testing.assert_array_equal(exported.array, image.array)
    empty = segment_infos(node)[2]  # left lung, dropped from the prediction
    assert empty.name == "left lung"
    alone = export_label_image(node, [empty])
    assert alone.same_grid(exported) and not alone.array.any()


def test_segmentation_sits_in_the_input_study(ct_scene, prediction):
    node, _ = prediction
    hierarchy = ct_scene.hierarchy
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == ct_scene.study


def test_filling_an_existing_node_replaces_its_segments(ct_scene, prediction, reference_image):
    node, _ = prediction
    refilled = add_prediction_segmentation(reference_image, {"background": 0, "tissue": 4}, ct_scene.ct, "x", node)
    assert refilled is node and node.GetName() == "CT segmentation"
    assert [i.name for i in segment_infos(node)] == ["tissue"]


def test_table_matches_the_evaluation_engine_cell_by_cell(ct_scene, prediction, reference_image):
    node, image = prediction
    result = evaluate_nodes(node, ct_scene.segmentation, tau_per_label={"ribs": 2.0, "tissue": 1.5})
    table = metrics_table(result, ct_scene.scene, "CT segmentation metrics")
    matched = {n: v for n, v in LABELS.items() if v and n != "spleen"}
    expected = evaluation.compute_metrics(image, reference_image, matched, {1: 2.0, 4: 1.5, 2: 1.0, 3: 1.0})
    assert_table_matches_engine(table, expected, matched)
    columns = dict(table_columns(table))
    assert columns["Status"][2] == "prediction empty" and math.isinf(columns["HD95 (mm)"][2])
    assert table.GetColumnUnitLabel("HD95 (mm)") == "mm" and table.GetColumnUnitLabel("Reference volume (ml)") == "ml"
    assert "model labels with no reference segment: spleen" in result.notes
    assert set(result.as_dict()) == set(matched) and result.as_dict()["ribs"]["tau_mm"] == 2.0


def test_csv_export_equals_the_table_and_never_overwrites(ct_scene, prediction, tmp_path):
    node, _ = prediction
    table = metrics_table(evaluate_nodes(node, ct_scene.segmentation), ct_scene.scene, "metrics")
    path = write_table_csv(table, tmp_path / "metrics.csv")
    with path.open() as handle:
        rows = list(csv.reader(handle))
    columns = table_columns(table)
    assert rows[0] == [header for header, _ in columns]
    for index, (header, cells) in enumerate(columns):
        as_text = [str(cell) for cell in cells]
        assert [row[index] for row in rows[1:]] == as_text, header
    with pytest.raises(UserError, match="metrics.csv exists"):
        write_table_csv(table, path)


def test_error_segmentation_matches_engine_maps_voxel_by_voxel(ct_scene, prediction, reference_image):
    node, image = prediction
    errors = show_errors(node, ct_scene.segmentation)
    assert errors.GetName() == "CT segmentation errors"
    matched = {n: v for n, v in LABELS.items() if v and n != "spleen"}
    maps = evaluation.error_maps(image, reference_image, matched)
    assert maps.fp(1).any() and maps.fn(3).any() and not maps.fp(3).any()
    assert_errors_match_engine(errors, maps, matched, reference_image)
    hierarchy = ct_scene.hierarchy
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(errors)) == ct_scene.study
    assert show_errors(node, ct_scene.segmentation) is errors  # refilled, not duplicated
    assert errors.GetSegmentation().GetNumberOfSegments() == 2 * len(matched)


def test_tolerance_for_a_label_that_is_not_evaluated_is_refused(ct_scene, prediction):
    node, _ = prediction
    with pytest.raises(UserError, match="NSD tolerance given for spleen, which is not an evaluated label"):
        evaluate_nodes(node, ct_scene.segmentation, tau_per_label={"spleen": 2.0})
