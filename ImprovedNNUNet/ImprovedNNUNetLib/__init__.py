"""ImprovedNNUNet core: evaluation, inference and model management (no Qt, no slicer.app)."""
