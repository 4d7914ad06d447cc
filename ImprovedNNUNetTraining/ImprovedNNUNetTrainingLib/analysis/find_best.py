"""`find-best`: which variant, plans and configuration (or pair of them, ensembled) is best on the
cross-validation, with nnU-Net's postprocessing decision for it.

The choice is nnU-Net's own ``find_best_configuration`` (mean foreground Dice of the merged
cross-validation predictions; ensembles of every pair from their ``.npz`` files; then
``determine_postprocessing`` on the winner); this module checks the inputs first, names models by
variant, and reports the result with the commands that reproduce it.
"""
from __future__ import annotations

import io
from contextlib import redirect_stdout
from itertools import product

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.variants import TRAINER_NAMES
from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable

VARIANT_OF_TRAINER = {trainer: variant for variant, trainer in TRAINER_NAMES.items()}


def trainer_of(name: str) -> str:
    """A variant name or an nnU-Net trainer class name -> the trainer class name."""
    return TRAINER_NAMES.get(name, name)


def model_label(trainer: str, plans: str, configuration: str) -> str:
    variant = VARIANT_OF_TRAINER.get(trainer)
    return f"{variant or trainer} ({plans}, {configuration})"


def candidate_models(dataset: str, trainers, plans, configurations, folds, ensembling: bool,
                     npz_fix: str = "train with --npz") -> list[dict]:
    """nnU-Net's ``allowed_trained_models`` for the combinations that are trained; UserError for a
    model folder without every fold's validation (or without the ``.npz`` files ensembling needs; ``npz_fix``
    is what the message tells to do about it)."""
    results = folder_variable("nnUNet_results") / dataset
    preprocessed = folder_variable("nnUNet_preprocessed") / dataset
    models, missing = [], []
    for trainer, plan, configuration in product(trainers, plans, configurations):
        folder = results / f"{trainer}__{plan}__{configuration}"
        if not folder.is_dir():
            missing.append(folder.name)
            continue
        if not (preprocessed / f"{plan}.json").is_file():
            raise UserError(f"{preprocessed / (plan + '.json')} not found; find-best compares against the "
                            "prepared dataset's plans")
        for fold in folds:
            validation = folder / f"fold_{fold}" / "validation"
            if not (validation / "summary.json").is_file():
                raise UserError(f"{validation} has no summary.json: fold {fold} of {folder.name} is not trained and "
                                "validated; train it (or leave the fold out with -f)")
            if ensembling and not any(validation.glob("*.npz")):
                raise UserError(f"{validation} has no .npz files, which ensembling needs; {npz_fix} "
                                "(or pass --no-ensembling)")
        models.append({"trainer": trainer, "plans": plan, "configuration": configuration})
    if not models:
        raise UserError(f"none of the models is trained in {results} (looked for {', '.join(missing)}); "
                        "train them first or name other variants/configurations")
    return models


def find_best(dataset: str, variants=("baseline",), plans=("nnUNetPlans",), configurations=("3d_fullres",),
              folds=None, ensembling: bool = True, jobs: int = 1) -> dict:
    """Run nnU-Net's choice over the trained combinations; returns nnU-Net's result dict (also written to
    ``<nnUNet_results>/<dataset>/inference_information.json``) plus ``"log"``: what nnU-Net printed.
    ``folds`` None: the folds of the dataset's split (fewer than 5 for a dataset of 2-4 cases)."""
    from ImprovedNNUNetTrainingLib.engine.splits import default_folds

    name = dataset_name(str(dataset))
    folds = tuple(int(f) for f in (default_folds(name) if folds is None else folds))
    models = candidate_models(name, [trainer_of(v) for v in variants], plans, configurations, folds, ensembling)
    return run_nnunet_choice(name, models, folds, ensembling, jobs)


def run_nnunet_choice(name: str, models: list[dict], folds: tuple, ensembling: bool, jobs: int) -> dict:
    """nnU-Net's ``find_best_configuration`` over checked models, its console output kept in ``"log"``."""
    from nnunetv2.evaluation.find_best_configuration import find_best_configuration

    if jobs < 1:
        raise UserError(f"--jobs {jobs}: give at least 1")
    if len(models) < 2:
        ensembling = False
    log = io.StringIO()
    with redirect_stdout(log):
        result = find_best_configuration(name, tuple(models), allow_ensembling=ensembling, num_processes=jobs,
                                         overwrite=True, folds=folds, strict=True)
    result["log"] = log.getvalue()
    return result


def describe_key(key: str, named: bool = False) -> str:
    """nnU-Net's result key (``Trainer__Plans__config`` or ``ensemble___A___B___folds``) in variant names
    (``named``: the first part is already a name, such as a study's arm)."""
    if key.startswith("ensemble___"):
        _, first, second, _ = key.split("___")
        return f"ensemble of {describe_key(first, named)} + {describe_key(second, named)}"
    trainer, plan, configuration = key.split("__")
    return f"{trainer} ({plan}, {configuration})" if named else model_label(trainer, plan, configuration)


def predict_command(model: dict, dataset: str, folds: str, out: str, model_folders: dict | None) -> str:
    if model_folders is not None:
        where = f"-m {model_folders[model['trainer']]}"
    else:
        variant = VARIANT_OF_TRAINER.get(model["trainer"])
        who = f"--variant {variant}" if variant else f"-tr {model['trainer']}"
        where = f"-d {dataset} -c {model['configuration']} {who} -p {model['plans_identifier']}"
    return f"improved-nnunet predict -i IN -o {out} {where} -f {folds}"


def report_lines(result: dict, model_folders: dict | None = None) -> list[str]:
    """The candidates with their cross-validation Dice, the best one, its postprocessing and the commands.
    ``model_folders``: name -> model folder when the models are named (a study's arms) rather than trainers."""
    named = model_folders is not None
    best = result["best_model_or_ensemble"]
    chosen = best["selected_model_or_models"]
    scores = result["all_results"]
    best_key = max(scores, key=lambda k: (scores[k], -list(scores).index(k)))
    lines = ["cross-validation mean foreground Dice (folds " + ", ".join(map(str, result["folds"])) + "):"]
    width = max(len(describe_key(k, named)) for k in scores)
    for key, score in scores.items():
        lines.append(f"  {describe_key(key, named):<{width}}  {score:.4f}{'  <- best' if key == best_key else ''}")
    lines.append(f"best: {describe_key(best_key, named)}: Dice {best['result_on_crossval_pre_pp']:.4f}, after nnU-Net's "
                 f"postprocessing {best['result_on_crossval_post_pp']:.4f} ({best['postprocessing_file']})")
    dataset = dataset_name(str(result["dataset_name_or_id"]))
    folds = " ".join(map(str, result["folds"]))
    lines.append("predict with:")
    outputs = []
    for index, model in enumerate(chosen):
        out = "OUT" if len(chosen) == 1 else f"OUT_{index + 1}"
        outputs.append(out)
        extra = " --save_probabilities" if len(chosen) > 1 else ""
        lines.append(f"  {predict_command(model, dataset, folds, out, model_folders)}{extra}")
    if len(chosen) > 1:
        lines.append(f"  improved-nnunet ensemble -i {' '.join(outputs)} -o OUT")
    lines.append(f"  nnUNetv2_apply_postprocessing -i OUT -o OUT_PP -pp_pkl_file {best['postprocessing_file']} "
                 f"-plans_json {best['some_plans_file']}")
    return lines
