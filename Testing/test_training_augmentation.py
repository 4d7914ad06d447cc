"""The `augment`/`improved` pipelines hold exactly Wu's probabilities and ranges, read from the
composed transforms nnU-Net builds; every other transform is identical to stock nnU-Net."""
import json

import numpy as np
import pytest

from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS
from ImprovedNNUNetTrainingLib.engine.run_record import describe_transforms

CHANGED = {
    "SpatialTransform": {"p_rotation": (0.2, 0.3)},
    "GaussianNoiseTransform": {"apply_probability": (0.1, 0.15), "noise_variance": ([0, 0.1], [0, 0.2])},
    "SimulateLowResolutionTransform": {"apply_probability": (0.25, 0.3), "scale": ([0.5, 1], [0.7, 1])},
}


def pipeline(variant, trainer=None):
    """The training pipeline as nnU-Net's get_dataloaders asks for it (3-D, 3 deep-supervision outputs),
    from the variant's class or, for a variant that needs the plans, from its trainer."""
    compose = (trainer or VARIANTS[variant]).get_training_transforms(
        (8, 32, 32), (-np.pi / 6, np.pi / 6), [[1, 1, 1], [1, 0.5, 0.5], [1, 0.25, 0.25]], (0, 1, 2), False,
        use_mask_for_norm=[False], is_cascaded=False, foreground_labels=list(range(1, 8)),
        regions=None, ignore_label=None)
    return describe_transforms(compose)


def flat(entry):
    return {"apply_probability": entry["apply_probability"], **entry["parameters"]}


@pytest.mark.parametrize("variant", ["augment", "improved"])
def test_stronger_augmentation_exactly_as_specified(variant):
    stock, strong = pipeline("baseline"), pipeline(variant)
    assert [e["transform"] for e in stock] == [e["transform"] for e in strong]
    seen = set()
    for before, after in zip(stock, strong):
        before, after, name = flat(before), flat(after), after["transform"]
        for key, (stock_value, new_value) in CHANGED.get(name, {}).items():
            assert before.pop(key) == stock_value, f"stock nnU-Net changed {name}.{key}"
            assert after.pop(key) == new_value, f"{variant}: {name}.{key}"
            seen.add(name)
        assert before == after, f"{variant} changed {name} beyond Wu's description"
    assert seen == set(CHANGED)


@pytest.mark.parametrize("variant", ["baseline", "loss", "deepsup", "msf"])
def test_other_variants_keep_stock_augmentation(variant):
    assert pipeline(variant) == pipeline("baseline")


def test_sdm_pipeline_is_stock_augmentation_then_its_distance_targets(make_trainer):
    trainer = make_trainer("sdm")
    sdm = pipeline("sdm", trainer)
    assert sdm[:-1] == pipeline("baseline")
    assert sdm[-1] == {"transform": "DistanceTargetTransform", "apply_probability": 1.0,
                       "parameters": {"labels": list(range(1, 8)),
                                      "spacing": [float(s) for s in trainer.configuration_manager.spacing],
                                      "regions": 0}}  # a label dataset: no region channels


def test_training_run_used_the_stronger_pipeline(trained_model):
    settings = json.loads((trained_model("augment") / "fold_0" / "variant_settings.json").read_text())
    by_name = {e["transform"]: flat(e) for e in settings["augmentation"]}
    assert by_name["SpatialTransform"]["p_rotation"] == 0.3
    assert by_name["GaussianNoiseTransform"]["apply_probability"] == 0.15
    assert by_name["GaussianNoiseTransform"]["noise_variance"] == [0, 0.2]
    assert by_name["SimulateLowResolutionTransform"]["apply_probability"] == 0.3
    assert by_name["SimulateLowResolutionTransform"]["scale"] == [0.7, 1]
