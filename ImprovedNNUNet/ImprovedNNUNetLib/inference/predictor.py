"""nnU-Net's predictor with a per-tile progress report and room for extra output channels.

The sliding-window arithmetic (Gaussian weighting, padding, mirroring, half-precision
accumulation) is nnU-Net's own; this subclass only observes it, so predictions stay identical
to ``nnUNetPredictor``.
"""
from __future__ import annotations

import io
from contextlib import contextmanager, redirect_stdout

from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor


class _ChannelCount:
    """Label manager stand-in reporting ``num_segmentation_heads`` output channels.

    nnU-Net sizes the sliding-window accumulator from the label manager; a network that returns
    segmentation logits and distance maps together needs room for both.
    """

    def __init__(self, label_manager, num_channels: int):
        self._label_manager = label_manager
        self.num_segmentation_heads = num_channels

    def __getattr__(self, name):
        return getattr(self._label_manager, name)


class TrackingPredictor(nnUNetPredictor):
    """``nnUNetPredictor`` that calls ``progress(tiles_done, tiles_total)`` after every tile."""

    def __init__(self, device, tile_step_size: float = 0.5, use_mirroring: bool = False):
        with redirect_stdout(io.StringIO()):  # nnU-Net prints a note about CPU devices on every construction
            super().__init__(tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=use_mirroring,
                             perform_everything_on_device=device.type == "cuda", device=device,
                             verbose=False, verbose_preprocessing=False, allow_tqdm=False)
        self._progress = None
        self._passes = 1
        self._done = 0
        self._total = None

    def track(self, progress, passes: int) -> None:
        """Start counting tiles for ``passes`` sliding-window runs over one volume (one per fold)."""
        self._progress, self._passes, self._done, self._total = progress, passes, 0, None

    @contextmanager
    def output_channels(self, network, num_channels: int):
        """Run with ``network`` in place of the model's, accumulating ``num_channels`` outputs per voxel."""
        saved = self.network, self.label_manager
        self.network, self.label_manager = network, _ChannelCount(self.label_manager, num_channels)
        try:
            yield
        finally:
            self.network, self.label_manager = saved

    def _internal_get_sliding_window_slicers(self, image_size):
        slicers = super()._internal_get_sliding_window_slicers(image_size)
        if self._total is None:
            self._total = len(slicers) * self._passes
        return slicers

    def _internal_maybe_mirror_and_predict(self, x):
        prediction = super()._internal_maybe_mirror_and_predict(x)
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, self._total)
        return prediction
