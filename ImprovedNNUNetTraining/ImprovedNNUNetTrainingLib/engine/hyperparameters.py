"""Changing a variant's hyper-parameters for one run (``improved-nnunet train --set NAME=VALUE``).

A variant's hyper-parameters are class attributes of its trainer (loss weights, deep-supervision
decay, augmentation probabilities and ranges, SDM weight, MSF weight, dilation and stage-1
fraction). A run with other values trains a subclass that overrides those attributes and keeps
the variant's class name, so fold folders, checkpoints and inference see the variant itself.
Attributes that shape the network are not settable: inference rebuilds the network from the
registry's class and would not match the weights.
"""
from __future__ import annotations

import ast

from ImprovedNNUNetLib.core.errors import UserError

ARCHITECTURE_ATTRIBUTES = ("max_features", "encoder_convs_per_stage")


def settable_hyperparameters(trainer_class: type) -> dict:
    """Name -> default value of every hyper-parameter ``--set`` accepts for this trainer class."""
    from ImprovedNNUNetTrainingLib.engine.run_record import variant_hyperparameters

    return {k: v for k, v in variant_hyperparameters(trainer_class).items() if k not in ARCHITECTURE_ATTRIBUTES}


def parse_assignment(text: str) -> tuple[str, object]:
    """``"name=value"`` -> (name, value); the value is a Python/JSON literal such as 0.3 or [0, 0.2]."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UserError(f"{text!r}: write NAME=VALUE, e.g. dice_weight=1.5")
    try:
        return name.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        raise UserError(f"{text!r}: {value!r} is not a number or list; write e.g. 0.3 or [0.0, 0.2]") from None


def coerce(name: str, value, default):
    """``value`` in the type of ``default`` (float, int, or a tuple of numbers of the same length)."""
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(default) or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise UserError(f"{name} needs {len(default)} numbers like {list(default)}, got {value!r}")
        return tuple(float(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{name} needs a number like {default}, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if value != int(value):
            raise UserError(f"{name} needs a whole number like {default}, got {value!r}")
        return int(value)
    return float(value)


def with_hyperparameters(trainer_class: type, values: dict) -> type:
    """``trainer_class`` itself when ``values`` is empty, else a same-named subclass with them set."""
    if not values:
        return trainer_class
    allowed = settable_hyperparameters(trainer_class)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) or "none (this variant has no hyper-parameters)"
        raise UserError(f"{trainer_class.__name__} has no settable hyper-parameter {', '.join(unknown)}; "
                        f"valid names: {valid}")
    attributes = {name: coerce(name, value, allowed[name]) for name, value in values.items()}
    attributes.update(__module__=trainer_class.__module__, __qualname__=trainer_class.__qualname__,
                      __doc__=trainer_class.__doc__)
    return type(trainer_class.__name__, (trainer_class,), attributes)


def format_hyperparameters(values: dict) -> str:
    """``name = value`` lines, the editable text the panel shows under Advanced."""
    return "\n".join(f"{name} = {list(value) if isinstance(value, tuple) else value}" for name, value in values.items())


def parse_hyperparameters(text: str, defaults: dict) -> dict:
    """The values of ``name = value`` lines (blank lines and ``#`` comments ignored) that differ
    from ``defaults``; names must be among the defaults."""
    changed = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, value = parse_assignment(line)
        if name not in defaults:
            raise UserError(f"'{name}' is not a hyper-parameter of this variant; valid names: "
                            f"{', '.join(defaults) or 'none'}")
        default = defaults[name]
        if value != (list(default) if isinstance(default, tuple) else default):
            changed[name] = value
    return changed
