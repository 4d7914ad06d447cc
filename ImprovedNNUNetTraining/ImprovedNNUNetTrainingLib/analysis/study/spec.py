"""What a study is: a dataset, arms (a trainer with its plans, configuration, settings and optionally the
checkpoint it is fine-tuned from), folds, repeats (each with its own seed) and a training schedule; where it
lives on disk.

Layout (``<nnUNet_results>/<dataset>/studies/<name>/``):

* ``study.json``: the study as given;
* ``arms/<arm>/``: the arm's own nnU-Net results root (``arm.json`` records its trainer and settings;
  trainings write ``<dataset>/<Trainer>__<plans>__<configuration>/fold_k`` under it), so two arms of one
  trainer with different settings never share a folder; repeat r > 0 of a study with repeats trains under
  ``arms/<arm>/repeat_<r>/`` (its own results root, the same layout);
* ``logs/<arm>_fold<k>[_repeat<r>].log``: each training's output;
* ``report/``: the report.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified
from ImprovedNNUNetLib.core.variants import CONFIGURATIONS, DEFAULT_PLANS, VARIANT_DEFAULTS, trainer_name
from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable
from ImprovedNNUNetTrainingLib.engine.hyperparameters import parse_assignment

ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


ARM_OPTIONS = ("plans", "configuration", "pretrained")  # an arm's own choices besides the variant's settings


@dataclass
class Arm:
    """A trainer (one of the project's variants, or any trainer class nnU-Net can find: its own such as
    ``nnUNetTrainerNoMirroring``, or one under ``nnUNet_extTrainer``) with optional hyper-parameter settings
    (``train --set``), plans and configuration of its own (None: the study's) and a checkpoint to fine-tune from
    (``pretrained``: nnU-Net's ``-pretrained_weights``), under a name of its own."""

    name: str
    variant: str
    settings: dict = field(default_factory=dict)
    plans: str | None = None
    configuration: str | None = None
    pretrained: str | None = None

    def check(self) -> "Arm":
        from ImprovedNNUNetLib.core.trainers import check_trainer

        if not ARM_NAME.match(self.name):
            raise UserError(f"arm name {self.name!r}: use letters, digits, '.', '_' and '-'")
        try:
            check_trainer(self.variant)
        except UserError as exc:
            raise UserError(f"arm {self.name!r}: {exc}") from None
        if self.configuration is not None and self.configuration not in CONFIGURATIONS:
            raise UserError(f"arm {self.name!r}: unknown configuration {self.configuration!r}; use one of "
                            f"{', '.join(CONFIGURATIONS)}")
        defaults = VARIANT_DEFAULTS.get(self.variant, {})
        unknown = sorted(set(self.settings) - set(defaults))
        if unknown:
            valid = ", ".join(defaults) or "none"
            raise UserError(f"arm {self.name!r}: {self.variant} has no setting {', '.join(unknown)}; valid: {valid} "
                            f"(an arm's own choices: {', '.join(ARM_OPTIONS)})")
        return self

    def check_pretrained(self) -> "Arm":
        """A fine-tuning arm's checkpoint must exist when the study is given (not when it is read back)."""
        if self.pretrained:
            from ImprovedNNUNetTrainingLib.engine.pretrained import check_pretrained_file

            try:
                self.pretrained = str(check_pretrained_file(self.pretrained).resolve())
            except UserError as exc:
                raise UserError(f"arm {self.name!r}: {exc}") from None
        return self

    def record(self) -> dict:
        """arm.json: what trains in the arm's folder (the arm's own plans, configuration and checkpoint when set)."""
        extra = {key: getattr(self, key) for key in ARM_OPTIONS if getattr(self, key) is not None}
        return {"variant": self.variant, "settings": self.settings, **extra}


def parse_arm(text: str) -> Arm:
    """``msf``, ``msf_d5=msf``, ``msf_d5=msf:msf_dilation_radius=5,msf_weight=2``, ``nomirror=nnUNetTrainerNoMirroring``,
    ``resencl=baseline:plans=nnUNetResEncUNetLPlans`` or ``ft=baseline:pretrained=/path/checkpoint_final.pth`` -> Arm."""
    name, sep, rest = text.partition("=")
    if not sep:
        return Arm(name.strip(), name.strip()).check()
    variant, _, settings = rest.partition(":")
    values, own = {}, {}
    for item in (settings.split(",") if settings else []):
        key, _, value = item.partition("=")
        if key.strip() in ARM_OPTIONS + ("config",):
            own["configuration" if key.strip() == "config" else key.strip()] = value.strip()
        elif item.strip():
            values.update([parse_assignment(item)])
    return Arm(name.strip(), variant.strip(), values, **own).check().check_pretrained()


@dataclass
class Study:
    """Every (arm, fold, repeat) training of one dataset with one schedule; the configuration and plans are each
    arm's unless it names its own."""

    dataset: str
    arms: list[Arm]
    folds: list | None = None  # None: the dataset's split (0-4, or one fold per case for 2-4 cases)
    configuration: str = "3d_fullres"
    name: str | None = None
    plans: str = DEFAULT_PLANS
    npz: bool = False  # keep the validation probabilities (train --npz), which `study find-best` ensembles
    epochs: int | None = None
    iters_per_epoch: int | None = None
    val_iters_per_epoch: int | None = None
    device: str = "auto"
    repeats: int = 1  # trainings of every arm and fold, each with its own seed
    seeds: list | None = None  # one per repeat; None: 0, 1, ..., repeats - 1

    def __post_init__(self):
        self.dataset = dataset_name(str(self.dataset))
        if not self.arms:
            raise UserError("a study needs at least one arm (--arm VARIANT or --arm NAME=VARIANT:SETTING=VALUE)")
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise UserError(f"arm names must differ: {', '.join(names)}")
        if self.configuration not in CONFIGURATIONS:
            raise UserError(f"unknown configuration {self.configuration!r}; use one of {', '.join(CONFIGURATIONS)}")
        if self.folds is None:
            from ImprovedNNUNetTrainingLib.engine.splits import default_folds

            self.folds = default_folds(self.dataset)
        if not self.folds:
            raise UserError("a study needs at least one fold")
        if self.repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {self.repeats}")
        self.seeds = list(self.seeds) if self.seeds is not None else list(range(self.repeats))
        if len(self.seeds) != self.repeats or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"--seeds: give {self.repeats} different seeds (one per repeat), got {self.seeds}")
        self.name = self.name or "-vs-".join(names)
        if not ARM_NAME.match(self.name):
            raise UserError(f"study name {self.name!r}: use letters, digits, '.', '_' and '-'")

    folders = None  # nnU-Net's folders over the environment (the Training panel's fields), not part of study.json
    repeats_given = True  # False: a run that did not ask for repeats continues the recorded ones

    @property
    def folder(self) -> Path:
        return folder_variable("nnUNet_results", self.folders) / self.dataset / "studies" / self.name

    def plans_of(self, arm: Arm) -> str:
        return arm.plans or self.plans

    def configuration_of(self, arm: Arm) -> str:
        return arm.configuration or self.configuration

    def arm_root(self, arm: Arm, repeat: int = 0) -> Path:
        """The nnU-Net results root of an arm (of one repeat: repeat 0 is the arm's folder itself)."""
        root = self.folder / "arms" / arm.name
        return root / f"repeat_{repeat}" if repeat else root

    def fold_folder(self, arm: Arm, fold, repeat: int = 0) -> Path:
        return (self.arm_root(arm, repeat) / self.dataset
                / f"{trainer_name(arm.variant)}__{self.plans_of(arm)}__{self.configuration_of(arm)}" / f"fold_{fold}")

    def log_path(self, arm: Arm, fold, repeat: int = 0) -> Path:
        return self.folder / "logs" / f"{arm.name}_fold{fold}{f'_repeat{repeat}' if repeat else ''}.log"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["arms"] = [asdict(arm) for arm in self.arms]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Study":
        data = dict(data)
        data["arms"] = [Arm(**arm).check() for arm in data.get("arms", [])]
        return cls(**data)

    def check_against_record(self) -> list[str]:
        """Compare with the study.json of an earlier run of this study: a schedule, configuration or plans that
        differ are refused (its finished trainings would count as done although trained otherwise, and
        study.json would claim the new values for them); arms added or dropped are allowed and returned as
        notes for the user."""
        path = self.folder / "study.json"
        if not path.is_file():
            return []
        try:
            recorded = json.loads(path.read_text())
        except ValueError:
            return [f"{path} was unreadable and is written anew"]
        for key in ("configuration", "plans", "epochs", "iters_per_epoch", "val_iters_per_epoch"):
            if key in recorded and getattr(self, key) is None:  # not given this time: the study's own value
                setattr(self, key, recorded[key])
            if key in recorded and recorded[key] != getattr(self, key):
                flag = {"configuration": "--configuration", "plans": "--plans"}.get(key, "--" + key.replace("_", "-"))
                raise UserError(f"study {self.name} was run with {flag} {recorded[key]} ({path}), this run asks for "
                                f"{getattr(self, key)}; leave {flag} out to continue the study, or give --name for a "
                                "new study")
        if not self.repeats_given and recorded.get("repeats", 1) > self.repeats:
            self.repeats, self.seeds = recorded["repeats"], list(recorded.get("seeds") or range(recorded["repeats"]))
        recorded_seeds = recorded.get("seeds") or []
        shared = min(len(recorded_seeds), len(self.seeds))
        if recorded_seeds[:shared] != self.seeds[:shared]:
            raise UserError(f"study {self.name} was run with --seeds {recorded_seeds} ({path}), this run asks for "
                            f"{self.seeds}; keep the recorded seeds (more --repeats add seeds), or give --name for a "
                            "new study")
        before = {arm["name"] for arm in recorded.get("arms", [])}
        now = {arm.name for arm in self.arms}
        notes = []
        if now - before:
            notes.append(f"study {self.name}: arm(s) added: {', '.join(sorted(now - before))}")
        if before - now:
            notes.append(f"study {self.name}: arm(s) left out of this run (their trainings stay in {self.folder / 'arms'}, "
                         f"the report covers this run's arms): {', '.join(sorted(before - now))}")
        return notes

    def save(self) -> None:
        """Write study.json and each arm's arm.json; refuse an arm whose folder holds other settings."""
        for arm in self.arms:
            record = self.arm_root(arm) / "arm.json"
            wanted = arm.record()
            if record.is_file():
                existing = json.loads(record.read_text())
                if existing != json.loads(json.dumps(wanted)):
                    other = {k: v for k, v in existing.items() if k not in ("variant", "settings")}
                    raise UserError(f"arm {arm.name!r} of study {self.name} was trained as {existing['variant']} "
                                    f"with {existing['settings'] or 'default settings'}"
                                    f"{''.join(f', {k} {v}' for k, v in other.items())}; give the new arm another "
                                    "name (an arm's folder is never reused for other settings)")
            record.parent.mkdir(parents=True, exist_ok=True)
            write_text_verified(record, json.dumps(wanted, indent=2))
        write_text_verified(self.folder / "study.json", json.dumps(self.to_dict(), indent=2))


def load_study_file(path: str | Path) -> dict:
    """A study file (JSON, or YAML when PyYAML is installed) as a dict for :class:`Study`; arms may be
    strings (``"msf_d5=msf:msf_dilation_radius=5"``) or objects ``{name, variant, settings}``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such study file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise UserError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write the study as "
                                "JSON") from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'} ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a study file holds an object with dataset, arms, folds, ...")
    try:
        data["arms"] = [parse_arm(a) if isinstance(a, str) else Arm(**a).check().check_pretrained()
                        for a in data.get("arms", [])]
    except TypeError as exc:  # an arm object with a key Arm does not know
        raise UserError(f"{path}: an arm is a string or an object with name, variant, settings, "
                        f"{', '.join(ARM_OPTIONS)} ({exc})") from None
    return data


def load_study(dataset: str, name: str, folders: dict | None = None) -> Study:
    """The study ``name`` of ``dataset`` from its study.json (``folders``: nnU-Net's folders over the environment,
    which is not changed)."""
    folder = folder_variable("nnUNet_results", folders) / dataset_name(str(dataset), folders) / "studies" / name
    path = folder / "study.json"
    if not path.is_file():
        known = sorted(p.name for p in folder.parent.glob("*") if (p / "study.json").is_file()) if folder.parent.is_dir() else []
        raise UserError(f"no study {name!r} in {folder.parent} (studies: {', '.join(known) or 'none'}); "
                        "run improved-nnunet study run first")
    study = Study.from_dict(json.loads(path.read_text()))
    study.folders = folders
    return study
