"""MSF region and two-stage loss; SDM targets, head and loss term (Wang and Zhang; He et al.)."""
import itertools

import numpy as np
import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from ImprovedNNUNetLib.inference.distance import SegmentationWithDistance
from ImprovedNNUNetTrainingLib.trainers.msf import misseg_region
from ImprovedNNUNetTrainingLib.trainers.signed_distance import signed_distance_map, signed_distance_targets


def volume(shape=(9, 9, 9)):
    return torch.zeros((1, 1, *shape), dtype=torch.long)


def test_msf_region_single_error_is_a_radius_2_ball():
    reference, prediction = volume(), volume()
    prediction[0, 0, 4, 4, 4] = 1
    region = misseg_region(prediction, reference, labels=(1, 2), radius=2)[0, 0]
    assert region.sum() == 33  # lattice points with x²+y²+z² ≤ 4
    assert region[4, 4, 2] and region[4, 6, 4] and region[5, 5, 4]
    assert not region[4, 6, 5] and not region[6, 5, 4]  # distance² = 5


def test_msf_region_is_union_of_dilated_xor_per_label():
    reference, prediction = volume((5, 16, 16)), volume((5, 16, 16))
    reference[0, 0, 2, 2:6, 2:6] = 1
    prediction[0, 0, 2, 2:6, 3:7] = 1       # label 1 shifted by one voxel: errors at x=2 and x=6
    reference[0, 0, 2, 11:14, 11:14] = 2
    prediction[0, 0, 2, 11:14, 11:14] = 2   # label 2 correct: no region there
    prediction[0, 0, 2, 12, 12] = 1         # a 2-voxel where label 1 was predicted
    region = misseg_region(prediction, reference, labels=(1, 2), radius=2)[0, 0].numpy()

    from scipy import ndimage
    offsets = np.array(list(itertools.product(range(-2, 3), repeat=3)))
    ball = (np.sum(offsets ** 2, axis=1) <= 4).reshape(5, 5, 5)
    expected = np.zeros_like(region)
    for label in (1, 2):
        xor = (prediction[0, 0].numpy() == label) ^ (reference[0, 0].numpy() == label)
        expected |= ndimage.binary_dilation(xor, structure=ball)
    np.testing.assert_array_equal(region, expected)
    assert region[2, 3, 0] and region[2, 3, 8] and region[2, 12, 14]
    assert region[0, 3, 2] and not region[2, 9, 4] and not region[2, 3, 10]


def test_msf_term_absent_in_stage_1_and_present_in_stage_2(make_trainer):
    trainer = make_trainer("msf", epochs=4)
    trainer.enable_deep_supervision = False  # one output, so the loss can be recomputed by hand below
    trainer.initialize()
    active = []
    for epoch in range(4):
        trainer.current_epoch = epoch
        trainer.on_train_epoch_start()
        active.append(trainer.loss.active)
    assert active == [False, False, True, True]

    torch.manual_seed(0)
    patch = trainer.configuration_manager.patch_size
    target = torch.randint(0, 8, (1, 1, *patch))
    output = torch.randn(1, 8, *patch)
    loss = trainer.loss
    loss.active = False
    stage1 = loss(output, target).item()
    loss.active = True
    stage2 = loss(output, target).item()

    region = misseg_region(output.argmax(1, keepdim=True), target, range(1, 8), 2)[0, 0]
    stock = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                           weight_ce=1, weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss)
    inside = stock(output[:, :, region][..., None, None], target[:, :, region][..., None, None]).item()
    plain = stock(output, target).item()
    assert stage1 == pytest.approx(plain, rel=1e-5)
    assert stage2 == pytest.approx(plain + trainer.msf_weight * inside, rel=1e-5)


def brute_force_sdm(mask, spacing):
    """Signed distance by comparing every voxel pair (independent of scipy's transform)."""
    points = np.argwhere(np.ones_like(mask)) * np.asarray(spacing)
    inside, outside = points[mask.ravel()], points[~mask.ravel()]
    to_out = np.sqrt(((points[:, None] - outside[None]) ** 2).sum(-1)).min(1)
    to_in = np.sqrt(((points[:, None] - inside[None]) ** 2).sum(-1)).min(1)
    dist_in = np.where(mask.ravel(), to_out, 0)
    dist_out = np.where(mask.ravel(), 0, to_in)
    return (dist_out / dist_out.max() - dist_in / dist_in.max()).reshape(mask.shape)


def test_signed_distance_map_sign_boundary_range_and_spacing():
    mask = np.zeros((7, 12, 10), dtype=bool)
    mask[2:6, 3:10, 2:7] = True
    spacing = (3.0, 1.0, 0.7)
    sdm = signed_distance_map(mask, spacing)
    from scipy import ndimage
    boundary = mask & ~ndimage.binary_erosion(mask, border_value=1)
    assert np.all(sdm[boundary] == 0)
    assert np.all(sdm[mask & ~boundary] < 0) and np.all(sdm[~mask] > 0)
    assert sdm.min() == pytest.approx(-1) and sdm.max() == pytest.approx(1)
    expected = brute_force_sdm(mask, spacing)
    expected[boundary] = 0
    np.testing.assert_allclose(sdm, expected, atol=1e-6)
    isotropic = signed_distance_map(mask, (1.0, 1.0, 1.0))
    assert not np.allclose(isotropic, sdm), "the spacing must change the distances"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_signed_distance_map_of_blobs_touching_the_array_edge_matches_brute_force(seed):
    """Scattered components, some cut by the array edge: the inside distance is computed on the
    mask's bounding box, which must not change it."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    mask = ndimage.binary_dilation(rng.random((6, 11, 9)) > 0.93, iterations=1)
    mask[:, :2, :] = False  # keep some background along one edge
    spacing = (2.5, 1.0, 0.8)
    expected = brute_force_sdm(mask, spacing)
    expected[mask & ~ndimage.binary_erosion(mask, border_value=1)] = 0
    np.testing.assert_allclose(signed_distance_map(mask, spacing), expected, atol=1e-6)


def test_signed_distance_targets_per_label_and_empty():
    segmentation = np.zeros((2, 1, 4, 6, 6), dtype=np.int16)
    segmentation[0, 0, 1:3, 1:4, 1:4] = 2
    targets = signed_distance_targets(segmentation, labels=(1, 2), spacing=(2.0, 1.0, 1.0))
    assert targets.shape == (2, 2, 4, 6, 6) and targets.dtype == np.float32
    assert np.all(targets[:, 0] == 0) and np.all(targets[1] == 0)  # empty label / empty case
    np.testing.assert_array_equal(targets[0, 1], signed_distance_map(segmentation[0, 0] == 2, (2.0, 1.0, 1.0)))


def test_sdm_head_shapes_loss_and_plain_inference_output(make_trainer):
    from ImprovedNNUNetTrainingLib.trainers.sdm import split_distance

    trainer = make_trainer("sdm")
    trainer.initialize()
    network, patch = trainer.network, trainer.configuration_manager.patch_size
    x = torch.randn(2, 1, *patch)
    network.train()
    outputs = network(x)
    assert isinstance(outputs, (list, tuple)) and outputs[0].shape == (2, 8 + 7, *patch)  # logits, then the maps
    segmentation, distance = split_distance(outputs, 7)
    assert segmentation[0].shape == (2, 8, *patch) and distance.shape == (2, 7, *patch)
    assert distance.abs().max() <= 1
    assert [o.shape for o in segmentation[1:]] == [o.shape for o in outputs[1:]]

    target = [torch.randint(0, 8, (2, 1, *o.shape[2:])) for o in segmentation]
    seg_only = trainer.loss.segmentation_loss(segmentation, target)
    sdm = torch.from_numpy(signed_distance_targets(target[0].numpy(), range(1, 8), trainer.configuration_manager.spacing))
    expected = seg_only + trainer.sdm_weight * torch.mean((distance - sdm) ** 2)
    assert trainer.loss(outputs, target).item() == pytest.approx(expected.item(), rel=1e-6)

    network.eval()
    with torch.no_grad():  # nnU-Net's validation step: evaluation mode, the segmentation loss alone
        validation = network(x)
        assert validation[0].shape == (2, 8, *patch)
        assert trainer.loss(validation, target).item() == pytest.approx(
            trainer.loss.segmentation_loss(validation, target).item(), rel=1e-6)
    trainer.set_deep_supervision_enabled(False)
    with torch.no_grad():
        plain = network(x)
        assert isinstance(plain, torch.Tensor) and plain.shape == (2, 8, *patch)
        both = SegmentationWithDistance(network)(x)  # the product's inference wrapper
    assert both.shape == (2, 8 + 7, *patch)
    torch.testing.assert_close(both[:, :8], plain)
    assert both[:, 8:].abs().max() <= 1
    assert not network.sdm_head.always_on


def test_sdm_network_compiles_whole_with_the_head(make_trainer):
    """The head is part of the traced forward pass (no graph break, no hook side effect), so nnU-Net's
    torch.compile decision applies to sdm as to every variant; compiled outputs equal eager ones in
    training mode (with the maps) and in evaluation mode (without)."""
    trainer = make_trainer("sdm")
    trainer.initialize()
    assert trainer._do_i_compile() == make_trainer("baseline")._do_i_compile()
    assert "_do_i_compile" not in type(trainer).__dict__
    network, patch = trainer.network, trainer.configuration_manager.patch_size
    x = torch.randn(2, 1, *patch)
    compiled = torch.compile(network, backend="aot_eager", fullgraph=True)
    for training in (True, False):
        network.train(training)
        with torch.no_grad():
            eager, traced = network(x), compiled(x)
        eager = eager if isinstance(eager, torch.Tensor) else eager[0]
        traced = traced if isinstance(traced, torch.Tensor) else traced[0]
        assert eager.shape[1] == (8 + 7 if training else 8)
        torch.testing.assert_close(traced, eager, rtol=1e-5, atol=1e-5)


def test_sdm_batches_carry_distance_targets_made_by_the_data_loader(make_trainer, monkeypatch):
    """nnU-Net's real training pipeline of the sdm trainer ends with the distance targets of each
    sample (computed in the data-loading workers); the loss uses them as it would compute them."""
    from ImprovedNNUNetTrainingLib.engine.runner import stop_data_loaders
    from ImprovedNNUNetTrainingLib.trainers.sdm import DistanceTargetTransform

    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    trainer = make_trainer("sdm")
    trainer.on_train_start()
    try:
        assert isinstance(trainer.dataloader_train.data_loader.transforms.transforms[-1], DistanceTargetTransform)
        batch = next(trainer.dataloader_train)
        val_batch = next(trainer.dataloader_val)
    finally:
        stop_data_loaders(trainer)
    target, spacing = batch["target"], trainer.configuration_manager.spacing
    outputs_count = len(val_batch["target"])  # validation batches carry the segmentation targets only
    assert len(target) == outputs_count + 1
    expected = signed_distance_targets(target[0].numpy(), range(1, 8), spacing)
    assert target[-1].dtype == torch.float32 and target[-1].shape == expected.shape
    np.testing.assert_array_equal(target[-1].numpy(), expected)

    network = trainer.network
    network.train()
    outputs = network(batch["data"])
    carried = trainer.loss(outputs, target)
    computed = trainer.loss(outputs, target[:-1])
    assert carried.item() == pytest.approx(computed.item(), rel=1e-6)


def test_sdm_checkpoint_gives_distance_maps(trained_model, chest_volume):
    """Through the product's loader: one map per foreground label, in [-1, 1], not all zero."""
    from ImprovedNNUNetLib.inference import load_model

    result = load_model(trained_model("sdm"), folds=[0], device="cpu").predict([chest_volume], sdm=True)
    maps = np.stack([image.array for image in result.distance_maps.values()])
    assert maps.shape == (7, *chest_volume.array.shape)
    assert np.abs(maps).max() <= 1 and np.count_nonzero(maps) > 0


def test_distance_maps_refuse_models_without_head(trained_model, chest_volume):
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.inference import load_model

    with pytest.raises(UserError, match="sdm variant"):
        load_model(trained_model("baseline"), folds=[0], device="cpu").predict([chest_volume], sdm=True)


def scipy_signed_distance(mask: np.ndarray, spacing) -> np.ndarray:
    """The definition as first implemented with scipy's transform (float64), the reference for the
    faster ``edt`` (CPU) and torch (training device) implementations."""
    from scipy import ndimage

    if not mask.any():
        return np.zeros(mask.shape)
    if mask.all():
        return np.full(mask.shape, -1.0)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    sdm = outside / outside.max() - inside / inside.max()
    sdm[mask & ~ndimage.binary_erosion(mask, border_value=1)] = 0.0
    return sdm


def label_batch(seed: int, shape) -> np.ndarray:
    """Two samples of smooth blobs with labels 1 and 2 touching each other and the array edge; in the
    second sample label 3 fills the array (so 1 and 2 are empty there)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((2, 1, *shape)), (0, 0, 2, 2, 2))
    batch = np.zeros((2, 1, *shape), dtype=np.int16)
    batch[field > np.quantile(field, 0.7)] = 1
    batch[field > np.quantile(field, 0.9)] = 2
    batch[1] = 3
    return batch


@pytest.mark.parametrize("shape,spacing", [((12, 30, 26), (2.5, 0.7, 0.9)), ((1, 40, 33), (3.0, 1.0, 1.0)),
                                           ((24, 24, 24), (1.0, 1.0, 1.0))])
@pytest.mark.parametrize("implementation", ["edt", "torch"])
def test_distance_targets_equal_the_scipy_definition(shape, spacing, implementation):
    """Anisotropic, multi-label (labels touching), empty (labels 1, 2 in sample 2, label 4 everywhere)
    and full (label 3 in sample 2) masks: within 1e-5 of the scipy definition."""
    from ImprovedNNUNetTrainingLib.trainers.signed_distance_torch import signed_distance_targets as on_device

    batch, labels = label_batch(sum(shape), shape), (1, 2, 3, 4)
    if implementation == "edt":
        maps = signed_distance_targets(batch, labels, spacing)
    else:
        maps = on_device(torch.from_numpy(batch), labels, spacing).numpy()
    assert maps.shape == (2, 4, *shape) and maps.dtype == np.float32
    for sample in range(2):
        for index, label in enumerate(labels):
            expected = scipy_signed_distance(batch[sample, 0] == label, spacing)
            np.testing.assert_allclose(maps[sample, index], expected, atol=1e-5, rtol=0)
    assert np.all(maps[1, 2] == -1) and np.all(maps[1, 0] == 0) and np.all(maps[:, 3] == 0)


def test_sdm_loss_computes_missing_targets_like_the_workers(make_trainer):
    """A batch without the workers' targets (GPU training, where the loss makes them on the device)
    gives the same loss as one that carries them."""
    from ImprovedNNUNetTrainingLib.trainers.sdm import device_targets
    from ImprovedNNUNetTrainingLib.trainers.signed_distance_torch import signed_distance_targets as on_device

    trainer = make_trainer("sdm")
    trainer.initialize()
    network, patch, spacing = trainer.network, trainer.configuration_manager.patch_size, trainer.configuration_manager.spacing
    network.train()
    outputs = network(torch.randn(2, 1, *patch))
    target = [torch.randint(0, 8, (2, 1, *o.shape[2:])) for o in outputs]
    carried = torch.from_numpy(signed_distance_targets(target[0].numpy(), range(1, 8), spacing))
    torch.testing.assert_close(on_device(target[0], range(1, 8), spacing), carried, rtol=0, atol=1e-5)
    torch.testing.assert_close(device_targets(target[0], range(1, 8), spacing), carried)
    assert trainer.loss(outputs, [*target, carried]).item() == pytest.approx(trainer.loss(outputs, target).item(),
                                                                              rel=1e-6)
