"""Compute per arm of a study, from each training's ``compute.json``: the "Revisited" question (Isensee et al.,
MICCAI 2024) — did the arms get the same compute?"""
from __future__ import annotations

import json

from ImprovedNNUNetTrainingLib.analysis.study.spec import Study
from ImprovedNNUNetTrainingLib.analysis.study.trainings import trainings
from ImprovedNNUNetTrainingLib.engine.compute import COMPUTE_FILE

MAX_DIFFERENCE = 0.20  # arms whose compute differs from the baseline's by more than this are flagged
COLUMNS = ("arm", "trainings", "wall_h", "gpu_hours", "peak_memory_mb", "mean_epoch_s", "parameters", "plans")


def arm_compute(study: Study) -> dict[str, dict]:
    """Per arm: trainings with a record, total wall hours and GPU-hours, the largest peak memory, the mean epoch
    time, the parameter count and plans (of its first training)."""
    records: dict[str, list[dict]] = {arm.name: [] for arm in study.arms}
    for training in trainings(study):
        path = training.folder / COMPUTE_FILE
        try:
            records[training.arm.name].append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    out = {}
    for arm, found in records.items():
        if not found:
            continue
        epochs = [t for r in found for run in r["runs"] for t in run["epoch_time_s"]]
        out[arm] = {"arm": arm, "trainings": len(found), "wall_h": sum(r["wall_s"] for r in found) / 3600,
                    "gpu_hours": sum(r["gpu_hours"] for r in found),
                    "peak_memory_mb": max(r["peak_memory_mb"] for r in found), "memory": found[0]["memory"],
                    "mean_epoch_s": sum(epochs) / len(epochs) if epochs else float("nan"),
                    "parameters": found[0]["parameters"], "plans": found[0]["plans"]}
    return out


def compute_warnings(compute: dict[str, dict], baseline: str) -> list[str]:
    """A sentence per arm whose compute (GPU-hours, or wall time on the CPU) per training differs from the
    baseline's by more than MAX_DIFFERENCE."""
    base = compute.get(baseline)
    if base is None:
        return []
    key = "gpu_hours" if base["gpu_hours"] > 0 else "wall_h"
    reference = base[key] / base["trainings"]
    lines = []
    for arm, c in compute.items():
        if arm == baseline or not reference:
            continue
        ratio = (c[key] / c["trainings"]) / reference
        if abs(ratio - 1) > MAX_DIFFERENCE:
            what = "GPU-hours" if key == "gpu_hours" else "wall time"
            lines.append(f"`{arm}` used {ratio:.2f}× the {what} per training of `{baseline}`: a difference between "
                         f"them may come from compute as much as from the method (compare at matched compute)")
    return lines


def compute_lines(compute: dict[str, dict], baseline: str) -> list[str]:
    """The report's compute table (markdown) and its warnings."""
    if not compute:
        return []
    memory = next(iter(compute.values()))["memory"]
    lines = ["", f"Compute per arm (all its trainings; peak memory: {memory}):", "",
             "| arm | trainings | wall (h) | GPU-hours | peak memory (MB) | mean epoch (s) | parameters | plans |",
             "|---|---|---|---|---|---|---|---|"]
    for c in compute.values():
        lines.append(f"| {c['arm']} | {c['trainings']} | {c['wall_h']:.3f} | {c['gpu_hours']:.3f} | "
                     f"{c['peak_memory_mb']:.0f} | {c['mean_epoch_s']:.2f} | {c['parameters']:,} | {c['plans']} |")
    warnings = compute_warnings(compute, baseline)
    return lines + ([""] + [f"**Compute differs:** {w}." for w in warnings] if warnings else [])
