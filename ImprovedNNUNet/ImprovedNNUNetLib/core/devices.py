"""Device names as users write them, read the same way for training, segmentation and studies (no torch here)."""
from __future__ import annotations

import re

from ImprovedNNUNetLib.core.errors import UserError

# What the panels offer; the command line also takes cuda:N (one GPU of several).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def device_name(name) -> str:
    """``name`` normalised (stripped, lower case; empty means ``auto``); a one-line ``UserError`` for anything
    other than auto, cpu, cuda, cuda:N or mps."""
    text = str(name or "auto").strip().lower()
    if not _NAME.match(text):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps")
    return text


def gpu_index(name) -> int | None:
    """N of ``cuda:N``, None for every other device name."""
    text = device_name(name)
    return int(text.partition(":")[2]) if text.startswith("cuda:") else None
