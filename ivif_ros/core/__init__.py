"""The ROS-free fusion core: enhance, detect, weight, fuse (numpy in, numpy out)."""
from .config import RUNTIME_FIELDS, FusionConfig
from .errors import FusionInputError
from .pipeline import FusionPipeline, FusionResult

__all__ = ["FusionInputError", "FusionConfig", "FusionPipeline", "FusionResult", "RUNTIME_FIELDS"]
