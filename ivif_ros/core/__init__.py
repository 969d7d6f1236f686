"""The ROS-free fusion core: enhance, detect, weight, fuse (numpy in, numpy out)."""
from .errors import FusionInputError
from .pipeline import RUNTIME_FIELDS, FusionConfig, FusionPipeline, FusionResult

__all__ = ["FusionInputError", "FusionConfig", "FusionPipeline", "FusionResult", "RUNTIME_FIELDS"]
