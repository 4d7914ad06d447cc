"""Loss-side numbers of the variants, read from the losses nnU-Net trainers really build."""
from fractions import Fraction

import numpy as np
import pytest
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from ImprovedNNUNetTrainingLib.trainers.network_utils import compound_loss, segmentation_loss


def with_stages(n_stages):
    """Plans edit: an n-stage network (n-1 deep-supervision outputs) that still fits the 8×32×32 patch."""
    def edit(config):
        arch = config["architecture"]["arch_kwargs"]
        arch.update(n_stages=n_stages, features_per_stage=[4] * n_stages,
                    kernel_sizes=[[1, 3, 3]] * n_stages, strides=[[1, 1, 1]] + [[1, 2, 2]] * 2 + [[1, 1, 1]] * (n_stages - 3),
                    n_conv_per_stage=[1] * n_stages, n_conv_per_stage_decoder=[1] * (n_stages - 1))
    return edit


@pytest.mark.parametrize("variant,dice,ce", [("baseline", 1, 1), ("loss", 1.5, 0.5), ("improved", 1.5, 0.5),
                                             ("deepsup", 1, 1), ("msf", 1, 1)])
def test_compound_loss_weights(make_trainer, variant, dice, ce):
    inner = compound_loss(make_trainer(variant)._build_loss())
    assert isinstance(inner, DC_and_CE_loss)
    assert (inner.weight_dice, inner.weight_ce) == (dice, ce)


@pytest.mark.parametrize("n_outputs,expected", [
    (3, [Fraction(4, 5), Fraction(1, 5), 0]),
    (5, [Fraction(64, 85), Fraction(16, 85), Fraction(4, 85), Fraction(1, 85), 0]),
    (6, [Fraction(256, 341), Fraction(64, 341), Fraction(16, 341), Fraction(4, 341), Fraction(1, 341), 0]),
])
@pytest.mark.parametrize("variant", ["deepsup", "improved"])
def test_deep_supervision_weights(make_trainer, variant, n_outputs, expected):
    trainer = make_trainer(variant, with_stages(n_outputs + 1))
    wrapper = segmentation_loss(trainer._build_loss())
    assert isinstance(wrapper, DeepSupervisionWrapper)
    np.testing.assert_allclose(wrapper.weight_factors, [float(v) for v in expected], rtol=1e-12)


def test_baseline_deep_supervision_weights_stay_stock(make_trainer):
    wrapper = segmentation_loss(make_trainer("baseline", with_stages(4))._build_loss())
    np.testing.assert_allclose(wrapper.weight_factors, [2 / 3, 1 / 3, 0], rtol=1e-12)
