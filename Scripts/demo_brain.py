"""The brain-tissue demo: build the MNI slab dataset, train two variants, predict, evaluate, report.

``Scripts/demo.py`` (``make demo``) runs it as its step ``brain``. Everything it makes lies
inside the output folder, including nnU-Net's raw/preprocessed/results folders, so the
user's own nnU-Net folders are never touched. Steps run the public `improved-nnunet`
sub-commands as child processes; their progress events drive the progress bars, their logs
go to ``<out>/logs/``.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from demo_brain_data import FILE_ENDING, LABELS, BrainDataConfig, BrainDataset, build_dataset
from demo_child import run_cli
from demo_overlays import busiest_slice, overlay_png
from demo_report import DemoFacts, VariantRun, write_report

DATASET = "Dataset931_MNIBrainTissue"
LABEL_NAMES = {value: name for name, value in LABELS.items() if value}  # dataset.json's spelling, everywhere


@dataclass(frozen=True)
class DemoSettings:
    """What the demo trains and how (the defaults are `make demo`'s CPU schedule)."""

    data: BrainDataConfig = BrainDataConfig()
    variants: tuple[str, ...] = ("baseline", "improved")
    configuration: str = "2d"
    fold: str = "0"
    epochs: int = 8
    iterations: int = 25
    val_iterations: int = 2
    tau_mm: float = 2.0  # NSD tolerance: one voxel of the 2 mm template


@dataclass
class DemoFolders:
    """The layout of the output folder."""

    root: Path

    def __post_init__(self):
        self.root = Path(self.root).resolve()

    raw = property(lambda self: self.root / "nnUNet_raw")
    preprocessed = property(lambda self: self.root / "nnUNet_preprocessed")
    results = property(lambda self: self.root / "nnUNet_results")
    logs = property(lambda self: self.root / "logs")
    overlays = property(lambda self: self.root / "overlays")

    def predictions(self, variant: str) -> Path:
        return self.root / "predictions" / variant

    def evaluation(self, variant: str) -> Path:
        return self.root / "brain_evaluation" / variant

    def environment(self) -> dict[str, str]:
        """This process's environment with nnU-Net's folders inside the output folder and worker
        pools sized to the cores present (unless the user sized them)."""
        from ImprovedNNUNetTrainingLib.engine.environment import size_worker_pools

        size_worker_pools()
        return {**os.environ, "nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                "nnUNet_results": str(self.results)}


@dataclass
class Timer:
    """Durations of the named steps, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str):
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start


def build_step(folders: DemoFolders, settings: DemoSettings) -> BrainDataset:
    with tqdm(total=settings.data.num_slabs, desc="slab cases", unit="case") as bar:
        return build_dataset(folders.raw / DATASET, settings.data, progress=lambda case: bar.update())


def prepare_step(folders: DemoFolders, settings: DemoSettings) -> None:
    with tqdm(desc="plan + preprocess: starting", bar_format="{desc} [{elapsed}]") as bar:
        run_cli(["prepare", str(folders.raw / DATASET), "--config", settings.configuration, "--json"],
                folders.logs / "prepare.log", folders.environment(),
                on_event=lambda event: bar.set_description_str(f"plan + preprocess: {event['stage']}"))


def train_step(folders: DemoFolders, settings: DemoSettings, variant: str) -> None:
    total = settings.epochs * settings.iterations
    shown = {}  # latest epoch, loss and pseudo Dice (events carry null where they have no new value)
    with tqdm(total=total, desc=f"train {variant}", unit="it") as bar:
        def on_event(event: dict) -> None:
            if event["stage"] == "training" and event.get("iteration") is not None:
                bar.n = min(total, event["epoch"] * settings.iterations + event["iteration"])
                for key, name in (("epoch", "epoch"), ("train_loss", "loss"), ("pseudo_dice", "pseudo_dice")):
                    if event.get(key) is not None:
                        shown[name] = round(event[key], 3)
                bar.set_postfix(shown, refresh=False)
                bar.refresh()
            elif event["stage"] in ("validation", "done"):
                bar.set_postfix_str(event["stage"])

        run_cli(["train", DATASET, "--variant", variant, "--config", settings.configuration,
                 "--fold", settings.fold, "--epochs", str(settings.epochs),
                 "--iters-per-epoch", str(settings.iterations),
                 "--val-iters-per-epoch", str(settings.val_iterations), "--device", "cpu", "--no-validation",
                 "--json"],  # progress events (one JSON line each) move the bar
                folders.logs / f"train_{variant}.log", folders.environment(), on_event=on_event)


def model_folder(folders: DemoFolders, settings: DemoSettings, variant: str) -> Path:
    """Where `improved-nnunet train` put the variant's model (nnU-Net's TRAINER__PLANS__CONFIG naming)."""
    from ImprovedNNUNetTrainingLib.engine.registry import get_variant

    return folders.results / DATASET / f"{get_variant(variant).__name__}__nnUNetPlans__{settings.configuration}"


def predict_step(folders: DemoFolders, settings: DemoSettings, dataset: BrainDataset, variant: str) -> None:
    done_prefixes = tuple(f"{case}: " for case in dataset.test_cases)  # predict's line after each case
    with tqdm(total=len(dataset.test_cases), desc=f"predict {variant}", unit="case") as bar:
        run_cli(["predict", "-i", str(dataset.images_ts), "-o", str(folders.predictions(variant)),
                 "-m", str(model_folder(folders, settings, variant)), "--folds", settings.fold, "--device", "cpu"],
                folders.logs / f"predict_{variant}.log", folders.environment(),
                on_log=lambda line: bar.update() if line.startswith(done_prefixes) else None)


def evaluate_step(folders: DemoFolders, settings: DemoSettings, dataset: BrainDataset, variant: str) -> dict:
    out = folders.evaluation(variant)
    with tqdm(total=1, desc=f"evaluate {variant}", unit="run") as bar:
        run_cli(["evaluate", str(folders.predictions(variant)), str(dataset.labels_ts),
                 "--labels", str(dataset.folder / "dataset.json"), "--tau", str(settings.tau_mm), "--out", str(out)],
                folders.logs / f"evaluate_{variant}.log", folders.environment())
        bar.update()
    return json.loads((out / "summary.json").read_text())


def overlay_step(folders: DemoFolders, dataset: BrainDataset, runs: list[VariantRun]) -> None:
    from ImprovedNNUNetLib.core.imageio import read_image
    from ImprovedNNUNetLib.evaluation import error_maps

    with tqdm(total=len(dataset.test_cases) * len(runs), desc="FP/FN pictures", unit="png") as bar:
        for case in dataset.test_cases:
            t1, reference = read_image(dataset.test_image(case)), read_image(dataset.test_label(case))
            predictions = [read_image(folders.predictions(run.variant) / f"{case}{FILE_ENDING}") for run in runs]
            maps = [error_maps(prediction, reference, sorted(LABEL_NAMES)) for prediction in predictions]
            z = busiest_slice(maps)
            for run, prediction, case_maps in zip(runs, predictions, maps):
                run.overlays[case] = overlay_png(t1, prediction, case_maps,
                                                 folders.overlays / f"{run.variant}_{case}.png",
                                                 f"{run.variant}: {case}", LABEL_NAMES, slice_index=z,
                                                 reference=reference)
                bar.update()


def run_brain_demo(out: Path, settings: DemoSettings = DemoSettings()) -> Path:
    """Run every step into the folder ``out`` (made by the caller); returns the path of ``report.md``."""
    from ImprovedNNUNetTrainingLib.engine.environment import cores_present

    folders = DemoFolders(out)
    timer = Timer()
    start = time.perf_counter()
    with timer.step("build the brain-tissue dataset"):
        dataset = build_step(folders, settings)
    with timer.step("plan and preprocess"):
        prepare_step(folders, settings)
    runs = []
    for variant in settings.variants:
        with timer.step(f"train {variant}"):
            train_step(folders, settings, variant)
        with timer.step(f"predict {variant}"):
            predict_step(folders, settings, dataset, variant)
        with timer.step(f"evaluate {variant}"):
            runs.append(VariantRun(variant, evaluate_step(folders, settings, dataset, variant)))
    with timer.step("FP/FN pictures"):
        overlay_step(folders, dataset, runs)
    timer.seconds["total of the brain step"] = time.perf_counter() - start
    facts = DemoFacts(
        dataset=f"{settings.data.resolution_mm} mm, {settings.data.num_slabs} slabs",
        train_cases=dataset.train_cases, test_cases=dataset.test_cases, configuration=settings.configuration,
        epochs=settings.epochs, iterations=settings.iterations, label_names=LABEL_NAMES, tau_mm=settings.tau_mm,
        extra_lines=[f"Fold {settings.fold} of nnU-Net's 5-fold split of the training slabs; device: CPU "
                     f"({cores_present()} cores). Timings exclude installing the environment."],
    )
    report = write_report(facts, runs, timer.seconds, folders.root)
    print(f"\nreport: {report}")
    return report
