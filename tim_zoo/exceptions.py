"""Exceptions raised by tim_zoo.

Every error subclasses `TimZooError` and a matching builtin (`ValueError`, `TypeError`),
so `except ValueError` keeps working for code that does not know tim_zoo.
"""


class TimZooError(Exception):
    """Base class of every error tim_zoo raises on purpose."""


class InputShapeError(TimZooError, ValueError):
    """A tensor has the wrong number of dimensions, channels or frames, or an empty batch."""


class InputDtypeError(TimZooError, TypeError):
    """A tensor is not a floating-point tensor."""


class NonFiniteInputError(TimZooError, ValueError):
    """The input holds NaN or Inf values (raised only when `check_finite=True`)."""


class UnknownModelError(TimZooError, ValueError):
    """No model is registered under the requested name."""


class ConfigurationError(TimZooError, ValueError):
    """A constructor argument has a value the block or model does not support."""


class UnknownArgumentError(ConfigurationError, TypeError):
    """A constructor got an argument it does not take (the message suggests close names)."""


class WeightFileError(TimZooError, ValueError):
    """A weight file cannot be read, is not what it claims to be, or is corrupted."""


class CheckpointMismatchError(WeightFileError):
    """A weight file holds another architecture than the model it is loaded into."""


class UnsafeFileError(WeightFileError):
    """A file would need arbitrary code execution (pickle) to load; tim_zoo refuses it."""


class AudioError(TimZooError, ValueError):
    """An audio file cannot be read, or holds nothing to analyse (empty)."""


class DatasetError(TimZooError, ValueError):
    """A corpus folder or a feature file does not have the expected layout."""


class WeightsNotFoundError(WeightFileError, FileNotFoundError):
    """No weight file where it was looked for; the message lists the places and where the weights are published."""
