"""Segmenting volume nodes on an `improved-nnunet serve` server, with the face of
:class:`~.segment_job.SegmentJob` (``poll``, ``running``, ``stage``, ``progress``, ``note``, ``request_cancel``,
``cancel``, ``wait``, ``load_result``), so the panel and scripts drive either the same way.

The volumes are written as NIfTI and uploaded; the server segments them with a model installed there or with
the model a finished training job of this key made; the result is downloaded (checked) and added to the scene
as :class:`SegmentJob` adds its own: a segmentation next to the first input volume, named by the model's labels,
and, when asked, the uncertainty (entropy) map over the slice views.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image, write_image
from ImprovedNNUNetLib.core.process import ProcessOutput
from ImprovedNNUNetLib.panels.scene.hierarchy import place_next_to
from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image, image_from_volume, show_as_overlay
from ImprovedNNUNetLib.panels.segment_job import SegmentResult

ENDED = ("done", "failed", "cancelled", "interrupted")


class ServerModel:
    """What the panel shows of the model: where it is, and its labels."""

    def __init__(self, path: str, labels: dict):
        self.path, self.labels = path, labels


class RemoteSegmentJob:
    def __init__(self, volume_nodes, client, model: str | None = None, training_job: int | None = None,
                 folds=None, tta=None, output_node=None, uncertainty: bool = False):
        if not volume_nodes or volume_nodes[0] is None:
            raise UserError("choose the input volume first")
        self.client = client
        self.input_volume = volume_nodes[0]
        self.output_node = output_node
        with tempfile.TemporaryDirectory() as scratch:
            files = []
            for index, node in enumerate(volume_nodes):
                files.append(Path(scratch) / f"channel_{index:04d}.nii.gz")
                write_image(image_from_volume(node), files[-1])
            job = client.segment(model, files, folds=folds, tta=tta, training_job=training_job, uncertainty=uncertainty)
        self.job_id = job["id"]
        self.model = ServerModel(f"{job['spec']['model']} on {client.url}", job["spec"].get("labels") or {})
        self.stage, self.progress, self.note, self._message = job["state"], 0.0, "queued on the server", ""
        self._result = None

    @property
    def running(self) -> bool:
        return self.stage not in ENDED

    def poll(self) -> ProcessOutput:
        output = ProcessOutput()
        if not self.running:
            output.finished = True
            return output
        try:
            job = self.client.job(self.job_id)
        except UserError as exc:
            self.note = f"the server does not answer; trying again ({exc})"
            return output
        self.stage, self._message = job["state"], job["message"]
        self.note = {"queued": "queued on the server", "running": "segmenting on the server"}.get(self.stage, "")
        if not self.running:
            self.progress = 1.0 if self.stage == "done" else self.progress
            output.log.append(f"server job {self.job_id}: {self.stage} {self._message}".rstrip())
            output.finished = True
        return output

    def request_cancel(self) -> None:
        if self.running:
            self.client.cancel(self.job_id)

    def cancel(self) -> None:
        self.request_cancel()
        self.wait()

    def wait(self, timeout: float | None = None) -> SegmentResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"server job {self.job_id} still {self.stage} after {timeout} s")
            self.poll()
            time.sleep(0.5)
        return self.load_result() if self.stage == "done" else None

    def load_result(self) -> SegmentResult:
        """Download the segmentation and add it to the scene; `UserError` when the job did not succeed."""
        if self._result is not None:
            return self._result
        if self.stage in ("cancelled", "interrupted"):
            raise UserError("the segmentation was cancelled; press Apply to run it again")
        if self.stage != "done":
            raise UserError(f"the segmentation failed on the server: {self._message or self.stage}")
        if self.input_volume.GetScene() is None:
            raise UserError(f"the input volume '{self.input_volume.GetName()}' left the scene while it was being "
                            "segmented; load it again and press Apply")
        with tempfile.TemporaryDirectory() as scratch:
            files = self.client.download(self.job_id, Path(scratch) / "result")
            label_file = next((f for f in files if f.name.startswith("case.")), None)
            if label_file is None:
                raise UserError(f"server job {self.job_id} has no segmentation among its results")
            output_node = self.output_node if self.output_node is not None and self.output_node.GetScene() else None
            segmentation = add_prediction_segmentation(read_image(label_file), self.model.labels, self.input_volume,
                                                       f"{self.input_volume.GetName()} segmentation", output_node)
            entropy_file = next((f for f in files if f.name.startswith("case_uncertainty.")
                                 and not f.name.endswith(".json")), None)
            uncertainty = None
            if entropy_file is not None:  # asked for: the entropy map over the slices, as a local segmentation's
                uncertainty = add_volume_from_image(self.input_volume.GetScene(), read_image(entropy_file),
                                                    f"{segmentation.GetName()} uncertainty")
                place_next_to(uncertainty, self.input_volume)
                show_as_overlay(uncertainty)
        self._result = SegmentResult(segmentation, {}, self.model.labels, uncertainty)
        return self._result
