"""`improved-nnunet study run|status|report`: trainings of several arms over folds, locally or on SLURM."""
from __future__ import annotations

import sys

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.variants import CONFIGURATIONS


def add_parser(sub):
    parser = sub.add_parser(
        "study", help="train several variants (arms) over folds, locally or on SLURM, and compare them",
        description="A study trains every arm (a variant or any nnU-Net trainer, with optional settings, plans, "
                    "configuration or a checkpoint to fine-tune from) on every fold and repeat, resuming what was "
                    "interrupted and skipping what is done, then reports per-label mean ± sd with paired Wilcoxon "
                    "tests and bootstrap intervals against the baseline arm, the spread between repeats and the "
                    "compute per arm.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="run (or continue) a study")
    run.add_argument("dataset", metavar="DATASET", nargs="?", help="dataset id or name (or give --file)")
    run.add_argument("--arm", action="append", default=[], metavar="NAME=TRAINER[:K=V,...]",
                     help="an arm (repeatable): a variant (baseline, improved), a variant with settings "
                          "(msf_d5=msf:msf_dilation_radius=5), any trainer nnU-Net can find "
                          "(nomirror=nnUNetTrainerNoMirroring), an arm of its own plans or configuration "
                          "(resencl=baseline:plans=nnUNetResEncUNetLPlans) or a fine-tuning arm "
                          "(ft=baseline:pretrained=/path/checkpoint_final.pth)")
    run.add_argument("--file", metavar="STUDY.json|yaml", help="a study file (dataset, arms, folds, schedule)")
    run.add_argument("--recipe", metavar="NAME",
                     help="a study recipe shipped with the project (the papers' ablations; `study recipes` lists them)")
    run.add_argument("--name", help="study name (default: the arm names joined by -vs-)")
    run.add_argument("--folds", help="folds, e.g. 0,1 (default: the dataset's split, 0-4 or one per case for 2-4 "
                                     "cases)")
    run.add_argument("--config", dest="configuration", choices=CONFIGURATIONS, help="default 3d_fullres")
    run.add_argument("--plans", "-p", help="plans identifier, e.g. nnUNetResEncUNetMPlans (default nnUNetPlans)")
    run.add_argument("--npz", action="store_true", default=None,
                     help="keep each training's validation probabilities (train --npz) for `study find-best` "
                          "ensembles")
    run.add_argument("--repeats", type=int, help="train every arm and fold this many times, each repeat with its own "
                                                 "seed, to measure the spread between runs (default 1)")
    run.add_argument("--seeds", help="the repeats' seeds, e.g. 0,1,2 (default 0 .. repeats-1)")
    run.add_argument("--epochs", type=int)
    run.add_argument("--iters-per-epoch", type=int)
    run.add_argument("--val-iters-per-epoch", type=int)
    run.add_argument("--device", choices=("auto", "cuda", "cpu", "mps"), help="default auto")
    run.add_argument("--executor", choices=("local", "slurm"), default="local")
    run.add_argument("--gpus", help="local: GPU ids to use, one training per GPU, e.g. 0,1")
    run.add_argument("--parallel", type=int, default=1, help="local without --gpus: trainings at once on the CPU")
    run.add_argument("--slurm-partition")
    run.add_argument("--slurm-gpus-per-job", type=int, default=0)
    run.add_argument("--slurm-time", type=int, default=24 * 60, metavar="MINUTES", help="wall time per job")
    run.add_argument("--slurm-cpus-per-task", type=int)
    run.add_argument("--slurm-python", help="the python of the environment on the cluster nodes")
    run.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                     help="another sbatch option, e.g. account=lab or qos=long (repeatable)")
    run.add_argument("--no-wait", action="store_true", help="slurm: submit and return (see `study status`)")
    from ImprovedNNUNetLib.cli.remote import add_server_arguments

    add_server_arguments(run)
    run.add_argument("--detach", action="store_true", help="with --server: start the study and return")
    run.add_argument("--baseline", help="arm the others are tested against (default: a plain baseline arm, "
                                        "else the first)")
    recipes = actions.add_parser("recipes", help="list the study recipes (the papers' ablations), or print one")
    recipes.add_argument("recipe", nargs="?", metavar="NAME", help="print this recipe as a study file (JSON)")
    best = actions.add_parser("find-best", help="the best arm or pair of arms (ensembled) on the cross-validation")
    best.add_argument("dataset", metavar="DATASET")
    best.add_argument("name", metavar="NAME")
    best.add_argument("--no-ensembling", dest="ensembling", action="store_false",
                      help="compare single arms only (ensembling needs a study run with --npz)")
    best.add_argument("--jobs", "-np", type=int, default=1, metavar="N", help="processes nnU-Net uses (default 1)")
    for name in ("status", "report"):
        action = actions.add_parser(name, help="the arms × folds matrix" if name == "status" else
                                    "write the report (table, tests, plots)")
        action.add_argument("dataset", metavar="DATASET")
        action.add_argument("name", metavar="NAME")
        if name == "report":
            action.add_argument("--baseline")
            action.add_argument("--tau", type=float, default=1.0, help="NSD tolerance in mm (default 1)")
            action.add_argument("--jobs", "-np", type=int, metavar="N",
                                help="cases evaluated at once in worker processes (default: the cores available)")
            action.add_argument("--instances", action="store_true",
                                help="also the lesion-wise F1 per label, tested against the baseline like Dice")


def study_from_args(args):
    from ImprovedNNUNetTrainingLib.analysis.study.spec import Arm, Study, load_study_file, parse_arm

    if args.file and args.recipe:
        raise UserError("give --file or --recipe, not both")
    data = load_study_file(args.file) if args.file else {}
    if args.recipe:
        from ImprovedNNUNetTrainingLib.analysis.study.recipes import recipe

        data = recipe(args.recipe)
        data["arms"] = [Arm(**arm).check() for arm in data["arms"]]
    if args.dataset:
        data["dataset"] = args.dataset
    if args.arm:
        data["arms"] = [parse_arm(text) for text in args.arm]
    if "dataset" not in data:
        raise UserError("give DATASET (or a --file with a dataset)")
    if args.folds:
        from ImprovedNNUNetLib.core.folds import required_folds

        data["folds"] = required_folds(args.folds)
    for key in ("name", "configuration", "plans", "npz", "epochs", "iters_per_epoch", "val_iters_per_epoch", "device",
                "repeats"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.seeds:
        try:
            data["seeds"] = [int(text) for text in args.seeds.split(",") if text.strip()]
        except ValueError:
            raise UserError(f"--seeds {args.seeds!r}: give whole numbers, e.g. 0,1,2") from None
        data.setdefault("repeats", len(data["seeds"]))
    study = Study(**data)
    study.repeats_given = "repeats" in data or "seeds" in data  # else a study run again keeps its recorded repeats
    return study


def check_trainings(study) -> None:
    """Every training's arguments are valid before anything starts (folds, dataset, plans); each arm is
    checked against its own results root."""
    from ImprovedNNUNetTrainingLib.engine.environment import results_root
    from ImprovedNNUNetTrainingLib.engine.run_checks import TrainOptions, check_run

    roots = {arm.name: study.arm_root(arm) for arm in study.arms}  # before the variable changes
    for arm in study.arms:
        arm.check_pretrained()  # a fine-tuning arm's checkpoint is still there
        with results_root(roots[arm.name]):
            for fold in study.folds:
                check_run(TrainOptions(dataset=study.dataset, variant=arm.variant,
                                       configuration=study.configuration_of(arm), plans=study.plans_of(arm), fold=fold,
                                       epochs=study.epochs, iters_per_epoch=study.iters_per_epoch,
                                       val_iters_per_epoch=study.val_iters_per_epoch, overwrite=True,
                                       hyperparameters=dict(arm.settings), pretrained_weights=arm.pretrained),
                          check_lock=False)


def run(args) -> int:
    from ImprovedNNUNetTrainingLib.analysis.study.report import build_report, write_report
    from ImprovedNNUNetTrainingLib.analysis.study.spec import load_study
    from ImprovedNNUNetTrainingLib.analysis.study.status import format_status

    if args.action == "run" and args.server:
        from ImprovedNNUNetLib.cli.remote import remote_study

        return remote_study(args)
    if args.action == "status":
        print(format_status(load_study(args.dataset, args.name)))
        return 0
    if args.action == "recipes":
        from ImprovedNNUNetTrainingLib.analysis.study.recipes import listing, study_file_text

        print(study_file_text(args.recipe) if args.recipe else listing())
        return 0
    if args.action == "find-best":
        from ImprovedNNUNetTrainingLib.analysis.find_best import report_lines
        from ImprovedNNUNetTrainingLib.analysis.study.choose import study_find_best

        study = load_study(args.dataset, args.name)
        result = study_find_best(study, args.ensembling, args.jobs)
        print("\n".join(report_lines(result, result["model_folders"])))
        return 0
    if args.action == "report":
        from ImprovedNNUNetLib.cli.evaluate import checked_jobs

        study = load_study(args.dataset, args.name)
        report = build_report(study, args.baseline, args.tau, checked_jobs(args.jobs), instances=args.instances)
        print(f"wrote {write_report(study, report)}")
        return 0
    from ImprovedNNUNetTrainingLib.analysis.study.run import all_done, run_study
    from ImprovedNNUNetTrainingLib.analysis.study.slurm import SlurmOptions

    if args.executor == "slurm":
        from ImprovedNNUNetLib.core.dependencies import require_command_line_package

        require_command_line_package("submitit", "the SLURM executor (--executor slurm)")
    study = study_from_args(args)
    for note in study.check_against_record():  # before the checks: a value not given is the study's own
        print(note, file=sys.stderr)
    check_trainings(study)
    if args.executor == "local" and args.parallel < 1:
        raise UserError(f"--parallel {args.parallel}: give 1 or more")
    extra = {}
    for item in args.slurm_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--slurm-option {item!r}: write KEY=VALUE, e.g. account=lab")
        extra[key.strip().lstrip("-")] = value.strip()
    slurm = SlurmOptions(partition=args.slurm_partition, gpus_per_job=args.slurm_gpus_per_job,
                         time_min=args.slurm_time, cpus_per_task=args.slurm_cpus_per_task, python=args.slurm_python,
                         extra=extra, wait=not args.no_wait)
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    try:
        results = run_study(study, args.executor, gpus=gpus, parallel=args.parallel, slurm=slurm)
    except KeyboardInterrupt:
        print(f"improved-nnunet study: interrupted; the trainings stopped with a checkpoint. Run the same command "
              f"again to continue (status: improved-nnunet study status {study.dataset} {study.name})",
              file=sys.stderr)
        return 130
    print(format_status(study))
    if args.executor == "slurm" and args.no_wait:
        return 0
    failed = [key for key, result in results.items() if result not in (0, "done")]
    if all_done(study):
        print(f"report: {write_report(study, build_report(study, args.baseline))}")
    if failed:
        print(f"improved-nnunet study: error: {len(failed)} training(s) failed ({', '.join(failed)}); their logs "
              f"are in {study.folder / 'logs'}; run the same command again to resume them", file=sys.stderr)
        return 1
    return 0
