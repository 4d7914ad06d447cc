"""clDice (Shit et al., CVPR 2021): overlap of each mask with the other's skeleton, for tubular structures.

clDice = 2·Tprec·Tsens / (Tprec + Tsens), Tprec = |P ∩ S(G)| / |S(G)|, Tsens = |G ∩ S(P)| / |S(P)|, with S the
skeleton of scikit-image (Zhang's method in 2-D, Lee's in 3-D), as the authors' reference code computes it.
Both empty: 1; one side empty: 0 (the project's empty-structure policy).
"""
from __future__ import annotations

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError


def skeleton(mask: np.ndarray) -> np.ndarray:
    try:
        from skimage.morphology import skeletonize
    except ImportError:
        raise UserError("clDice needs scikit-image (skeletons); install it (pip install scikit-image, or the "
                        "panel's Install button) or leave cldice out of --metrics") from None
    return skeletonize(mask).astype(bool)


def cldice(pred: np.ndarray, ref: np.ndarray) -> float:
    """clDice of two boolean masks of one label (a crop padded with background is enough)."""
    if not pred.any() and not ref.any():
        return 1.0
    if not pred.any() or not ref.any():
        return 0.0
    s_pred, s_ref = skeleton(pred), skeleton(ref)
    n_pred, n_ref = np.count_nonzero(s_pred), np.count_nonzero(s_ref)
    if not n_pred or not n_ref:
        return float("nan")
    tprec = np.count_nonzero(pred & s_ref) / n_ref
    tsens = np.count_nonzero(ref & s_pred) / n_pred
    return float(2 * tprec * tsens / (tprec + tsens)) if tprec + tsens else 0.0
