"""`improved-nnunet find-best`: the best variant/configuration (or ensemble) on the cross-validation."""
from ImprovedNNUNetLib.core.variants import DEFAULT_PLANS, VARIANT_NAMES


def add_parser(sub):
    p = sub.add_parser(
        "find-best", help="choose the best variant/configuration or ensemble on the cross-validation",
        description="nnU-Net's find_best_configuration over variants: every trained (variant, plans, configuration) "
                    "and, unless --no-ensembling, every pair ensembled from the validation .npz files (train with "
                    "--npz), compared by mean foreground Dice of the merged folds; nnU-Net's postprocessing is "
                    "decided for the best. Writes inference_information.json and inference_instructions.txt in the "
                    "dataset's results folder.")
    p.add_argument("dataset", metavar="DATASET", help="dataset id or name")
    p.add_argument("--variants", nargs="+", default=["baseline"], metavar="V",
                   help=f"variants ({', '.join(VARIANT_NAMES)}) or nnU-Net trainer class names (default baseline)")
    p.add_argument("-tr", dest="trainers", nargs="+", default=[], metavar="TRAINER",
                   help="more nnU-Net trainer class names (nnU-Net's -tr)")
    p.add_argument("-c", "--configs", dest="configurations", nargs="+", default=["3d_fullres"], metavar="CONFIG",
                   help="configurations (default 3d_fullres)")
    p.add_argument("-p", "--plans", nargs="+", default=[DEFAULT_PLANS], metavar="PLANS",
                   help=f"plans identifiers (default {DEFAULT_PLANS})")
    p.add_argument("-f", "--folds", nargs="+", type=int, default=None, metavar="FOLD",
                   help="folds (default: the dataset's split, 0 1 2 3 4 or one per case for 2-4 cases)")
    p.add_argument("--no-ensembling", "--disable_ensembling", dest="ensembling", action="store_false",
                   help="compare single models only")
    p.add_argument("--jobs", "-np", type=int, default=1, metavar="N", help="processes nnU-Net uses (default 1)")
    p.add_argument("--json", dest="json_output", action="store_true", help="print nnU-Net's result as JSON")


def run(args) -> int:
    import json

    from ImprovedNNUNetTrainingLib.analysis.find_best import find_best, report_lines

    result = find_best(args.dataset, [*args.variants, *args.trainers], args.plans, args.configurations, args.folds,
                       ensembling=args.ensembling, jobs=args.jobs)
    if args.json_output:
        print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=2, default=str))
    else:
        print("\n".join(report_lines(result)))
    return 0
