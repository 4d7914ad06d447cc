"""The demo's output folder: created fresh, replaced only when asked and only if a demo made it."""
from __future__ import annotations

import shutil
from pathlib import Path

from ImprovedNNUNetLib.errors import UserError

MARKER = ".improved-nnunet-demo"  # written into every output folder the demo creates


def claim_output(out: Path, overwrite: bool) -> None:
    """Create the output folder; with ``overwrite`` replace an earlier demo output (only that)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise UserError(f"{out} exists and was not made by the demo, so it is never replaced; "
                            "choose another --out folder")
        if not overwrite:
            raise UserError(f"{out} holds an earlier demo run; pass --overwrite to replace it "
                            "or choose another --out folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by Scripts/demo.py; `--overwrite` may replace this folder\n")
