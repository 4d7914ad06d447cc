"""nnU-Net's predictor with a per-tile progress report, room for extra output channels, and the
test-time mirrors of a tile in one forward pass on a GPU.

The sliding-window arithmetic (Gaussian weighting, padding, mirroring, half-precision
accumulation) is nnU-Net's own. On CUDA the mirrored copies of a tile go through the network as
one batch instead of one pass each (nnU-Net's networks normalise per sample, so each copy's output
is the same function of its input) and are summed back in nnU-Net's order; on the CPU the
predictor is nnU-Net's unchanged.
"""
from __future__ import annotations

import io
import itertools
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
    """``nnUNetPredictor`` that calls ``progress(tiles_done, tiles_total)`` after every tile.

    ``batch_mirrors``: run a tile's test-time mirrors as one batch (default: on with CUDA)."""

    def __init__(self, device, tile_step_size: float = 0.5, use_mirroring: bool = False):
        with redirect_stdout(io.StringIO()):  # nnU-Net prints a note about CPU devices on every construction
            super().__init__(tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=use_mirroring,
                             perform_everything_on_device=device.type == "cuda", device=device,
                             verbose=False, verbose_preprocessing=False, allow_tqdm=False)
        self._progress = None
        self._passes = 1
        self._done = 0
        self._total = None
        self.batch_mirrors = device.type == "cuda"

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
        if self.batch_mirrors and self.use_mirroring and self.allowed_mirroring_axes and x.shape[0] == 1:
            prediction = self._mirrors_in_one_batch(x)
        else:
            prediction = super()._internal_maybe_mirror_and_predict(x)
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, self._total)
        return prediction

    def _mirrors_in_one_batch(self, x):
        """nnU-Net's mirroring average (the tile, then every combination of the allowed axes, in its order),
        with all copies of the tile through the network in one forward pass."""
        import torch

        axes = [axis + 2 for axis in self.allowed_mirroring_axes]
        assert max(self.allowed_mirroring_axes) <= x.ndim - 3, "mirror_axes does not match the dimension of the input"
        combinations = [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]
        outputs = self.network(torch.cat([x, *(torch.flip(x, c) for c in combinations)]))
        prediction = outputs[:1].clone()
        for index, flipped in enumerate(combinations, start=1):
            prediction += torch.flip(outputs[index:index + 1], flipped)
        prediction /= len(combinations) + 1
        return prediction
