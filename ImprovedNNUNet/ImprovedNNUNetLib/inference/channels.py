"""Turning the caller's input channels into the (c, z, y, x) array nnU-Net expects."""
from __future__ import annotations

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image, check_finite

IDENTITY_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _describe(channel_names: list[str]) -> str:
    return f"{len(channel_names)} channel(s) ({', '.join(channel_names)})"


def stack_channels(channels, channel_names: list[str], spacing=None, origin=None, direction=None):
    """Validate the input against the model's channels and stack it.

    ``channels`` is one ``Image`` or 3-D array per model channel (a single one is accepted for
    one-channel models). Arrays are (z, y, x) and need ``spacing`` (x, y, z, mm); ``origin`` and
    ``direction`` default to the identity geometry. ``Image`` inputs carry their own geometry and
    must all share one grid.

    Returns ``(array (c, z, y, x) float32, template Image)`` where the template holds the geometry
    every output gets.
    """
    if isinstance(channels, (Image, np.ndarray)):
        channels = [channels]
    channels = list(channels)
    if any(isinstance(c, np.ndarray) and c.ndim == 4 for c in channels) or any(
            isinstance(c, Image) and c.array.ndim == 4 for c in channels):
        raise UserError(f"4-D input given; the model expects {_describe(channel_names)}, each a separate 3-D "
                        f"volume: split the 4-D image into one 3-D volume per channel")
    if len(channels) != len(channel_names):
        raise UserError(f"{len(channels)} input channel(s) given but the model expects {_describe(channel_names)}; "
                        f"give one 3-D volume per channel in this order")
    images = [_as_image(c, i, spacing, origin, direction) for i, c in enumerate(channels)]
    first = images[0]
    for index, image in enumerate(images[1:], start=1):
        if not first.same_grid(image):
            raise UserError(f"channel {index} ({channel_names[index]}) is not on the grid of channel 0 "
                            f"({channel_names[0]}): shape {image.array.shape} vs {first.array.shape}, spacing "
                            f"{image.spacing} vs {first.spacing}; resample all channels to one grid first")
    for index, image in enumerate(images):
        check_finite(image.array, f"input channel {index} ({channel_names[index]})")
        if any(not np.isfinite(v) or v <= 0 for v in image.spacing):
            raise UserError(f"input channel {index} ({channel_names[index]}) has the voxel spacing "
                            f"{', '.join(f'{v:g}' for v in image.spacing)} mm; a spacing must be positive")
    array = np.stack([np.asarray(image.array, dtype=np.float32) for image in images])
    return array, Image(np.zeros(0), first.spacing, first.origin, first.direction)


def _as_image(channel, index: int, spacing, origin, direction) -> Image:
    if isinstance(channel, Image):
        image = channel
    elif isinstance(channel, np.ndarray):
        if spacing is None:
            raise UserError("arrays were given without spacing; pass spacing=(x, y, z) in mm, or give Image objects")
        image = Image(channel, _triple(spacing, "spacing"), _triple((0.0, 0.0, 0.0) if origin is None else origin, "origin"),
                      tuple(float(v) for v in (IDENTITY_DIRECTION if direction is None else direction)))
    else:
        raise UserError(f"channel {index} is a {type(channel).__name__}; give a numpy array or an Image")
    if image.array.ndim != 3:
        raise UserError(f"channel {index} has {image.array.ndim} dimensions; a 3-D (z, y, x) volume is expected")
    if min(image.array.shape) < 1:
        raise UserError(f"channel {index} is empty (shape {image.array.shape}); give a non-empty volume")
    if not np.all(np.isfinite(image.spacing)) or min(image.spacing) <= 0:
        raise UserError(f"channel {index} has spacing {image.spacing}; spacing must be positive (mm)")
    if len(image.direction) != 9:
        raise UserError(f"channel {index} has a direction of {len(image.direction)} values; give 9 (3x3 matrix)")
    return image


def _triple(values, what: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in values)
    if len(values) != 3:
        raise UserError(f"{what} has {len(values)} values; give 3 (x, y, z)")
    return values
