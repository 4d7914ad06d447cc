"""`train` output for people: a progress bar per epoch (on a terminal), one summary line per epoch and a
line per stage; nnU-Net's log stays in its log file; `--json` gives the machine events instead."""
import io
import os
import subprocess
import sys

from ImprovedNNUNetTrainingLib.engine.progress import HumanReporter, ProgressReporter, parse_event, read_events


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_human_reporter_draws_a_bar_and_one_line_per_epoch(tmp_path):
    out, bar = io.StringIO(), Terminal()
    reporter = HumanReporter(tmp_path / "progress.jsonl", stream=out, bar_stream=bar)
    reporter.emit("training", epoch=0, num_epochs=3, iteration=0, num_iterations=10, message="training on CPU")
    reporter.emit("training", epoch=0, num_epochs=3, iteration=4, num_iterations=10, train_loss=0.5, eta_s=None)
    reporter.emit("training", epoch=0, num_epochs=3, iteration=10, num_iterations=10, train_loss=0.45,
                  val_loss=0.4, pseudo_dice=0.61, lr=0.01, epoch_time_s=12.5, eta_s=25.0)
    reporter.emit("error", message="something")
    reporter.emit("done", message="validation mean foreground Dice 0.7000")
    assert out.getvalue().splitlines() == [
        "training: training on CPU",
        "epoch 1/3: train loss 0.4500, val loss 0.4000, pseudo Dice 0.6100, lr 0.01000, 12 s, ETA 25 s",
        "done: validation mean foreground Dice 0.7000"]
    assert "epoch 1/3" in bar.getvalue() and "4/10" in bar.getvalue() and "loss 0.5000" in bar.getvalue()
    assert [e["stage"] for e in read_events(tmp_path / "progress.jsonl")] == ["training"] * 3 + ["error", "done"]


def test_without_a_terminal_there_is_no_bar_and_no_error():
    out, log = io.StringIO(), io.StringIO()  # not terminals (as in a pipe or a log file)
    reporter = HumanReporter(stream=out, bar_stream=log)
    for iteration in (1, 2):
        reporter.emit("training", epoch=0, num_epochs=2, iteration=iteration, num_iterations=3, train_loss=0.5)
    reporter.emit("training", epoch=1, num_epochs=2, iteration=1, num_iterations=3, train_loss=0.4)
    assert out.getvalue() == "" and log.getvalue() == ""


def test_json_reporter_writes_parseable_lines():
    out = io.StringIO()
    ProgressReporter(stream=out).emit("planning", message="x")
    assert parse_event(out.getvalue())["message"] == "x"


def run_train(tiny_dataset, tmp_path, *extra):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), nnUNet_n_proc_DA="0")
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "train", tiny_dataset.name, "--variant",
                           "baseline", "--epochs", "2", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1",
                           "--device", "cpu", "--no-validation", *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def test_train_prints_for_people_by_default_and_json_on_request(tiny_dataset, tmp_path):
    ran = run_train(tiny_dataset, tmp_path)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert not any(parse_event(line) for line in lines), "no JSON events without --json"
    summaries = [line for line in lines if line.startswith("epoch ")]
    assert [s.split(":")[0] for s in summaries] == ["epoch 1/2", "epoch 2/2"]
    assert all("train loss" in s and "pseudo Dice" in s and "ETA" in s for s in summaries)
    assert lines[-1] == "done: finished"
    assert len(lines) <= 8, ran.stdout  # no settings dump, no nnU-Net log
    assert "This is the configuration used by this training" not in ran.stdout + ran.stderr
    fold = tmp_path / "results" / tiny_dataset.name / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "This is the configuration used by this training" in log  # nnU-Net's log is kept in its file
    assert [e["stage"] for e in read_events(fold / "progress.jsonl")][-1] == "done"

    ran = run_train(tiny_dataset, tmp_path, "--json", "--overwrite")
    assert ran.returncode == 0, ran.stderr
    events = [e for e in map(parse_event, ran.stdout.splitlines()) if e]
    assert [e["epoch"] for e in events if e["epoch_time_s"] is not None] == [0, 1] and events[-1]["stage"] == "done"


def test_an_undefined_validation_dice_is_explained():
    """nnU-Net's foreground mean is np.mean over the labels: one label empty on both sides of every validation
    case makes it NaN. The done line says so, names the label and gives the mean of the others."""
    from ImprovedNNUNetTrainingLib.engine.runner import done_message

    summary = {"foreground_mean": {"Dice": float("nan")},
               "mean": {"1": {"Dice": 0.5}, "2": {"Dice": float("nan")}, "3": {"Dice": 0.7}}}
    text = done_message(summary)
    assert "nan" not in text.lower().replace("undefined", "")
    assert "label(s) 2 are empty in both the prediction and the reference of every validation case" in text
    assert text.endswith("mean over the other labels 0.6000")
    assert done_message({"foreground_mean": {"Dice": 0.25}, "mean": {}}) == "validation mean foreground Dice 0.2500"
    assert done_message(None) == "finished"


def test_cancel_and_resume_speak_in_the_epoch_lines_numbers_and_keep_nnunets_prints_off_the_console(
        tiny_dataset, tmp_path):
    """Ctrl-C during the third epoch says "during epoch 3" (the epoch lines count from 1) once, on stderr; the
    resumed run starts with the same kind of line as a fresh one and nnU-Net's own prints after the resume
    ("Using device", "maybe some logging issue!? ...") go to nnunet_output.txt, not to the terminal."""
    import signal
    import time

    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), nnUNet_n_proc_DA="0", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ImprovedNNUNetLib", "train", tiny_dataset.name, "--variant", "baseline",
               "--epochs", "50", "--iters-per-epoch", "4", "--val-iters-per-epoch", "1", "--device", "cpu",
               "--no-validation"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 300
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("epoch 2/50"):
                break
            assert time.monotonic() < deadline
        os.killpg(process.pid, signal.SIGINT)
        rest, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    lines += rest.splitlines()
    assert any(line.startswith("training: starting at epoch 1 of 50") for line in lines), lines
    last_epoch = max(int(line.split("/")[0].split()[1]) for line in lines if line.startswith("epoch "))
    assert not any("cancelled" in line for line in lines), "the cancel is said once, on stderr"
    assert f"cancelled by SIGINT during epoch {last_epoch + 1} of 50" in stderr.strip().splitlines()[-1]

    resumed = subprocess.run([*command, "--continue", "--change", "--epochs", str(last_epoch + 2)],
                             capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"training: resumed from checkpoint_latest.pth at epoch {last_epoch + 1} of {last_epoch + 2}" \
        in resumed.stdout
    assert "maybe some logging issue" not in resumed.stdout + resumed.stderr
    fold = tmp_path / "results" / tiny_dataset.name / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    captured = (fold / "nnunet_output.txt").read_text()
    # nnU-Net's prints go to the file; its "maybe some logging issue" line appears only when the interrupted epoch
    # had already logged its start before the checkpoint (a matter of where the SIGINT lands), so it is not required
    assert "Using device: cpu" in captured and "Using device" not in resumed.stdout + resumed.stderr
