"""Standard (SNOMED CT) terminology entries for structure names a model commonly uses (the scene's segment tags,
the model cards of exported models, DICOM SEG segments), and the labels' display colours.

The entries are Slicer's serialized terminology strings (the "TerminologyEntry" segment
tag), in the form Slicer writes into `.seg.nrrd` files, so Slicer shows the standard
name and code for a segment whose model label has one of these names.
"""
from __future__ import annotations

import colorsys

from ImprovedNNUNetLib.evaluation.names import normalise_name

_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
_STRUCTURE = "SCT^123037004^Anatomical Structure"
_RIGHT = "SCT^24028007^Right"
_LEFT = "SCT^7771000^Left"

# normalised name -> (category, type, modifier)
_KNOWN = {
    "ribs": (_STRUCTURE, "SCT^113197003^Rib", "^^"),
    "rib": (_STRUCTURE, "SCT^113197003^Rib", "^^"),
    "cervical vertebral column": (_STRUCTURE, "SCT^122494005^Cervical spine", "^^"),
    "cervical spine": (_STRUCTURE, "SCT^122494005^Cervical spine", "^^"),
    "thoracic vertebral column": (_STRUCTURE, "SCT^122495006^Thoracic spine", "^^"),
    "thoracic spine": (_STRUCTURE, "SCT^122495006^Thoracic spine", "^^"),
    "lumbar vertebral column": (_STRUCTURE, "SCT^122496007^Lumbar spine", "^^"),
    "lumbar spine": (_STRUCTURE, "SCT^122496007^Lumbar spine", "^^"),
    "lung": (_STRUCTURE, "SCT^39607008^Lung", "^^"),
    "right lung": (_STRUCTURE, "SCT^39607008^Lung", _RIGHT),
    "left lung": (_STRUCTURE, "SCT^39607008^Lung", _LEFT),
    "tissue": ("SCT^85756007^Tissue", "SCT^85756007^Tissue", "^^"),
    "liver": (_STRUCTURE, "SCT^10200004^Liver", "^^"),
    "spleen": (_STRUCTURE, "SCT^78961009^Spleen", "^^"),
    "kidney": (_STRUCTURE, "SCT^64033007^Kidney", "^^"),
    "right kidney": (_STRUCTURE, "SCT^64033007^Kidney", _RIGHT),
    "left kidney": (_STRUCTURE, "SCT^64033007^Kidney", _LEFT),
    "heart": (_STRUCTURE, "SCT^80891009^Heart", "^^"),
    "pancreas": (_STRUCTURE, "SCT^15776009^Pancreas", "^^"),
    "aorta": (_STRUCTURE, "SCT^15825003^Aorta", "^^"),
    "brain": (_STRUCTURE, "SCT^12738006^Brain", "^^"),
}


def terminology_entry(name: str) -> str | None:
    """Slicer terminology string for a known structure name, else None."""
    known = _KNOWN.get(normalise_name(name))
    if known is None:
        return None
    category, type_, modifier = known
    return f"{_CONTEXT}~{category}~{type_}~{modifier}~{_ANATOMIC_CONTEXT}~^^~^^"


def terminology_codes(name: str) -> dict | None:
    """``{"category", "type", "modifier"}`` as SCT^code^meaning texts for a known structure name, else None."""
    known = _KNOWN.get(normalise_name(name))
    if known is None:
        return None
    category, type_, modifier = known
    return {"category": category, "type": type_, "modifier": modifier if modifier != "^^" else None}


# Kelly's colours of maximum contrast (white and black left out), as RGB in [0, 1].
_KELLY = (
    "F3C300", "875692", "F38400", "A1CAF1", "BE0032", "C2B280", "848482", "008856", "E68FAC", "0067A5",
    "F99379", "604E97", "F6A600", "B3446C", "DCD300", "882D17", "8DB600", "654522", "E25822", "2B3D26",
)
PALETTE = tuple(tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)) for h in _KELLY)


def distinct_color(index: int) -> tuple[float, float, float]:
    """The ``index``-th colour: Kelly's palette, then hues spaced by the golden angle."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.75, 0.55 + 0.4 * ((index // len(PALETTE)) % 2))
