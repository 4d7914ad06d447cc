"""Standard (SNOMED CT) terminology entries for structure names a model commonly uses (the scene's segment tags
and the model cards of exported models).

The entries are Slicer's serialized terminology strings (the "TerminologyEntry" segment
tag), in the form Slicer writes into `.seg.nrrd` files, so Slicer shows the standard
name and code for a segment whose model label has one of these names.
"""
from __future__ import annotations

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
