"""Choosing the compute device for inference."""
from __future__ import annotations

from ImprovedNNUNetLib.core.devices import device_name
from ImprovedNNUNetLib.core.errors import UserError

CPU_NOTE = "no CUDA GPU available: running on the CPU, which is much slower; test-time mirroring is off by default"


def choose_device(device: str = "auto"):
    """``(torch.device, note)``: ``auto`` takes CUDA when present, else the CPU with a note saying so.

    ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are taken as given; asking for a device that is not
    present raises a ``UserError``.
    """
    import torch

    name = device_name(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), None
        return torch.device("cpu"), CPU_NOTE
    chosen = torch.device(name)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for but no CUDA GPU is available; use --device cpu or auto")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise UserError(f"device {device!r} does not exist (this machine has {torch.cuda.device_count()} "
                            f"CUDA device(s)); choose cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    elif chosen.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {device!r} asked for but Apple MPS is not available; use --device cpu or auto")
    return chosen, None


def default_mirroring(device) -> bool:
    """Test-time mirroring costs up to 8x the compute: on by default only on a GPU."""
    return device.type == "cuda"
