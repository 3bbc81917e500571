"""tim_zoo: a PyTorch model zoo of temporal speech emotion recognition models (TIM-Net family)."""
from . import layers, models
from ._factory import create_model, is_model, list_models
from .complexity import count_macs, count_params
from .exceptions import (
    ConfigurationError, InputDtypeError, InputShapeError, NonFiniteInputError, TimZooError, UnknownModelError,
)
from .models import SERModel
from .version import __version__

__all__ = [
    'ConfigurationError', 'InputDtypeError', 'InputShapeError', 'NonFiniteInputError', 'SERModel', 'TimZooError',
    'UnknownModelError', '__version__', 'count_macs', 'count_params', 'create_model', 'is_model', 'layers',
    'list_models', 'models',
]
