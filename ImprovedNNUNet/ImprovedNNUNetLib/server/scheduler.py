"""Running the server's queued jobs: one job per slot (a GPU of ``--gpus``, or the CPU), the rest wait.

Each job's steps are ``improved-nnunet`` commands (a segmentation: ``predict``; a training: the Training
panel's own steps, ``prepare`` when the dataset is not planned yet and ``train`` per fold with the one
``train`` command builder and the one fold status, so Resume continues what is on disk). Each runs as a
:class:`~ImprovedNNUNetLib.core.process.ChildProcess` (the one start/stop policy: its own process group,
SIGTERM to the tree on cancel, SIGKILL after the grace period) in the job's folder, its output appended to the
job's ``output.log``, which the API reads for progress events. The loop runs on one thread of the server
process; it only starts, polls and stops children, so it never holds the server up.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.process import ChildProcess, child_environment, cli_command
from ImprovedNNUNetLib.server.files import ServerFolder
from ImprovedNNUNetLib.server.store import Job, Store

POLL_S = 0.3
PURGE_EVERY_S = 3600.0  # with a retention: how often old uploads and job files are looked for
LOG = "output.log"
STEP_KEY = "improved_nnunet_step"  # a JSON line of the log that starts a step (not an event: no stage)


def slots_for(gpus: str | None) -> list[str]:
    """``--gpus 0,1`` -> ["cuda:0", "cuda:1"]; none -> ["cpu"] (one job at a time on the CPU)."""
    if not gpus:
        return ["cpu"]
    indices = [part.strip() for part in str(gpus).split(",") if part.strip()]
    if not indices or not all(index.isdigit() for index in indices):
        raise UserError(f"--gpus {gpus}: give GPU indices such as 0 or 0,1")
    return [f"cuda:{index}" for index in dict.fromkeys(indices)]


def last_error(log: Path) -> str:
    """The child's last error line (our commands print one line starting with 'improved-nnunet: error'), else
    its last line."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if "error" in line.lower() and not line.startswith("{")]
    return (errors or lines or [""])[-1][:500]


class Scheduler:
    """Starts queued jobs on free slots, follows them, cancels on request."""

    def __init__(self, store: Store, folder: ServerFolder, slots: list[str], folders: dict[str, str],
                 keep_days: float | None = None):
        self.store = store
        self.keep_days = keep_days  # the retention (serve --keep-days); None keeps everything
        self._purged_at = None
        self.folder = folder
        self.slots = slots
        self.folders = folders  # nnU-Net's folder variables and the models folder of this server
        self.running: dict[int, tuple[Job, ChildProcess, list, int]] = {}  # job id -> (job, process, steps, step)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="improved-nnunet-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Server shutdown: every running job's process tree is stopped (a training stays resumable)."""
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            for job_id, (_, process, _, _) in list(self.running.items()):
                process.cancel()
                self.store.finish(job_id, "interrupted", "the server stopped; resume the job", process.returncode)
            self.running.clear()

    def cancel(self, job: Job) -> None:
        with self._lock:
            if job.id in self.running:
                self.running[job.id][1].cancel_in_background()
                self.store.update(job.id, message="cancelling")
            elif job.state == "queued":
                self.store.finish(job.id, "cancelled", "cancelled before it started")

    # -- the loop ------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._follow()
                    self._fill()
                self._purge_when_due()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad job; the job says why
                print(f"improved-nnunet serve: scheduler: {exc}", flush=True)
            self._stop.wait(POLL_S)

    def _purge_when_due(self) -> None:
        """With a retention: remove what has outlived it, when the server starts and then every hour."""
        if self.keep_days is None or (self._purged_at is not None and time.monotonic() - self._purged_at < PURGE_EVERY_S):
            return
        from ImprovedNNUNetLib.server.retention import purge

        self._purged_at = time.monotonic()
        purged = purge(self.store, self.folder, self.keep_days)
        if purged.uploads or purged.jobs:
            print(f"improved-nnunet serve: retention {self.keep_days:g} days: {purged.text()}", flush=True)

    def _free_slots(self) -> list[str]:
        busy = {job.slot for job, _, _, _ in self.running.values()}
        return [slot for slot in self.slots if slot not in busy]

    def _fill(self) -> None:
        for slot in self._free_slots():
            job = self.store.claim_next(slot)
            if job is None:
                return
            try:
                steps = self.steps(job, slot)
            except UserError as exc:
                self.store.finish(job.id, "failed", str(exc))
                continue
            if not steps:
                self.store.finish(job.id, "done", "nothing left to run")
                continue
            self._start_step(job, steps, 0)

    def _start_step(self, job: Job, steps: list, index: int) -> None:
        folder = self.folder.job_folder(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        step = steps[index]
        with open(folder / LOG, "a", encoding="utf-8") as log:  # the step marker the events route reads
            log.write(json.dumps({STEP_KEY: index, "title": step["title"], "fold": step["fold"],
                                  "command": "improved-nnunet " + " ".join(step["arguments"])}) + "\n")
        environment = dict(self.folders)
        if job.slot and job.slot.startswith("cuda:"):
            environment["CUDA_VISIBLE_DEVICES"] = job.slot.split(":", 1)[1]
        process = ChildProcess.start(cli_command(*step["arguments"]), env=child_environment(environment), cwd=folder,
                                     log_path=folder / LOG)
        self.store.update(job.id, pid=process.pid)
        self.running[job.id] = (job, process, steps, index)

    def _follow(self) -> None:
        for job_id, (job, process, steps, index) in list(self.running.items()):
            if not process.poll().finished:  # polling also advances a cancel (SIGKILL after the grace period)
                continue
            del self.running[job_id]
            log = self.folder.job_folder(job_id) / LOG
            if process.cancelled:
                self.store.finish(job_id, "cancelled", "cancelled; a training can be resumed", process.returncode)
            elif process.returncode != 0:
                self.store.finish(job_id, "failed", last_error(log) or f"exit status {process.returncode}",
                                  process.returncode)
            elif index + 1 < len(steps):
                self._start_step(job, steps, index + 1)
            else:
                self._collect(job)
                self.store.finish(job_id, "done", "", 0)

    def _collect(self, job: Job) -> None:
        """A finished study's report (report.md, table.csv, tests.csv, plots) among the job's results."""
        if job.kind != "study":
            return
        report = Path(self.folders["nnUNet_results"]) / job.spec["dataset"] / "studies" / job.spec["name"] / "report"
        outputs = self.folder.job_folder(job.id) / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        for path in sorted(report.glob("*")) if report.is_dir() else []:
            if path.is_file():
                shutil.copyfile(path, outputs / path.name)

    # -- what a job runs -----------------------------------------------------------------------------------
    def device(self, slot: str) -> str:
        return "cuda" if slot.startswith("cuda:") else "cpu"

    def steps(self, job: Job, slot: str) -> list[dict]:
        """The job's steps, run one after another: ``{"title", "fold", "arguments"}`` (the arguments after
        ``improved-nnunet``)."""
        spec = job.spec
        if job.kind == "segment":
            folder = self.folder.job_folder(job.id)
            arguments = ["predict", "-i", str(folder / "inputs"), "-o", str(folder / "outputs"),
                         "-m", spec["_model_path"], "--device", self.device(slot)]
            if spec.get("folds"):
                arguments += ["--folds", *[str(fold) for fold in spec["folds"]]]
            if spec.get("tta") is False:
                arguments.append("--no-tta")
            for flag in ("sdm", "probabilities", "uncertainty"):
                if spec.get(flag):
                    arguments.append(f"--{flag}")
            return [{"title": "segment", "fold": None, "arguments": arguments}]
        if job.kind == "evaluate":
            return [{"title": "evaluate", "fold": None, "arguments": evaluate_arguments(self.folder.job_folder(job.id),
                                                                                       spec)}]
        if job.kind == "study":
            return [{"title": "study", "fold": None, "arguments": study_arguments(spec, slot)}]
        return [{"title": step.title, "fold": step.fold, "arguments": step.arguments}
                for step in self.training_request(spec, slot).steps(bool(spec.get("resume")))]

    def training_request(self, spec: dict, slot: str = "cpu"):
        """The Training panel's request for a training job (its checks, steps and model folder)."""
        from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest

        return TrainingRequest(dataset=spec["dataset"], variant=spec.get("variant", "improved"),
                               configuration=spec.get("configuration", "3d_fullres"), folds=list(spec.get("folds", [0])),
                               device=self.device(slot), epochs=spec.get("epochs"),
                               iterations_per_epoch=spec.get("iterations_per_epoch"),
                               validation_iterations_per_epoch=spec.get("validation_iterations_per_epoch"),
                               hyperparameters=dict(spec.get("hyperparameters") or {}),
                               overwrite=bool(spec.get("overwrite")), planner=spec.get("planner", "ExperimentPlanner"),
                               folders={k: v for k, v in self.folders.items() if k.startswith("nnUNet_")})


def evaluate_arguments(folder: Path, spec: dict) -> list[str]:
    """``evaluate`` of the job's two inputs (``inputs/prediction*`` and ``inputs/reference*``) into its outputs."""
    inputs = folder / "inputs"
    prediction, reference = (next(inputs.glob(f"{side}.*")) for side in ("prediction", "reference"))
    arguments = ["evaluate", str(prediction), str(reference), "--out", str(folder / "outputs")]
    tau = spec.get("tau")
    if isinstance(tau, dict):
        arguments.append("--tau=" + ",".join(f"{float(v)!r}" if k == "default" else f"{int(k)}={float(v)!r}"
                                             for k, v in tau.items()))
    elif tau is not None:
        arguments.append(f"--tau={float(tau)!r}")
    if spec.get("profile"):
        arguments.append(f"--profile={spec['profile']}")
    if spec.get("metrics"):
        arguments.append("--metrics=" + ",".join(spec["metrics"]))
    if spec.get("instances"):
        arguments.append("--instances")
    for option in ("connectivity", "match_iou"):
        if spec.get(option) is not None:
            arguments.append(f"--{option.replace('_', '-')}={spec[option]!r}")
    if spec.get("size_bins"):
        arguments.append("--size-bins=" + ",".join(repr(float(b)) for b in spec["size_bins"]))
    if (inputs / "labels.json").is_file():
        arguments += ["--labels", str(inputs / "labels.json")]
    return arguments


def study_arguments(spec: dict, slot: str) -> list[str]:
    """``study run`` of a study job on this slot (a GPU slot's one visible GPU, or the CPU); arms as ``--arm=``
    so that no value can pass for an option."""
    arguments = ["study", "run", spec["dataset"], f"--name={spec['name']}", "--device",
                 "cuda" if slot.startswith("cuda:") else "cpu", f"--executor={spec.get('executor', 'local')}"]
    arguments += [f"--arm={arm}" for arm in spec["arms"]]
    for option in ("folds", "epochs", "iters_per_epoch", "val_iters_per_epoch", "configuration", "plans", "repeats"):
        if spec.get(option) is not None:
            arguments.append(f"--{'config' if option == 'configuration' else option.replace('_', '-')}={spec[option]}")
    if slot.startswith("cuda:") and spec.get("executor", "local") == "local":
        arguments.append("--gpus=0")  # the slot's GPU is the only one the job sees
    return arguments


def stop_orphans(store: Store, folder: ServerFolder, job_ids: list[int]) -> None:
    """A server killed hard leaves its children running; on restart, the children of the jobs it had running
    (recognised by their working folder, the job's own) are stopped before anything else starts."""
    import psutil

    for job_id in job_ids:
        job = store.job(job_id)
        if job is None or not job.pid:
            continue
        try:
            process = psutil.Process(job.pid)
            if Path(process.cwd()).resolve() != folder.job_folder(job_id).resolve():
                continue
            tree = [process, *process.children(recursive=True)]
        except (psutil.Error, OSError):
            continue
        for member in tree:
            try:
                member.terminate()
            except psutil.Error:
                pass
        gone, alive = psutil.wait_procs(tree, timeout=30)
        for member in alive:
            try:
                member.kill()
            except psutil.Error:
                pass
