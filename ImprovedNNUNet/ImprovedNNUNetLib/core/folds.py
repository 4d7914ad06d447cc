"""Fold choices as users write them ("0", "0,1,2", "1 3", "all"), read the same way by every face."""
from __future__ import annotations

from ImprovedNNUNetLib.core.errors import UserError

ALL = "all"  # nnU-Net's fold_all: one model trained on every case


def as_fold(value) -> int | str:
    """One fold: a non-negative fold number or ``"all"``; a one-line ``UserError`` otherwise."""
    text = str(value).strip()
    if text == ALL:
        return ALL
    if text.isdigit():
        return int(text)
    raise UserError(f"fold {value!r} is not a fold number; give numbers such as 0, 1, 2, or all")


def parse_folds(text, *, empty=None) -> list | None:
    """``"0, 2"`` / ``"0,2"`` / ``"0 2"`` -> [0, 2]; ``"all"`` -> ["all"]; repeats dropped, order kept.
    Empty text gives ``empty`` (None: "every trained fold" where the caller allows it)."""
    parts = [part for part in str(text).replace(",", " ").split() if part]
    if not parts:
        return empty
    return list(dict.fromkeys(as_fold(part) for part in parts))


def required_folds(text) -> list:
    """``parse_folds`` for a choice that must name at least one fold (training, studies)."""
    folds = parse_folds(text)
    if not folds:
        raise UserError(f"folds {str(text)!r}: write fold numbers separated by commas (e.g. 0,1,2) or all")
    return folds
