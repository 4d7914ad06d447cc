"""Comparing structure names the way users write them."""
import re


def normalise_name(name: str) -> str:
    """Case-folded name with runs of spaces, underscores and hyphens made one space."""
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()
