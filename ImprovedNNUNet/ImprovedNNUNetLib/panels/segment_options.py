"""Turning the panel's text choices into `SegmentJob` arguments."""
from __future__ import annotations

from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folds import parse_folds  # noqa: F401 - the panel reads its fold text through this module
from ImprovedNNUNetLib.inference.models import resolve_model

MIRRORING = {"auto": None, "on": True, "off": False}


def parse_mirroring(text: str) -> bool | None:
    """Test-time mirroring: ``auto`` (on with CUDA only) -> None, ``on`` -> True, ``off`` -> False."""
    try:
        return MIRRORING[text.strip().lower()]
    except KeyError:
        raise UserError(f"mirroring {text!r} is unknown; choose auto, on or off") from None


def model_choice(installed_name: str, folder: str | Path | None) -> Path:
    """The model folder: ``folder`` when given, else the imported model ``installed_name``.

    An empty folder field (None, "" or ".") counts as not given.
    """
    if folder is not None and str(folder).strip() not in ("", "."):
        return resolve_model(Path(folder))
    if installed_name:
        return resolve_model(installed_name)
    raise UserError("no model chosen; pick an imported model or a trained model folder "
                    "(dataset.json, plans.json, fold_N)")
