"""Loading a trained model folder's network through the registry (no nnU-Net name lookup)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.errors import UserError

from .registry import trainer_class_by_name


@dataclass
class TrainedNetwork:
    """A network restored from ``fold_X/<checkpoint>`` with what inference needs around it."""

    network: object  # torch.nn.Module in eval mode, deep supervision off
    trainer_class: type
    plans_manager: object
    configuration_manager: object
    configuration_name: str
    dataset_json: dict
    checkpoint: dict


def load_trained_network(model_folder: str | Path, fold: int | str = 0,
                         checkpoint_name: str = "checkpoint_final.pth", device: str = "cpu") -> TrainedNetwork:
    """Build the trainer class's inference network (``enable_deep_supervision=False``) and load its weights.

    ``model_folder`` is ``.../DatasetNNN_Name/<Trainer>__<Plans>__<configuration>`` with
    dataset.json and plans.json. UserError when files are missing or the trainer is not in the registry.
    """
    import torch
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    model_folder = Path(model_folder)
    path = model_folder / f"fold_{fold}" / checkpoint_name
    for needed in (model_folder / "dataset.json", model_folder / "plans.json", path):
        if not needed.is_file():
            raise UserError(f"{needed} not found; pass an nnU-Net model folder with a trained fold {fold}")
    checkpoint = torch.load(path, map_location=torch.device(device), weights_only=False)
    trainer_class = trainer_class_by_name(checkpoint["trainer_name"])
    if trainer_class is None:
        raise UserError(f"{path} was trained with {checkpoint['trainer_name']}, which is not one of this project's "
                        "trainers; load it with nnU-Net's own predictor")
    dataset_json = json.loads((model_folder / "dataset.json").read_text())
    plans_manager = PlansManager(json.loads((model_folder / "plans.json").read_text()))
    configuration_name = checkpoint["init_args"]["configuration"]
    configuration_manager = plans_manager.get_configuration(configuration_name)
    network = trainer_class.build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads,
        enable_deep_supervision=False)
    network.load_state_dict(checkpoint["network_weights"])
    network.to(torch.device(device)).eval()
    return TrainedNetwork(network, trainer_class, plans_manager, configuration_manager, configuration_name,
                          dataset_json, checkpoint)
