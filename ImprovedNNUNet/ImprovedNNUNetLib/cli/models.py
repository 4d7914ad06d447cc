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
    exporter = actions.add_parser(
        "export", help="write a trained model as nnU-Net's model ZIP with a model card",
        description="Write MODEL (a model folder or an imported model's name) as the ZIP nnU-Net's "
                    "nnUNetv2_install_pretrained_model_from_zip installs, with model_card.json (labels and their "
                    "terminology, channels, training data, cross-validation metrics, inference time and memory on "
                    "this machine, software versions, license).")
    exporter.add_argument("model", metavar="MODEL")
    exporter.add_argument("-o", "--output", required=True, metavar="OUT.zip")
    exporter.add_argument("--folds", "-f", nargs="+", metavar="FOLD", help="folds to export (default: all trained)")
    exporter.add_argument("--as-stock", action="store_true",
                          help="write it under nnU-Net's stock trainer name (variants whose network is stock only, "
                               "after checking both segment alike), so nnUNetv2_predict and SlicerNNUNet run it")
    exporter.add_argument("--license", default="unspecified", help="the license recorded in the model card")
    exporter.add_argument("--raw", metavar="RAW_DATASET",
                          help="the raw dataset (for cross-validation metrics and the timing case; default: "
                               "$nnUNet_raw/<dataset> when it exists)")
    exporter.add_argument("--overwrite", action="store_true", help="replace OUT.zip")


def run(args) -> int:
    from ImprovedNNUNetLib.inference.models.store import (
        import_model,
        list_models,
        models_root,
        remove_model,
        resolve_model,
    )

    if args.action == "export":
        from ImprovedNNUNetLib.inference.models.export import export_model

        written, card = export_model(resolve_model(args.model), args.output, folds=args.folds,
                                     as_stock=args.as_stock, license_text=args.license, overwrite=args.overwrite,
                                     raw=args.raw)
        timing = card["inference"]
        print(f"wrote {written} ({card['trainer']}, folds {', '.join(card['folds'])}; "
              f"{timing['predict_s']} s per case on {timing['device']})")
        return 0
    if args.action == "import":
        from ImprovedNNUNetLib.inference.model_folder import card_summary

        for model in import_model(args.source, name=args.name, force=args.force):
            print(f"imported {model.name} -> {model.path}")
            summary = card_summary(model.path)
            if summary:
                print(f"  {summary}")
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
