"""The user's folder of trained models: import (ZIP or folder, safe extraction), list, remove."""
from ImprovedNNUNetLib.inference.models.store import (
           ENV_VAR,
           StoredModel,
           import_model,
           list_models,
           models_root,
           remove_model,
           resolve_model,
)

__all__ = ["ENV_VAR", "StoredModel", "import_model", "list_models", "models_root", "remove_model",
           "resolve_model"]
