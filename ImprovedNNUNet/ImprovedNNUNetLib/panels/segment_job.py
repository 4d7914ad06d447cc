"""Segmenting volume nodes with a model in a child process, without blocking the caller.

`SegmentJob` checks the inputs against the model, writes them to a temporary folder,
starts `segment_worker` with the same Python interpreter (Slicer's own inside Slicer)
through `process.ChildProcess`, turns the worker's JSON-line events into a progress
fraction and a status text, and finally loads the outputs into the scene: a
segmentation node next to the first input volume and, when asked, one distance-map
volume per label. A GUI polls it from a timer; scripts call `wait()`.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError, describe_os_error
from ImprovedNNUNetLib.core.events import END_STAGES
from ImprovedNNUNetLib.core.imageio import read_image, write_image
from ImprovedNNUNetLib.core.process import ChildProcess, ProcessOutput, python_executable
from ImprovedNNUNetLib.inference.model_folder import open_model_folder
from ImprovedNNUNetLib.panels.scene.hierarchy import place_next_to
from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image, channel_images, show_as_overlay

WORKER_MODULE = "ImprovedNNUNetLib.panels.segment_worker"
WAIT_POLL_S = 0.1


@dataclass
class SegmentResult:
    """Nodes a finished job added to the scene."""

    segmentation: object
    distance_maps: dict = field(default_factory=dict)  # label name -> scalar volume node
    labels: dict = field(default_factory=dict)  # the model's labels, name -> value
    uncertainty: object = None  # scalar volume node of the entropy map (0-1), shown over the slices, when asked


class SegmentJob:
    """One segmentation run of ``volume_nodes`` (one per model channel, in channel order).

    ``folds``: None for all trained folds, or a list of fold numbers / "all". ``device``:
    auto, cpu, cuda, cuda:N or mps. ``tta``: test-time mirroring, None for the device's
    default. ``step``: tile step (fraction of the patch). ``distance_maps``: also load the
    SDM head's maps. ``uncertainty``: also load the entropy map (0 sure - 1 unsure) as an overlay.
    ``output_node``: segmentation node to fill (its segments are
    replaced), or None for a new one named ``"<first volume> segmentation"``.
    ``work_dir``: a new or empty folder that keeps the input and output files (NIfTI),
    or None for a temporary folder removed when the results are loaded.
    Raises `UserError` before starting when the inputs do not fit the model.
    """

    def __init__(self, volume_nodes, model_folder, *, folds=None, device="auto", tta=None, step=0.5,
                 distance_maps=False, output_node=None, work_dir=None, uncertainty=False):
        self.model = open_model_folder(model_folder)
        images = channel_images(list(volume_nodes), dict(enumerate(self.model.channel_names)))
        self.input_volume = volume_nodes[0]
        self.output_node = output_node
        self.stage = "starting"
        self.progress = 0.0
        self.note: str | None = None
        self._outputs: dict | None = None
        self._result: SegmentResult | None = None
        self._error: str | None = None
        self._folder = None if work_dir else tempfile.TemporaryDirectory(prefix="improved-nnunet-segment-")
        work = Path(work_dir) if work_dir else Path(self._folder.name)
        if work.exists() and any(work.iterdir()):
            raise UserError(f"{work} is not empty; choose a new or empty folder for the segmentation files")
        work.mkdir(parents=True, exist_ok=True)
        self.work_dir = work
        request_file = work / "request.json"
        try:  # a full disk or an unwritable work folder: the cause and the fix, not an OSError
            inputs = [str(write_image(image, work / f"case_{i:04d}.nii.gz")) for i, image in enumerate(images)]
            request = {
                "model": str(self.model.path),
                "folds": folds if folds is None else list(folds),
                "device": device,
                "tta": tta,
                "step": step,
                "distance_maps": distance_maps,
                "uncertainty": bool(uncertainty),
                "inputs": inputs,
                "output_dir": str(work / "out"),
            }
            request_file.write_text(json.dumps(request))
        except OSError as exc:
            for written in [request_file, *work.glob("case_*.nii.gz")]:  # the folder was empty before
                written.unlink(missing_ok=True)
            raise UserError(f"the segmentation files could not be written to {work}: {describe_os_error(exc)}") from None
        self.process = ChildProcess.start([python_executable(), "-m", WORKER_MODULE, str(request_file)])

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def output_files(self) -> dict | None:
        """The worker's ``done`` event: ``segmentation`` file and ``distance_maps`` {label name: file}."""
        return self._outputs

    @property
    def log(self) -> list[str]:
        return list(self.process.log)

    def poll(self) -> ProcessOutput:
        """Drain new output (never blocks) and update ``stage``, ``progress`` and ``note``."""
        output = self.process.poll()
        for event in output.events:
            self._apply(event)
        if output.finished and self.stage not in END_STAGES:
            self.stage = "cancelled" if self.process.cancelled else "error"
            if self.stage == "error" and self._error is None:
                self._error = self.process.last_error_line or f"exit status {output.returncode}"
        if output.finished and self.stage == "cancelled":
            self._cleanup()
        return output

    def _apply(self, event: dict) -> None:
        stage = event.get("stage")
        if stage == "predicting" and event.get("total"):
            self.progress = float(event["done"]) / float(event["total"])
        elif stage == "loaded":
            self.note = event.get("note")
        elif stage == "done":
            self.progress = 1.0
            self._outputs = event
        elif stage == "error":
            self._error = event.get("message")
        if stage:
            self.stage = str(stage)

    def request_cancel(self) -> None:
        """Start ending the worker's process tree without waiting (a GUI's Cancel): keep polling;
        the job ends as "cancelled" and the cancel report arrives as a log line."""
        if self.running:
            self.stage = "cancelling"
            self.process.cancel_in_background()

    def cancel(self):
        """End the worker and every process it started, waiting for them; returns the process
        runner's report."""
        report = self.process.cancel()
        self.poll()
        self.stage = "cancelled"
        self._cleanup()
        return report

    def _cleanup(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()

    def wait(self, timeout: float | None = None) -> SegmentResult:
        """Poll until the worker ends, then load its outputs (see `load_result`).

        Raises TimeoutError after ``timeout`` seconds (the worker keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll().finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"segmentation still running after {timeout} s")
            time.sleep(WAIT_POLL_S)
        return self.load_result()

    def load_result(self) -> SegmentResult:
        """Add the finished job's outputs to the scene; `UserError` when it failed or was cancelled."""
        if self._result is not None:
            return self._result
        if self.stage == "cancelled":
            raise UserError("the segmentation was cancelled; press Apply to run it again")
        if self._outputs is None:
            if self.running:
                raise UserError("the segmentation is still running; wait for it to finish")
            self._cleanup()
            raise UserError(f"the segmentation failed: {self._error}")
        if self.input_volume.GetScene() is None:
            self._cleanup()
            raise UserError(f"the input volume '{self.input_volume.GetName()}' left the scene while it was being "
                            "segmented; load it again and press Apply")
        try:
            label_image = read_image(self._outputs["segmentation"])
            output_node = self.output_node
            if output_node is not None and output_node.GetScene() is None:
                output_node = None  # the chosen output was deleted meanwhile: make a new one
            segmentation = add_prediction_segmentation(
                label_image, self.model.labels, self.input_volume,
                f"{self.input_volume.GetName()} segmentation", output_node)
            distance_maps = {}
            for name, path in self._outputs.get("distance_maps", {}).items():
                node = add_volume_from_image(self.input_volume.GetScene(), read_image(path),
                                             f"{segmentation.GetName()} distance {name}")
                place_next_to(node, self.input_volume)
                distance_maps[name] = node
            uncertainty = None
            if self._outputs.get("uncertainty"):
                uncertainty = add_volume_from_image(self.input_volume.GetScene(),
                                                    read_image(self._outputs["uncertainty"]),
                                                    f"{segmentation.GetName()} uncertainty")
                place_next_to(uncertainty, self.input_volume)
                show_as_overlay(uncertainty)
        finally:
            self._cleanup()
        self._result = SegmentResult(segmentation, distance_maps, self.model.labels, uncertainty)
        return self._result
