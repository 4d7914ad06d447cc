"""Hyper-parameter overrides (`train --set`, the panel's Advanced section) on the real trainer classes."""
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.engine.hyperparameters import (
    format_hyperparameters,
    parse_assignment,
    parse_hyperparameters,
    with_hyperparameters,
)
from ImprovedNNUNetTrainingLib.engine.registry import get_variant, trainer_class_by_name, variant_name
from ImprovedNNUNetTrainingLib.panels.training_request import variant_defaults


def test_overrides_make_a_same_named_subclass_the_registry_recognises():
    improved = get_variant("improved")
    assert with_hyperparameters(improved, {}) is improved
    changed = with_hyperparameters(improved, {"dice_weight": 2, "noise_variance": [0, 0.3],
                                              "rotation_probability": 0.5})
    assert changed is not improved and issubclass(changed, improved)
    assert changed.__name__ == improved.__name__ and changed.__module__ == improved.__module__
    assert (changed.dice_weight, changed.noise_variance, changed.rotation_probability) == (2.0, (0.0, 0.3), 0.5)
    assert (improved.dice_weight, improved.noise_variance) == (1.5, (0.0, 0.2))  # the variant itself is untouched
    assert variant_name(changed) == "improved" and trainer_class_by_name(changed.__name__) is improved
    assert with_hyperparameters(get_variant("msf"), {"msf_dilation_radius": 3.0}).msf_dilation_radius == 3


@pytest.mark.parametrize("variant, values, message", [
    ("loss", {"rotation_probability": 0.5},
     "no settable hyper-parameter rotation_probability; valid names: dice_weight, ce_weight"),
    ("baseline", {"dice_weight": 1.0}, "this variant has no hyper-parameters"),
    ("msf_deep", {"max_features": 256}, "no settable hyper-parameter max_features"),
    ("augment", {"noise_variance": 0.2}, "noise_variance needs 2 numbers"),
    ("msf", {"msf_dilation_radius": 1.5}, "needs a whole number"),
    ("sdm", {"sdm_weight": "high"}, "needs a number"),
])
def test_bad_overrides_are_refused_with_the_valid_choices(variant, values, message):
    with pytest.raises(UserError, match=message):
        with_hyperparameters(get_variant(variant), values)


def test_assignments_parse_numbers_and_lists():
    assert parse_assignment("dice_weight=2") == ("dice_weight", 2)
    assert parse_assignment(" noise_variance = [0, 0.3] ") == ("noise_variance", [0, 0.3])
    for text in ("dice_weight", "=2", "dice_weight=two"):
        with pytest.raises(UserError, match="NAME=VALUE|not a number"):
            parse_assignment(text)


def test_advanced_text_round_trip_keeps_only_changed_values():
    defaults = variant_defaults("augment")
    text = format_hyperparameters(defaults)
    assert "noise_variance = [0.0, 0.2]" in text.splitlines()
    assert parse_hyperparameters(text, defaults) == {}
    edited = text.replace("rotation_probability = 0.3", "rotation_probability = 0.5  # stronger") + "\n\n"
    assert parse_hyperparameters(edited, defaults) == {"rotation_probability": 0.5}
    with pytest.raises(UserError, match="'dice_weight' is not a hyper-parameter of this variant"):
        parse_hyperparameters("dice_weight = 2", defaults)


def test_the_torch_free_defaults_table_equals_the_trainer_classes():
    """The trainer classes take their defaults from VARIANT_DEFAULTS (what the panel shows without torch), and
    `--set` discovers exactly those attributes on each class."""
    from ImprovedNNUNetLib.core.variants import VARIANT_DEFAULTS, VARIANT_NAMES
    from ImprovedNNUNetTrainingLib.engine.hyperparameters import settable_hyperparameters
    from ImprovedNNUNetTrainingLib.engine.registry import get_variant

    assert set(VARIANT_DEFAULTS) == set(VARIANT_NAMES)
    for variant in VARIANT_NAMES:
        assert variant_defaults(variant) == settable_hyperparameters(get_variant(variant)), variant
