"""The demo's output folder: replaced only when asked, and then only what an earlier demo run wrote.

Every file the demo writes is recorded in the folder's output manifest
(``ImprovedNNUNetLib.core.manifest``); ``--overwrite`` deletes exactly those files (unchanged since),
so anything a user put into the folder stays.
"""
from __future__ import annotations

from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.manifest import FILE_NAME, Outputs

COMMAND = "demo"


def user_files(out: Path, outputs: Outputs) -> set[Path]:
    """Files in ``out`` that the demo did not write (they are never touched)."""
    if not out.is_dir():
        return set()
    return {p for p in out.rglob("*") if p.is_file() and p != out / FILE_NAME and not outputs.owns(p)}


def claim_output(out: Path, overwrite: bool) -> set[Path]:
    """Make ``out`` ready for a demo run; returns the files in it that are not the demo's.

    An earlier demo's outputs are removed with ``overwrite`` (only those, see :func:`record_outputs`);
    without it an earlier run is an error. Other files in the folder stay as they are. A folder the
    demo never wrote into must be empty, and a demo output the user edited is never replaced.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the demo's outputs")
    outputs = Outputs(out, COMMAND)
    if outputs.files:
        if not overwrite:
            raise UserError(f"{out} holds an earlier demo run; pass --overwrite to replace it (only the demo's "
                            "files) or choose another --out folder")
        edited = [out / key for key in sorted(outputs.files) if (out / key).exists() and not outputs.owns(out / key)]
        if edited:
            raise UserError(f"{edited[0]} was changed after the demo wrote it ({len(edited)} such file(s)); move "
                            "your version elsewhere, then run again (the demo would write it anew)")
        outputs.remove_previous()
    elif out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out} holds files that were not made by the demo, so it is not used; "
                        "choose another --out folder (or an empty one)")
    out.mkdir(parents=True, exist_ok=True)
    return user_files(out, outputs)


def record_outputs(out: Path, before: set[Path]) -> None:
    """Record every file in ``out`` except those that were there before the run (the user's)."""
    outputs = Outputs(out, COMMAND)
    outputs.record(*(p for p in Path(out).rglob("*") if p.is_file() and p != Path(out) / FILE_NAME and p not in before))
    outputs.save()
