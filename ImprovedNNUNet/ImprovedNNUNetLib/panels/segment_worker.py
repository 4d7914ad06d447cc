"""Child-process entry that segments one case: ``python -m ImprovedNNUNetLib.panels.segment_worker REQUEST.json``.

The request (written by `segment_job`) names the model folder, folds, device, mirroring,
tile step, whether distance maps are wanted, the input channel files and the output
folder. Progress goes to stdout as one JSON object per line:

* ``{"stage": "loading"}`` while the model loads, then ``{"stage": "loaded", "device": ..., "note": ...}``;
* ``{"stage": "predicting", "done": tiles_done, "total": tiles_total}`` after every tile;
* ``{"stage": "done", "segmentation": FILE, "distance_maps": {label name: FILE}, "uncertainty": FILE or null}``
  at the end;
* ``{"stage": "error", "message": ...}`` for a bad input or environment (exit status 2).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError, describe_os_error
from ImprovedNNUNetLib.core.events import event_line
from ImprovedNNUNetLib.core.imageio import read_image, write_image

SEGMENTATION_FILE = "segmentation.nii.gz"
UNCERTAINTY_FILE = "uncertainty.nii.gz"


def emit(stage: str, **values) -> None:
    print(event_line(stage, **values), flush=True)


def distance_map_file(index: int) -> str:
    return f"distance_{index:03d}.nii.gz"


def run(request: dict) -> dict:
    """Segment the request's inputs and write the outputs; returns the final event."""
    from ImprovedNNUNetLib.inference import load_model

    emit(stage="loading")
    model = load_model(request["model"], folds=request.get("folds"), device=request.get("device", "auto"))
    emit(stage="loaded", device=str(model.device), note=model.device_note)
    channels = [read_image(path) for path in request["inputs"]]
    result = model.predict(
        channels,
        tta=request.get("tta"),
        step=float(request.get("step", 0.5)),
        sdm=bool(request.get("distance_maps")),
        progress=lambda done, total: emit(stage="predicting", done=done, total=total),
        uncertainty=bool(request.get("uncertainty")),
    )
    out = Path(request["output_dir"])
    segmentation = write_image(result.segmentation, out / SEGMENTATION_FILE)
    distance_maps = {
        name: str(write_image(image, out / distance_map_file(index)))
        for index, (name, image) in enumerate((result.distance_maps or {}).items())
    }
    uncertainty = str(write_image(result.uncertainty, out / UNCERTAINTY_FILE)) if result.uncertainty is not None else None
    return {"stage": "done", "segmentation": str(segmentation), "distance_maps": distance_maps,
            "uncertainty": uncertainty}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m ImprovedNNUNetLib.panels.segment_worker REQUEST.json", file=sys.stderr)
        return 2
    try:
        emit(**run(json.loads(Path(argv[0]).read_text())))
    except (UserError, OSError) as exc:  # OSError: full disk or an unwritable work folder
        message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        emit(stage="error", message=message)
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
