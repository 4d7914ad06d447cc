"""`improved-nnunet prepare`: fingerprint, integrity check, planning and preprocessing of a raw dataset."""
from ImprovedNNUNetLib.core.variants import PLANNER_ALIASES, PLANNERS
from ImprovedNNUNetTrainingLib.engine.prepare import DEFAULT_CONFIGURATIONS
from ImprovedNNUNetTrainingLib.engine.progress import report_user_errors, reporter_for


def add_parser(sub):
    p = sub.add_parser(
        "prepare", help="plan and preprocess an nnU-Net raw dataset",
        description="Run nnU-Net's fingerprint extraction with its integrity check, experiment planning and "
                    "preprocessing. Needs nnUNet_preprocessed; a folder argument sets nnUNet_raw to its parent.")
    p.add_argument("dataset", metavar="DATASET_FOLDER",
                   help="raw dataset folder DatasetNNN_Name (dataset.json, imagesTr/, labelsTr/), "
                        "or a dataset id/name inside nnUNet_raw")
    p.add_argument("--config", "-c", dest="configurations", nargs="+", default=list(DEFAULT_CONFIGURATIONS),
                   choices=DEFAULT_CONFIGURATIONS, metavar="CONFIG",
                   help="configurations to preprocess (default: 2d 3d_fullres 3d_lowres; "
                        "3d_lowres only exists for large images)")
    p.add_argument("--overwrite", action="store_true",
                   help="plan and preprocess again although plans of this name exist (replaces them)")
    p.add_argument("--json", dest="json_events", action="store_true",
                   help="print progress as JSON event lines (for programs) instead of lines for people")
    p.add_argument("--planner", "-pl", default="ExperimentPlanner", metavar="PLANNER",
                   choices=[*PLANNERS, *PLANNER_ALIASES],
                   help="nnU-Net's experiment planner: ExperimentPlanner (default; plans nnUNetPlans) or the "
                        "residual-encoder presets nnUNetPlannerResEncM/L/XL (short: ResEncM/L/XL; plans "
                        "nnUNetResEncUNetM/L/XLPlans). A dataset may hold plans of several planners")
    p.add_argument("--gpu-memory-target", "-gpu_memory_target", type=float, metavar="GB",
                   help="GPU memory the planner sizes the patch and batch for (default: the planner's own)")
    p.add_argument("--plans-name", "-overwrite_plans_name", metavar="NAME",
                   help="write the plans under this identifier instead of the planner's (e.g. with "
                        "--gpu-memory-target)")


def run(args) -> int:
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset

    reporter = reporter_for(args.json_events)
    with report_user_errors(reporter):
        prepare_dataset(args.dataset, args.configurations, overwrite=args.overwrite, planner=args.planner,
                        gpu_memory_target=args.gpu_memory_target, plans_name=args.plans_name, reporter=reporter)
    return 0
