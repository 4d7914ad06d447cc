"""A training process's start: PyTorch threads as nnU-Net sets them, and the seed of ``train --seed``."""
from __future__ import annotations

from ImprovedNNUNetTrainingLib.engine.environment import cores_present


def seed_everything(seed: int) -> None:
    """``--seed``: Python's, NumPy's and PyTorch's generators (all devices) seeded before the network is built and
    the first batch drawn. nnU-Net's background augmentation workers and cuDNN's kernels stay nondeterministic by
    design, so two runs of one seed still differ on a GPU; the seed makes a repeat reproducible where it can be."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def configure_threads(device) -> None:
    """PyTorch threads as nnU-Net's own entry point sets them: all cores on CPU, one with a GPU."""
    import torch

    if device.type == "cpu":
        torch.set_num_threads(cores_present())
    else:
        torch.set_num_threads(1)
