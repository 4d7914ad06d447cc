"""A trained model loaded for in-memory prediction."""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.core.trainers import resolve_trainer_class
from ImprovedNNUNetLib.inference.channels import stack_channels
from ImprovedNNUNetLib.inference.device import choose_device, default_mirroring
from ImprovedNNUNetLib.inference.distance import DISTANCE_FILL, SegmentationWithDistance, distance_head
from ImprovedNNUNetLib.inference.model_folder import (
    DEFAULT_CHECKPOINT,
    ModelFolder,
    load_checkpoint,
    open_model_folder,
    select_folds,
)
from ImprovedNNUNetLib.inference.npz import case_properties
from ImprovedNNUNetLib.inference.outputs import PredictionResult, foreground_names, maps_to_input_grid, named_images, output_names
from ImprovedNNUNetLib.inference.predictor import TrackingPredictor


class LoadedModel:
    """A model folder's network with the weights of the chosen folds, ready to segment volumes.

    Attributes: ``channel_names`` (input channels in order), ``labels`` (name -> value, from
    dataset.json), ``folds``, ``trainer_name``, ``configuration``, ``device``, ``device_note``
    (why the CPU is used, or None), ``has_distance_head`` (SDM models).
    """

    def __init__(self, folder: ModelFolder, folds: list, checkpoints: list[dict], device, device_note):
        from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        first = checkpoints[0]
        self.folder = folder
        self.folds = list(folds)
        self.trainer_name = first["trainer_name"]
        self.configuration = first["init_args"]["configuration"]
        for fold, checkpoint in zip(folds[1:], checkpoints[1:]):
            if (checkpoint["trainer_name"], checkpoint["init_args"]["configuration"]) != (
                    self.trainer_name, self.configuration):
                raise UserError(f"fold {fold} of {folder.path} was trained with {checkpoint['trainer_name']} "
                                f"({checkpoint['init_args']['configuration']}), fold {folds[0]} with "
                                f"{self.trainer_name} ({self.configuration}); choose folds of one model")
        self.device, self.device_note = device, device_note
        self.plans_manager = PlansManager(folder.plans)
        try:
            self.configuration_manager = self.plans_manager.get_configuration(self.configuration)
        except (KeyError, RuntimeError):
            raise UserError(f"{folder.path / 'plans.json'} has no configuration {self.configuration!r} that the "
                            f"checkpoints were trained with; copy the plans.json of this model") from None
        self.label_manager = self.plans_manager.get_label_manager(folder.dataset_json)
        self.trainer_class = resolve_trainer_class(self.trainer_name)
        num_inputs = determine_num_input_channels(self.plans_manager, self.configuration_manager,
                                                  folder.dataset_json)
        self.network = _build_network(self.trainer_class, self.plans_manager, self.configuration_manager,
                                      num_inputs, self.label_manager.num_segmentation_heads)
        self._weights = [checkpoint["network_weights"] for checkpoint in checkpoints]
        self._load_weights(0)
        self.network.eval()
        self.predictor = TrackingPredictor(device)
        self.predictor.manual_initialization(self.network, self.plans_manager, self.configuration_manager,
                                             self._weights, folder.dataset_json, self.trainer_name,
                                             first.get("inference_allowed_mirroring_axes"))

    @property
    def channel_names(self) -> list[str]:
        return self.folder.channel_names

    @property
    def labels(self) -> dict:
        return self.folder.labels

    @property
    def has_distance_head(self) -> bool:
        return distance_head(self.network) is not None

    def _load_weights(self, index: int) -> None:
        try:
            self.network.load_state_dict(self._weights[index])
        except RuntimeError as exc:
            raise UserError(f"fold {self.folds[index]} weights do not fit the network that {self.trainer_name} "
                            f"builds from plans.json ({str(exc).splitlines()[0]}); the checkpoint and plans.json "
                            f"come from different models") from None

    def predict(self, channels, *, spacing=None, origin=None, direction=None, probabilities: bool = False,
                sdm: bool = False, tta: bool | None = None, step: float = 0.5, progress=None,
                uncertainty: bool = False) -> PredictionResult:
        """Segment one case held in memory.

        ``channels``: one ``Image`` or 3-D (z, y, x) array per entry of ``channel_names``; arrays need
        ``spacing`` (x, y, z mm) and optionally ``origin`` and ``direction``. ``probabilities``: also return
        per-output probability maps. ``sdm``: also return the signed-distance maps (SDM models only).
        ``tta``: test-time mirroring; ``None`` means on with CUDA, off otherwise. ``step``: tile step as a
        fraction of the patch size (0 < step <= 1; smaller is slower and smoother). ``progress``:
        ``callable(tiles_done, tiles_total)`` called after every tile over all folds.
        Several folds are ensembled as nnU-Net's predictor does: by the mean of their logits.
        ``uncertainty``: also return the entropy map, with several folds their disagreement map, and the case's
        review score (:mod:`.uncertainty`).
        """
        if not 0 < step <= 1:
            raise UserError(f"tile step {step} is out of range; use a value in (0, 1], e.g. 0.5")
        if sdm and not self.has_distance_head:
            raise UserError(f"the model (trainer {self.trainer_name}) has no distance-map head; "
                            f"leave out the signed-distance output or use a model trained with the sdm variant")
        data, template = stack_channels(channels, self.channel_names, spacing, origin, direction)
        preprocessed, properties = self._preprocess(data, template)
        self.predictor.tile_step_size = step
        self.predictor.use_mirroring = default_mirroring(self.device) if tta is None else bool(tta)
        self.predictor.track(progress, len(self._weights))
        segmentation, mean_probabilities, mean_distance, disagreement = self._segment(
            preprocessed, properties, probabilities or uncertainty, sdm, uncertainty)
        result = PredictionResult(template.with_array(segmentation))
        if uncertainty:
            from ImprovedNNUNetLib.inference.uncertainty import add_uncertainty

            add_uncertainty(result, mean_probabilities, disagreement, template, self.label_manager.has_regions)
        if mean_probabilities is not None:
            result.probabilities = named_images(mean_probabilities,
                                                output_names(self.label_manager, self.labels), template)
            result.probability_array = mean_probabilities
            result.nnunet_properties = case_properties(template, properties)
        if mean_distance is not None:
            result.distance_maps = named_images(mean_distance,
                                                foreground_names(self.label_manager, self.labels), template)
        return result

    def _preprocess(self, data: np.ndarray, template: Image):
        import torch

        properties = {"spacing": [float(v) for v in template.spacing[::-1]]}  # nnU-Net wants (z, y, x)
        preprocessor = self.configuration_manager.preprocessor_class(verbose=False)
        preprocessed, _, properties = preprocessor.run_case_npy(data, None, properties, self.plans_manager,
                                                                self.configuration_manager,
                                                                self.folder.dataset_json)
        return torch.from_numpy(preprocessed), properties

    def _segment(self, preprocessed, properties: dict, probabilities: bool, sdm: bool, uncertainty: bool = False):
        """Label map, probabilities (when asked), mean distance maps (when asked) and, for ``uncertainty`` with
        several folds, the folds' disagreement map, on the input grid.

        Several folds are ensembled as ``nnUNetPredictor.predict_logits_from_preprocessed_data`` does: the
        folds' logits are summed on the preprocessed grid and divided by the number of folds, and that mean
        is converted once (resampled, softmax/sigmoid, argmax). Distance maps are averaged the same way.
        """
        from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

        from ImprovedNNUNetLib.inference.uncertainty import disagreement_of, fold_vote

        logit_sum = distance_sum = None
        votes = []
        for index in range(len(self._weights)):
            self._load_weights(index)
            logits, distance = self._sliding_window(preprocessed, sdm)
            if uncertainty and len(self._weights) > 1:
                votes.append(fold_vote(logits, self.label_manager.has_regions))
            logit_sum = logits if logit_sum is None else logit_sum + logits
            if sdm:
                distance_sum = distance if distance_sum is None else distance_sum + distance
        folds = len(self._weights)
        if folds > 1:
            logit_sum /= folds
        converted = convert_predicted_logits_to_segmentation_with_correct_shape(
            logit_sum, self.plans_manager, self.configuration_manager, self.label_manager, properties,
            return_probabilities=probabilities)
        segmentation, mean_probabilities = converted if probabilities else (converted, None)
        if mean_probabilities is not None:
            mean_probabilities = np.asarray(mean_probabilities, dtype=np.float32)
        mean_distance = None
        if distance_sum is not None:
            mean_distance = maps_to_input_grid(distance_sum / folds, properties, self.plans_manager,
                                               self.configuration_manager, DISTANCE_FILL)
        disagreement = None
        if votes:
            fraction = disagreement_of(votes, fold_vote(logit_sum, self.label_manager.has_regions))
            disagreement = maps_to_input_grid(fraction[None], properties, self.plans_manager,
                                              self.configuration_manager, 0.0)[0]
        return segmentation, mean_probabilities, mean_distance, disagreement

    def _sliding_window(self, preprocessed, sdm: bool):
        """nnU-Net's sliding window over the preprocessed case: (logits, distance maps or None) on the CPU."""
        heads = self.label_manager.num_segmentation_heads
        with _torch_threads():
            if not sdm:
                return self.predictor.predict_sliding_window_return_logits(preprocessed).cpu(), None
            wrapped = SegmentationWithDistance(self.network)
            maps = heads if self.label_manager.has_regions else len(self.label_manager.foreground_labels)
            with self.predictor.output_channels(wrapped, heads + maps):
                both = self.predictor.predict_sliding_window_return_logits(preprocessed).cpu()
            return both[:heads], both[heads:].float()


@contextmanager
def _torch_threads():
    """Use at most nnU-Net's process count of CPU threads, as ``nnUNetPredictor`` does."""
    import torch
    from nnunetv2.configuration import default_num_processes

    before = torch.get_num_threads()
    torch.set_num_threads(min(default_num_processes, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build_network(trainer_class, plans_manager, configuration_manager, num_inputs: int, num_outputs: int):
    """The trainer's inference network (deep supervision off), for either signature nnU-Net has used."""
    build = trainer_class.build_network_architecture
    if "plans_manager" in inspect.signature(build).parameters:
        return build(plans_manager, configuration_manager, num_inputs, num_outputs, enable_deep_supervision=False)
    return build(configuration_manager.network_arch_class_name, configuration_manager.network_arch_init_kwargs,
                 configuration_manager.network_arch_init_kwargs_req_import, num_inputs, num_outputs,
                 enable_deep_supervision=False)


def load_model(model_folder: str | Path, folds=None, device: str = "auto",
               checkpoint_name: str = DEFAULT_CHECKPOINT) -> LoadedModel:
    """Load a trained nnU-Net model folder for prediction.

    ``model_folder``: the folder holding dataset.json, plans.json and fold_N/ (e.g.
    ``nnUNet_results/Dataset001_X/nnUNetTrainer__nnUNetPlans__3d_fullres``). ``folds``: None for all
    trained folds, an int, ``"all"`` (the fold_all model) or a list of them. ``device``: ``auto``,
    ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Raises ``UserError`` for a missing file, an unreadable
    checkpoint, a fold that does not exist or a trainer that cannot be found.
    """
    folder = open_model_folder(model_folder, checkpoint_name)
    chosen = select_folds(folder, folds)
    torch_device, note = choose_device(device)
    checkpoints = [_inference_part(load_checkpoint(folder.checkpoint_path(fold))) for fold in chosen]
    for fold, checkpoint in zip(chosen, checkpoints):
        check_recorded_files(folder, fold, checkpoint)
    return LoadedModel(folder, chosen, checkpoints, torch_device, note)


def _normalised(value):
    """JSON's view of a value (tuples are lists, numpy numbers plain), so recorded and file values compare."""
    import json

    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def first_difference(recorded, given, where: str = "") -> str | None:
    """The first key path where two JSON values differ, with both values; None when equal."""
    if isinstance(recorded, dict) and isinstance(given, dict):
        for key in list(recorded) + [k for k in given if k not in recorded]:
            if key not in given or key not in recorded:
                return f"{where}{key}: {'missing' if key not in given else 'not recorded'} in the model's file"
            found = first_difference(recorded[key], given[key], f"{where}{key}.")
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(given, list) and len(recorded) == len(given):
        for index, (a, b) in enumerate(zip(recorded, given)):
            found = first_difference(a, b, f"{where}[{index}].")
            if found:
                return found
        return None
    return None if recorded == given else f"{where.rstrip('.')}: trained with {recorded!r}, the file says {given!r}"


def check_recorded_files(folder: ModelFolder, fold, checkpoint: dict) -> None:
    """UserError when the model folder's plans.json or dataset.json (labels, channels) differ from what the
    checkpoint recorded at training: an edited copy would change the spacing, patch or labels of every
    prediction without a word. (The folder's side was read from JSON; only the recorded side needs
    normalising.)"""
    recorded = checkpoint.get("init_args") or {}
    if "plans" in recorded:
        difference = first_difference(_normalised(recorded["plans"]), folder.plans)
        if difference:
            raise UserError(f"{folder.path / 'plans.json'} differs from the plans fold {fold} was trained with "
                            f"({difference}); restore the model's own plans.json")
    if "dataset_json" in recorded:
        for key in ("labels", "channel_names", "regions_class_order"):
            difference = first_difference(_normalised(recorded["dataset_json"].get(key)), folder.dataset_json.get(key),
                                          f"{key}.")
            if difference:
                raise UserError(f"{folder.path / 'dataset.json'} differs from the dataset fold {fold} was trained "
                                f"with ({difference}); restore the model's own dataset.json")


def _inference_part(checkpoint: dict) -> dict:
    """What inference needs of a checkpoint (the optimizer state, often most of it, is dropped)."""
    keep = ("network_weights", "trainer_name", "init_args", "inference_allowed_mirroring_axes")
    return {key: checkpoint[key] for key in keep if key in checkpoint}
