"""`improved-nnunet models import|list|remove`: the user's folder of trained models."""
from __future__ import annotations

from ImprovedNNUNetLib.inference.models.store import ENV_VAR


def add_parser(sub):
    parser = sub.add_parser(
        "models",
        help="import, list and remove trained models",
        description=(
            f"Manage the models folder (${ENV_VAR}, default ~/.improved-nnunet/models). Imported models "
            f"can be given to `predict -m` by name."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    importer = actions.add_parser(
        "import", help="import a model ZIP (e.g. from nnUNetv2_export_model_to_zip) or a trained model folder",
        description="Copy a model ZIP or folder into the models folder. A ZIP or results folder holding "
                    "several models (configurations) imports each of them.")
    importer.add_argument("source", metavar="ZIP|FOLDER")
    importer.add_argument("--name", help="name of the imported model (single-model sources only; default: "
                                         "DatasetNNN_X__Trainer__Plans__configuration or the folder name)")
    importer.add_argument("--force", action="store_true", help="replace an imported model of the same name")
    actions.add_parser("list", help="list the imported models")
    remover = actions.add_parser("remove", help="delete an imported model from the models folder")
    remover.add_argument("name", metavar="NAME")


def run(args) -> int:
    from ImprovedNNUNetLib.inference.models.store import import_model, list_models, models_root, remove_model

    if args.action == "import":
        for model in import_model(args.source, name=args.name, force=args.force):
            print(f"imported {model.name} -> {model.path}")
    elif args.action == "list":
        models = list_models()
        if not models:
            print(f"no models in {models_root()}; add one with: improved-nnunet models import ZIP|FOLDER")
        for model in models:
            labels = ", ".join(f"{value}={name}" for name, value in model.labels.items() if name != "background")
            print(f"{model.name}\n  folds: {', '.join(model.folds)}\n  channels: {', '.join(model.channel_names)}"
                  f"\n  labels: {labels}\n  path: {model.path}")
    else:
        print(f"removed {remove_model(args.name)}")
    return 0
