"""`improved-nnunet ensemble`: average the probability files of several predictions (nnUNetv2_ensemble)."""
from __future__ import annotations


def add_parser(sub):
    parser = sub.add_parser(
        "ensemble", help="average probability files (.npz) of several models or folds",
        description="Average the CASE.npz probability files (with their CASE.pkl) that several predictions of the "
                    "same cases wrote (`predict --save_probabilities` or nnUNetv2_predict --save_probabilities) "
                    "and write the segmentation of the mean, as nnUNetv2_ensemble does. dataset.json and "
                    "plans.json come from the first folder.")
    parser.add_argument("-i", "--input", nargs="+", required=True, metavar="FOLDER",
                        help="two or more prediction folders holding the same CASE.npz files")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--save_npz", "--save-npz", dest="save_npz", action="store_true",
                        help="also write the mean probabilities as CASE.npz + CASE.pkl")
    parser.add_argument("--jobs", "-np", type=int, default=1, metavar="N", help="cases merged at once (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing segmentations in OUT")
    parser.add_argument("--dataset-json", metavar="FILE", help="dataset.json to use instead of the first folder's")
    parser.add_argument("--plans-json", metavar="FILE", help="plans.json to use instead of the first folder's")


def run(args) -> int:
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.inference.ensemble import ensemble_folders

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: give at least 1")
    written = ensemble_folders(args.input, args.output, save_npz=args.save_npz, jobs=args.jobs,
                               overwrite=args.overwrite, dataset_json=args.dataset_json, plans_json=args.plans_json)
    print(f"ensembled {len(written)} case(s) of {len(args.input)} folders into {args.output}")
    return 0
