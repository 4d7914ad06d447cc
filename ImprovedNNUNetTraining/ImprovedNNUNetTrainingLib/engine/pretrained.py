"""Fine-tuning: start a training from the weights of a checkpoint made elsewhere (nnU-Net's
``-pretrained_weights``).

The rule is nnU-Net's ``load_pretrained_weights``: every tensor is taken from the checkpoint by name and
must have the same shape, except the segmentation layers (``.seg_layers.``, whose outputs follow the new
dataset's labels); the variants' own extra heads (``sdm_head.``) start fresh too, so a plain nnU-Net
model can be fine-tuned into the sdm variant. A mismatch is one line naming the first tensor that does not fit.
"""
from __future__ import annotations

from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

FRESH_PARTS = (".seg_layers.", "sdm_head.")


def check_pretrained_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"--pretrained-weights {path}: no such file; give a checkpoint .pth written by nnU-Net "
                        "(e.g. fold_0/checkpoint_final.pth)")
    return path


def load_pretrained_weights(network, path: str | Path) -> int:
    """Copy the matching tensors of checkpoint ``path`` into ``network``; returns how many were copied."""
    import torch

    from ImprovedNNUNetTrainingLib.trainers.network_utils import bare_network

    path = check_pretrained_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged or foreign file raises many kinds of errors
        raise UserError(f"{path} cannot be read as a PyTorch checkpoint ({type(exc).__name__}); give an nnU-Net "
                        "checkpoint .pth") from None
    weights = checkpoint.get("network_weights") if isinstance(checkpoint, dict) else None
    if weights is None:
        raise UserError(f"{path} has no 'network_weights'; give a checkpoint written by nnU-Net or this project")
    module = bare_network(network)
    own = module.state_dict()
    for key, value in own.items():
        if any(part in key for part in FRESH_PARTS):
            continue
        if key not in weights:
            raise UserError(f"{path} does not fit this network: it has no weights for {key}; fine-tune with the "
                            "plans and configuration the checkpoint was trained with")
        if tuple(weights[key].shape) != tuple(value.shape):
            raise UserError(f"{path} does not fit this network: {key} has shape {tuple(weights[key].shape)} there and "
                            f"{tuple(value.shape)} here; use the same plans, configuration and variant architecture")
    taken = {key: weights[key] for key in own if key in weights and not any(part in key for part in FRESH_PARTS)}
    own.update(taken)
    module.load_state_dict(own)
    return len(taken)
