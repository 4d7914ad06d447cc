"""What a training cost: wall time, GPU-hours, peak memory, epoch time, parameters (``compute.json``).

Written in the fold folder when a training ends (each run of a resumed training adds one entry; the totals
sum them). Peak memory is the GPU's peak allocated by PyTorch on CUDA, else the training process's peak
resident memory (CPU RSS). GPU-hours count one GPU per CUDA training (nnU-Net's single-GPU training).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

COMPUTE_FILE = "compute.json"


def peak_memory_mb(device) -> tuple[float, str]:
    """(peak MB, what was measured) of this process on ``device``."""
    import torch

    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20, "GPU (torch.cuda.max_memory_allocated)"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10), "CPU RSS (process peak)"


def parameter_count(network) -> int:
    from ImprovedNNUNetTrainingLib.trainers.network_utils import bare_network

    return int(sum(p.numel() for p in bare_network(network).parameters()))


def record_compute(trainer, folder: Path, started: float, epoch_times: list[float], plans: str) -> dict:
    """Add this run's cost to ``folder/compute.json`` and return the whole record."""
    from ImprovedNNUNetLib.core.safe_write import write_text_verified

    path = Path(folder) / COMPUTE_FILE
    try:
        record = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        record = {}
    device = trainer.device
    memory, measured = peak_memory_mb(device)
    wall = time.monotonic() - started
    cuda = getattr(device, "type", "") == "cuda"
    run = {"wall_s": round(wall, 3), "epochs": len(epoch_times), "epoch_time_s": [round(t, 3) for t in epoch_times],
           "device": str(device), "gpu_hours": round(wall / 3600, 6) if cuda else 0.0,
           "peak_memory_mb": round(memory, 1), "memory": measured}
    runs = [*record.get("runs", []), run]
    all_epochs = [t for r in runs for t in r["epoch_time_s"]]
    record = {"runs": runs, "parameters": parameter_count(trainer.network), "plans": plans,
              "configuration": trainer.configuration_name,
              "wall_s": round(sum(r["wall_s"] for r in runs), 3),
              "gpu_hours": round(sum(r["gpu_hours"] for r in runs), 6),
              "peak_memory_mb": max(r["peak_memory_mb"] for r in runs), "memory": measured,
              "mean_epoch_s": round(sum(all_epochs) / len(all_epochs), 3) if all_epochs else None,
              "epochs": len(all_epochs)}
    write_text_verified(path, json.dumps(record, indent=1) + "\n")
    return record
