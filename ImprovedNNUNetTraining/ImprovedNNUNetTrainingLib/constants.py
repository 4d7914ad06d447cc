"""Names and defaults the command line needs without importing torch or nnU-Net."""

VARIANT_NAMES = ("baseline", "loss", "deepsup", "augment", "improved", "sdm", "msf", "msf_deep")
CONFIGURATIONS = ("3d_fullres", "2d", "3d_lowres")
DEFAULT_CHECKPOINT_EVERY = 5
