"""In-memory inference with trained nnU-Net models of every ImprovedNNUNet variant and stock nnU-Net.

``load_model(folder, folds=None, device="auto")`` returns a ``LoadedModel`` whose
``predict(channels, ...)`` gives a ``PredictionResult`` on the input's exact grid.

torch and nnU-Net are imported on first use of ``load_model``/``LoadedModel``, so reading a
model folder's metadata (``open_model_folder``) stays light.
"""
from ImprovedNNUNetLib.inference.model_folder import DEFAULT_CHECKPOINT, ModelFolder, open_model_folder

__all__ = ["DEFAULT_CHECKPOINT", "LoadedModel", "ModelFolder", "PredictionResult", "load_model",
           "open_model_folder"]
_HEAVY = {"LoadedModel": ".model", "load_model": ".model", "PredictionResult": ".outputs"}


def __getattr__(name):
    if name in _HEAVY:
        import importlib

        return getattr(importlib.import_module(_HEAVY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
