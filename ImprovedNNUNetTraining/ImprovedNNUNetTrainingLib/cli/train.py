"""`improved-nnunet train`: train a variant on a prepared dataset, one or more folds."""
import argparse

from ImprovedNNUNetLib.core.devices import device_name, gpu_index
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folds import required_folds
from ImprovedNNUNetLib.core.variants import CONFIGURATIONS, DEFAULT_CHECKPOINT_EVERY, DEFAULT_PLANS, VARIANT_NAMES
from ImprovedNNUNetTrainingLib.engine.progress import report_user_errors, reporter_for


def fold_argument(text: str) -> list:
    """``--fold``: the folds in order (argparse reports a bad one as an argument error)."""
    try:
        return required_folds(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train an nnU-Net v2 variant",
        description="Train one variant on a dataset prepared with `improved-nnunet prepare`. Shows a progress "
                    "bar per epoch and one summary line per epoch (--json: JSON event lines instead); every event "
                    "also goes to progress.jsonl in the fold folder, nnU-Net's own log to its training_log file. "
                    "SIGTERM/SIGINT stop the run with a checkpoint; --continue resumes it.")
    p.add_argument("dataset", metavar="DATASET", help="dataset id (e.g. 1) or name (Dataset001_Name)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--variant", choices=VARIANT_NAMES, metavar="V", help=f"one of: {', '.join(VARIANT_NAMES)}")
    which.add_argument("--trainer", "-tr", metavar="TRAINER",
                       help="instead of --variant: any trainer class nnU-Net can find, as nnUNetv2_train -tr takes it "
                            "(nnUNetTrainerNoMirroring, nnUNetTrainerDA5, nnUNetTrainer_250epochs, ... or your own in "
                            "a folder listed in nnUNet_extTrainer)")
    p.add_argument("--config", dest="configuration", default="3d_fullres", choices=CONFIGURATIONS,
                   help="nnU-Net configuration (default 3d_fullres)")
    p.add_argument("--plans", "-p", default=DEFAULT_PLANS, metavar="PLANS",
                   help=f"plans identifier, e.g. nnUNetResEncUNetMPlans after `prepare --planner ResEncM` "
                        f"(default {DEFAULT_PLANS})")
    p.add_argument("--fold", "-f", default="0", type=fold_argument, help="0..4, a comma list such as 1,2, or all (default 0)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: nnU-Net's 1000)")
    p.add_argument("--iters-per-epoch", type=int, help="training iterations per epoch (default: nnU-Net's 250)")
    p.add_argument("--val-iters-per-epoch", type=int,
                   help="validation iterations per epoch for the pseudo Dice (default: nnU-Net's 50)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="auto (default) uses CUDA when present, otherwise the CPU; cpu; cuda; cuda:N (GPU N)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help=f"write checkpoint_latest.pth every N epochs (default {DEFAULT_CHECKPOINT_EVERY}); a run "
                        "killed with SIGKILL loses at most the epochs since the last checkpoint")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--continue", dest="continue_training", action="store_true",
                      help="resume the fold's run from its latest checkpoint with the options it was started with "
                           "(run_options.json in the fold folder)")
    mode.add_argument("--overwrite", action="store_true",
                      help="delete an existing fold folder of this variant and train from scratch")
    p.add_argument("--set", dest="hyperparameters", action="append", default=[], metavar="NAME=VALUE",
                   help="change one of the variant's hyper-parameters for this run, e.g. --set dice_weight=2 "
                        "or --set noise_variance=[0,0.3] (repeatable)")
    p.add_argument("--change", dest="allow_change", action="store_true",
                   help="with --continue: accept options that differ from the run's recorded ones (e.g. more "
                        "--epochs); the change is recorded in run_options.json")
    p.add_argument("--npz", dest="save_probabilities", action="store_true",
                   help="also save the final validation's probabilities as nnU-Net does (.npz + .pkl), for "
                        "nnUNetv2_find_best_configuration and nnUNetv2_ensemble")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed Python, NumPy and PyTorch before the network is built (a study's repeats use this); "
                        "nnU-Net's augmentation workers and cuDNN stay nondeterministic, as nnU-Net intends")
    p.add_argument("--pretrained-weights", "-pretrained_weights", metavar="CHECKPOINT.pth",
                   help="fine-tune: start from the weights of an nnU-Net checkpoint of the same plans and "
                        "configuration (segmentation layers and the sdm head start fresh)")
    p.add_argument("--val", dest="validation_only", action="store_true",
                   help="only run nnU-Net's final validation of a finished fold (e.g. with --npz afterwards)")
    p.add_argument("--val-best", "--val_best", dest="val_best", action="store_true",
                   help="validate with checkpoint_best.pth instead of the final weights")
    p.add_argument("--disable-checkpointing", "--disable_checkpointing", dest="disable_checkpointing",
                   action="store_true", help="write no checkpoints (nothing to resume or predict with; for "
                                             "timing runs)")
    p.add_argument("--json", dest="json_events", action="store_true",
                   help="print progress as JSON event lines (one object per line, for programs) with nnU-Net's log")
    p.add_argument("--no-validation", dest="final_validation", action="store_false",
                   help="skip nnU-Net's final validation (prediction of the fold's validation cases)")
    from ImprovedNNUNetLib.cli.remote import add_server_arguments

    add_server_arguments(p)
    p.add_argument("--upload-dataset", metavar="RAW_FOLDER",
                   help="with --server: send this raw dataset folder (DatasetXXX_Name) to the server first")
    p.add_argument("--detach", action="store_true", help="with --server: start the training and return")


def resume_command(args, fold) -> str:
    plans = f" --plans {args.plans}" if args.plans != DEFAULT_PLANS else ""
    which = f"--variant {args.variant}" if args.variant in VARIANT_NAMES else f"--trainer {args.variant}"
    return f"improved-nnunet train {args.dataset} {which} --config {args.configuration}{plans} " \
           f"--fold {fold} --continue"


def chosen_variant(args) -> str:
    """``--variant`` as given, or ``--trainer NAME`` as the run's variant (a variant's own class -> its short name)."""
    from ImprovedNNUNetLib.core.variants import variant_for_trainer

    return args.variant or variant_for_trainer(args.trainer)


def select_gpu(device: str) -> str:
    """``cuda:N`` -> "cuda" with ``CUDA_VISIBLE_DEVICES`` narrowed to GPU N of those visible (nnU-Net's trainer
    always uses the first visible GPU); other names unchanged. Runs before CUDA is initialised."""
    import os

    index = gpu_index(device)
    if index is None:
        return device_name(device)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip():
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if index >= len(ids):
            raise UserError(f"--device {device}: CUDA_VISIBLE_DEVICES={visible} makes only {len(ids)} GPU(s) visible "
                            f"(cuda:0..cuda:{len(ids) - 1})")
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[index]
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    return "cuda"


def run(args) -> int:
    args.variant = chosen_variant(args)
    if args.server:
        from ImprovedNNUNetLib.cli.remote import remote_train

        return remote_train(args)
    if args.upload_dataset or args.detach:
        raise UserError("--upload-dataset and --detach go with --server URL")
    import sys

    from ImprovedNNUNetTrainingLib.engine.hyperparameters import parse_assignment
    from ImprovedNNUNetTrainingLib.engine.run_checks import TrainOptions, check_run

    reporter = reporter_for(args.json_events)
    with report_user_errors(reporter):
        if args.allow_change and not args.continue_training:
            raise UserError("--change only applies to --continue (it allows changing a resumed run's options)")
        hyperparameters = dict(parse_assignment(text) for text in args.hyperparameters)
        from ImprovedNNUNetTrainingLib.engine.run_checks import check_device_name

        check_device_name(args.device)
        args.device = select_gpu(args.device)
        runs = [TrainOptions(
            dataset=args.dataset, variant=args.variant, configuration=args.configuration, fold=fold, plans=args.plans,
            epochs=args.epochs, iters_per_epoch=args.iters_per_epoch,
            val_iters_per_epoch=args.val_iters_per_epoch, device=args.device,
            continue_training=args.continue_training, overwrite=args.overwrite,
            checkpoint_every=args.checkpoint_every, final_validation=args.final_validation,
            hyperparameters=hyperparameters, allow_change=args.allow_change,
            save_probabilities=args.save_probabilities, pretrained_weights=args.pretrained_weights,
            disable_checkpointing=args.disable_checkpointing, validation_only=args.validation_only,
            val_best=args.val_best, seed=args.seed) for fold in args.fold]
        for options in runs:  # every fold is checked before the first one trains
            check_run(options)
        from ImprovedNNUNetTrainingLib.engine.hyperparameters import with_hyperparameters
        from ImprovedNNUNetTrainingLib.engine.registry import get_variant

        if hyperparameters:
            with_hyperparameters(get_variant(args.variant), hyperparameters)  # --set names and values
        from ImprovedNNUNetTrainingLib.engine.runner import train

        for options in runs:
            result = train(options, reporter)
            if result.status == "cancelled":
                import signal

                print(f"improved-nnunet train: cancelled by {signal.Signals(result.signum).name} during epoch "
                      f"{result.epoch + 1} of {result.num_epochs} (checkpoint saved); resume with: "
                      f"{resume_command(args, options.fold)}", file=sys.stderr, flush=True)
                return 128 + result.signum
            if result.status == "stopped":  # SIGUSR1: nnU-Net's exit status 0, later folds are not started
                import signal

                print(f"improved-nnunet train: stopped by {signal.Signals(result.signum).name} after epoch "
                      f"{result.epoch} of {result.num_epochs} (checkpoint saved); resume with: "
                      f"{resume_command(args, options.fold)}", file=sys.stderr, flush=True)
                return 0
    return 0
