"""Error class of the fusion core."""


class FusionInputError(ValueError):
    """An input image (or a pair of them) cannot be fused; the message names the bad value."""


class SizeMismatchError(FusionInputError):
    """Infrared and visible frames cannot be brought to one size (aspect ratios differ)."""
