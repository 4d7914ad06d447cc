"""`improved-nnunet prepare`: fingerprint, integrity check, planning and preprocessing of a raw dataset."""
from ..prepare import DEFAULT_CONFIGURATIONS
from ..progress import report_user_errors


def add_parser(sub):
    p = sub.add_parser(
        "prepare", help="plan and preprocess an nnU-Net raw dataset",
        description="Run nnU-Net's fingerprint extraction with its integrity check, experiment planning and "
                    "preprocessing. Needs nnUNet_preprocessed; a folder argument sets nnUNet_raw to its parent.")
    p.add_argument("dataset", metavar="DATASET_FOLDER",
                   help="raw dataset folder DatasetNNN_Name (dataset.json, imagesTr/, labelsTr/), "
                        "or a dataset id/name inside nnUNet_raw")
    p.add_argument("--config", dest="configurations", nargs="+", default=list(DEFAULT_CONFIGURATIONS),
                   choices=DEFAULT_CONFIGURATIONS, metavar="CONFIG",
                   help="configurations to preprocess (default: 2d 3d_fullres 3d_lowres; "
                        "3d_lowres only exists for large images)")
    p.add_argument("--overwrite", action="store_true",
                   help="plan and preprocess again although plans exist (replaces them)")


def run(args) -> int:
    from ..prepare import prepare_dataset

    with report_user_errors():
        prepare_dataset(args.dataset, args.configurations, overwrite=args.overwrite)
    return 0
