"""Training jobs as the panel runs them: real `improved-nnunet train` child processes on the tiny
prepared chest dataset (CPU, 2 iterations per epoch), their progress events turned into table
and plot chart nodes of a real slicer-core scene, cancel and resume through the same path,
and `compare` on the two variants trained this way."""
import json
import time

import pytest

from ImprovedNNUNetTrainingLib.analysis.compare import compare_runs
from ImprovedNNUNetTrainingLib.engine.progress import read_events
from ImprovedNNUNetTrainingLib.engine.run_checks import fold_status as fold_state
from ImprovedNNUNetTrainingLib.panels.training_job import TrainingJob
from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest

SCHEDULE = dict(iterations_per_epoch=2, validation_iterations_per_epoch=1, device="cpu")
JOB_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def job_results(tiny_dataset, tmp_path_factory):
    """A results folder of this module's own, so other tests' trained models stay untouched."""
    folder = tmp_path_factory.mktemp("job_results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("nnUNet_results", str(folder))
        mp.setenv("nnUNet_n_proc_DA", "0")  # no augmentation worker processes in the children
        mp.setenv("nnUNet_def_n_proc", "1")  # one export worker for the final validation
        yield folder


@pytest.fixture(scope="module")
def loss_job(tiny_dataset, job_results):
    """The loss variant with a changed Dice weight, trained to the end (2 epochs) with final validation."""
    import slicer

    request = TrainingRequest(tiny_dataset.name, variant="loss", folds=[0], epochs=2,
                              hyperparameters={"dice_weight": 2.0}, **SCHEDULE)
    job = TrainingJob(request, slicer.vtkMRMLScene())
    statuses, lines = [], []

    def on_update(job, update):
        statuses.append((job.status.fraction, job.status.progress_text()))
        lines.extend(update.log)

    job.start().wait(JOB_TIMEOUT_S, on_update=on_update)
    return job, statuses, lines


@pytest.fixture(scope="module")
def resumed_job(tiny_dataset, job_results):
    """The baseline variant cancelled after its first epoch, then resumed to the end (3 epochs)."""
    import slicer

    job = TrainingJob(TrainingRequest(tiny_dataset.name, variant="baseline", folds=[0], epochs=3, **SCHEDULE),
                      slicer.vtkMRMLScene())
    job.start()
    while job.running and job.curves["0"].table.GetNumberOfRows() == 0:
        job.poll()
        time.sleep(0.2)
    assert job.running, job.status.message
    job.cancel()
    cancelled = dict(state=job.status.state, rows=job.curves["0"].table.GetNumberOfRows(),
                     fold_state=fold_state(job.request.fold_folder(0)), report=job.process.cancel_report,
                     last_event=read_events(job.request.fold_folder(0) / "progress.jsonl")[-1])
    job.resume().wait(JOB_TIMEOUT_S)
    return job, cancelled


def test_training_job_turns_progress_events_into_curve_nodes(loss_job):
    job, statuses, lines = loss_job
    assert job.status.state == "done", job.status.message + "\n" + "\n".join(job.log[-20:])
    assert job.status.fraction == 1.0
    fractions = [fraction for fraction, _ in statuses]
    assert fractions == sorted(fractions) and any(0 < f < 1 for f in fractions)  # grows through training
    assert any("epoch 2/2" in text and "iteration" in text for _, text in statuses)
    assert lines[0].startswith("--- train fold 0: improved-nnunet train Dataset987_TinyChest --variant loss")
    assert "[training] starting at epoch 1 of 2; training on CPU" in lines and any("Epoch time" in line for line in lines)

    curves = job.curves["0"]
    assert list(curves.values("epoch")) == [0, 1]
    assert all(loss > 0 for loss in curves.values("train_loss"))
    assert all(0 <= dice <= 1 for dice in curves.values("pseudo_dice"))
    assert curves.charts["loss"].GetNumberOfPlotSeriesNodes() == 2

    fold = job.request.fold_folder(0)
    assert (fold / "checkpoint_final.pth").is_file() and list((fold / "validation").glob("*.nii.gz"))
    assert [e["stage"] for e in read_events(fold / "progress.jsonl")][-2:] == ["validation", "done"]
    settings = json.loads((fold / "variant_settings.json").read_text())
    assert settings["variant"] == "loss" and settings["loss"]["dice_weight"] == 2.0
    assert job.model_folder() == fold.parent and fold.parent.name == "nnUNetTrainerLoss__nnUNetPlans__3d_fullres"
    assert job.finished_folds() == ["0"]


def test_cancel_stops_the_process_tree_and_resume_continues(resumed_job):
    job, cancelled = resumed_job
    assert cancelled["state"] == "cancelled" and cancelled["rows"] >= 1
    assert cancelled["report"].survivors == []
    assert cancelled["fold_state"] == "partial" and cancelled["last_event"]["stage"] == "cancelled"

    assert job.status.state == "done", job.status.message + "\n" + "\n".join(job.log[-20:])
    assert job.steps[-1].arguments[-1] == "--continue"
    assert any("resumed from" in line for line in job.log)
    assert list(job.curves["0"].values("epoch")) == list(range(3))
    assert fold_state(job.request.fold_folder(0)) == "done"


def test_compare_two_variants_trained_by_jobs(loss_job, resumed_job, tiny_dataset):
    summaries = compare_runs(tiny_dataset.name)
    assert {s.variant for s in summaries} == {"loss", "baseline"}
    for summary in summaries:
        assert summary.fold == "0" and len(summary.labels) == 7
        measured = [label for label in summary.labels if label.cases]
        assert measured and all(0 <= label.dice.mean <= 1 and 0 <= label.nsd.mean <= 1 for label in measured)
