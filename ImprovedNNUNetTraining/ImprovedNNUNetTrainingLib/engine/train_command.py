"""The ``improved-nnunet train`` command line of one fold, built in one place (the Training panel's jobs and
the studies' trainings start their children with it) and read back from the parsed command line.

A test parses what :meth:`TrainCommand.arguments` builds with the command's own parser and gets the same
``TrainCommand`` back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ImprovedNNUNetLib.core.variants import DEFAULT_PLANS, VARIANT_NAMES

MODES = ("new", "continue", "overwrite", "validate")  # validate: `--val` of a finished run


@dataclass
class TrainCommand:
    dataset: str
    variant: str
    fold: int | str
    configuration: str = "3d_fullres"
    plans: str = DEFAULT_PLANS
    device: str = "auto"
    epochs: int | None = None
    iters_per_epoch: int | None = None
    val_iters_per_epoch: int | None = None
    hyperparameters: dict = field(default_factory=dict)
    npz: bool = False
    json_events: bool = False
    mode: str = "new"
    seed: int | None = None
    pretrained: str | None = None  # fine-tune from this checkpoint (a new run only)

    def arguments(self) -> list[str]:
        """The arguments after ``improved-nnunet``."""
        which = ["--variant", self.variant] if self.variant in VARIANT_NAMES else ["--trainer", self.variant]
        arguments = ["train", self.dataset, *which, "--config", self.configuration,
                     "--plans", self.plans, "--fold", str(self.fold), "--device", self.device]
        if self.json_events:
            arguments.append("--json")
        for option, value in (("--epochs", self.epochs), ("--iters-per-epoch", self.iters_per_epoch),
                              ("--val-iters-per-epoch", self.val_iters_per_epoch)):
            if value is not None:
                arguments += [option, str(value)]
        for name, value in self.hyperparameters.items():
            arguments += ["--set", f"{name}={json.dumps(value)}"]
        if self.npz:
            arguments.append("--npz")
        if self.seed is not None:
            arguments += ["--seed", str(self.seed)]
        if self.pretrained:
            arguments += ["--pretrained-weights", str(self.pretrained)]
        return arguments + {"new": [], "continue": ["--continue"], "overwrite": ["--overwrite"],
                            "validate": ["--val"]}[self.mode]

    @classmethod
    def from_namespace(cls, args) -> list["TrainCommand"]:
        """One command per fold of the ``train`` command's parsed arguments."""
        from ImprovedNNUNetTrainingLib.engine.hyperparameters import parse_assignment

        mode = ("validate" if args.validation_only else "continue" if args.continue_training
                else "overwrite" if args.overwrite else "new")
        from ImprovedNNUNetLib.core.variants import variant_for_trainer

        variant = args.variant or variant_for_trainer(args.trainer)
        return [cls(dataset=args.dataset, variant=variant, fold=fold, configuration=args.configuration,
                    plans=args.plans, device=args.device, epochs=args.epochs, iters_per_epoch=args.iters_per_epoch,
                    val_iters_per_epoch=args.val_iters_per_epoch,
                    hyperparameters=dict(parse_assignment(text) for text in args.hyperparameters),
                    npz=args.save_probabilities, json_events=args.json_events, mode=mode, seed=args.seed,
                    pretrained=args.pretrained_weights)
                for fold in args.fold]
