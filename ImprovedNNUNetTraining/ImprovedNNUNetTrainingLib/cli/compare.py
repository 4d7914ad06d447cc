"""`improved-nnunet compare DATASET`: validation Dice, HD95 and NSD of every trained variant and fold."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    parser = sub.add_parser(
        "compare",
        help="compare every trained variant and fold of a dataset on nnU-Net's validation outputs",
        description="Evaluate fold_X/validation/ predictions of every run in nnUNet_results/<dataset> against "
                    "the raw labelsTr; print a table of Dice, HD95 and NSD (mean±sd per label) and write a CSV.",
    )
    parser.add_argument("dataset", help="dataset id (e.g. 500) or name (Dataset500_Chest)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="CSV file to write (default: comparison.csv in the dataset's results folder)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing CSV file that compare did not write (its own CSV is replaced on every run)")
    parser.add_argument("--tau", type=float, default=1.0, help="NSD tolerance in mm (default 1)")
    parser.add_argument("--jobs", "-np", type=int, metavar="N",
                        help="cases evaluated at once in worker processes (default: the cores available), as evaluate")
    parser.add_argument("--instances", action="store_true",
                        help="also lesion-wise metrics: the lesion F1 (mean±sd over cases) and the lesions missed, per "
                             "label (as evaluate --instances)")
    parser.add_argument("--json", action="store_true",
                        help="also print the results as one JSON line {\"stage\": \"done\", \"summaries\": [...]} "
                             "(what the Slicer panel reads)")


def run(args) -> int:
    from ImprovedNNUNetLib.cli.evaluate import checked_jobs
    from ImprovedNNUNetTrainingLib.analysis.compare import check_csv_free, compare_runs, format_table, write_csv
    from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable

    csv_path = args.csv or folder_variable("nnUNet_results") / dataset_name(args.dataset) / "comparison.csv"
    check_csv_free(csv_path, args.overwrite)
    summaries = compare_runs(args.dataset, args.tau, jobs=checked_jobs(args.jobs), instances=args.instances)
    written = write_csv(summaries, csv_path, args.overwrite)
    print(format_table(summaries))
    print(f"\nwritten: {written}")
    if args.json:
        import json

        from ImprovedNNUNetTrainingLib.analysis.compare import summaries_to_json

        print(json.dumps({"stage": "done", "csv": str(written), "summaries": summaries_to_json(summaries)}),
              flush=True)
    return 0
