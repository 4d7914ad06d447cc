"""Study recipes shipped with the project: the source papers' ablations as ready study files.

``improved-nnunet study recipes`` lists them, ``study recipes NAME`` prints one as a study file (JSON, to copy
and edit), and ``study run --recipe NAME DATASET`` runs it (the schedule, folds, plans and device come from the
command line as for any study). Arms use the variants' settings (``train --set``); the numbers are the papers'.
"""
from __future__ import annotations

import json

from ImprovedNNUNetLib.core.errors import UserError

RECIPES = {
    "wu-ablation": {
        "source": "Wu et al.: weighted Dice/CE loss, deep-supervision weights and stronger augmentation, each alone "
                  "and combined",
        "arms": [{"name": "baseline", "variant": "baseline"}, {"name": "loss", "variant": "loss"},
                 {"name": "deepsup", "variant": "deepsup"}, {"name": "augment", "variant": "augment"},
                 {"name": "improved", "variant": "improved"}],
    },
    "sdm-vs-baseline": {
        "source": "Wang and Zhang: the signed-distance-map head against stock nnU-Net",
        "arms": [{"name": "baseline", "variant": "baseline"}, {"name": "sdm", "variant": "sdm"}],
    },
    "msf-dilation": {
        "source": "He et al., Table 3: the MSF region's dilation radius 2, 5 and 10 voxels against nnU-Net",
        "arms": [{"name": "baseline", "variant": "baseline"}]
                + [{"name": f"msf_dilation{r}", "variant": "msf", "settings": {"msf_dilation_radius": r}}
                   for r in (2, 5, 10)],
    },
    "msf-weight": {
        "source": "He et al., Figure 4: the MSF loss weight λ = 0.5, 1, 10 and 100",
        "arms": [{"name": f"msf_weight{str(w).replace('.', '_')}", "variant": "msf", "settings": {"msf_weight": w}}
                 for w in (0.5, 1.0, 10.0, 100.0)],
    },
    "msf-stages": {
        "source": "He et al., Table 5: global loss only, global+MSF in both stages (stage 1 of length 0), and "
                  "global then global+MSF (the paper's choice). The table's 'global then MSF alone' is not a "
                  "setting of the msf variant, whose stage 2 always keeps the global loss",
        "arms": [{"name": "global", "variant": "baseline"},
                 {"name": "total_total", "variant": "msf", "settings": {"msf_stage1_fraction": 0.0}},
                 {"name": "global_total", "variant": "msf", "settings": {"msf_stage1_fraction": 0.5}}],
    },
}


def recipe(name: str) -> dict:
    """A recipe's study-file content (``name`` and ``arms``)."""
    if name not in RECIPES:
        raise UserError(f"no recipe {name!r}; `improved-nnunet study recipes` lists them: {', '.join(RECIPES)}")
    return {"name": name, "arms": [dict(arm) for arm in RECIPES[name]["arms"]]}


def listing() -> str:
    """One line per recipe: name, arms, source."""
    lines = []
    for name, entry in RECIPES.items():
        arms = ", ".join(arm["name"] for arm in entry["arms"])
        lines.append(f"{name:<16} {arms}\n{'':<16} {entry['source']}")
    return "\n".join(lines)


def study_file_text(name: str) -> str:
    """The recipe as a study file (JSON) to copy and edit; add ``dataset`` and run it with ``--file``."""
    return json.dumps({"dataset": "DATASET", **recipe(name)}, indent=2)
